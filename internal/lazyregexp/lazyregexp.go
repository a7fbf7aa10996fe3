package lazyregexp

import (
	"regexp"
	"sync"
)

// Regexp is a regular expression compiled the first time it is used.
// It is safe for concurrent use.
type Regexp struct {
	compiled func() *regexp.Regexp
}

// New returns a Regexp for pattern; nothing is compiled yet.
func New(pattern string) *Regexp {
	return &Regexp{compiled: sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(pattern)
	})}
}

// Regexp returns the compiled expression, compiling it on first use.
func (r *Regexp) Regexp() *regexp.Regexp { return r.compiled() }

// MatchString reports whether s contains a match.
func (r *Regexp) MatchString(s string) bool { return r.compiled().MatchString(s) }

// FindStringSubmatch returns the leftmost match and its submatches.
func (r *Regexp) FindStringSubmatch(s string) []string {
	return r.compiled().FindStringSubmatch(s)
}

// ReplaceAllString replaces every match in src with repl.
func (r *Regexp) ReplaceAllString(src, repl string) string {
	return r.compiled().ReplaceAllString(src, repl)
}
