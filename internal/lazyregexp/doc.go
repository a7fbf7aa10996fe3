// Package lazyregexp holds regular expressions that compile on first use.
//
// A package variable set by regexp.MustCompile runs at program start-up,
// and qimg links every package into one binary: each command paid for
// the patterns of all the others (about a millisecond in all, a tenth of
// what `qimg info` needs). A lazyregexp.Regexp costs nothing until a
// caller matches with it. As with regexp.MustCompile, a bad pattern is a
// programming error and panics, here on first use.
package lazyregexp
