// Package qfmt reproduces qemu-img's text conventions so that qimg's output
// can be compared with qemu-img's byte for byte: size parsing (qemu_strtosz)
// and printing (size_to_str), -o option lists (QemuOpts), and the JSON
// writer whose key order is that of QEMU's QDict hash table.
package qfmt
