package iso9660

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf16"
)

// ECMA-119 names in the primary tree are for readers that know neither
// Rock Ridge nor Joliet (firmware, old systems): 8.3 upper-case
// d-characters, files with a ";1" version. They must be unique in their
// directory, so names that fold to the same 8.3 form are mangled with a
// "~N" tail, as other mastering tools do.

// dchars maps a name to d-characters (A-Z, 0-9, _), anything else to "_".
func dchars(s string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// isoBase splits a name into an 8.3 base and extension (directories get
// no extension: their dots become "_").
func isoBase(name string, dir bool) (base, ext string) {
	if !dir {
		if i := strings.LastIndexByte(name, '.'); i > 0 {
			name, ext = name[:i], dchars(name[i+1:])
		}
	}
	base = dchars(name)
	if base == "" {
		base = "_"
	}
	if len(base) > 8 {
		base = base[:8]
	}
	if len(ext) > 3 {
		ext = ext[:3]
	}
	return base, ext
}

// isoIdent renders an identifier: directories bare, files "BASE.EXT;1".
func isoIdent(base, ext string, dir bool) string {
	if dir {
		return base
	}
	return base + "." + ext + ";1"
}

// isoNames gives the children of one directory unique ECMA-119
// identifiers, in the order of names.
func isoNames(names []string, dirs []bool) []string {
	out := make([]string, len(names))
	used := map[string]bool{}
	// Names that need no change keep their form first, so that a mangled
	// name never takes the plain name of a later sibling.
	type pend struct {
		i         int
		base, ext string
	}
	var rest []pend
	for i, n := range names {
		base, ext := isoBase(n, dirs[i])
		id := isoIdent(base, ext, dirs[i])
		if !used[id] {
			used[id], out[i] = true, id
			continue
		}
		rest = append(rest, pend{i, base, ext})
	}
	for _, p := range rest {
		for k := 1; ; k++ {
			tail := fmt.Sprintf("_%d", k) // "~" is no d-character
			b := p.base
			if len(b)+len(tail) > 8 {
				b = b[:8-len(tail)]
			}
			id := isoIdent(b+tail, p.ext, dirs[p.i])
			if !used[id] {
				used[id], out[p.i] = true, id
				break
			}
		}
	}
	return out
}

// Joliet names are UCS-2 (UTF-16 without surrogates), at most jolietMax
// characters, without * / : ; ? \. Longer names keep their start and
// extension and are made unique with a "~N" tail as above.
const jolietMax = 64

// jolietClean maps a name to the characters Joliet allows.
func jolietClean(name string) []uint16 {
	var u []uint16
	for _, r := range name {
		switch {
		case r > 0xFFFF || r >= 0xD800 && r < 0xE000 || r < 0x20 || strings.ContainsRune(`*/:;?\`, r):
			r = '_'
		}
		u = append(u, uint16(r))
	}
	return u
}

// jolietFit shortens u to max characters, keeping an extension of up to
// 8 characters and putting tail before it.
func jolietFit(u []uint16, tail string, max int) []uint16 {
	t := utf16.Encode([]rune(tail))
	if len(u)+len(t) <= max && tail == "" {
		return u
	}
	var ext []uint16
	for i := len(u) - 1; i > 0 && len(u)-i <= 9; i-- {
		if u[i] == '.' {
			ext = u[i:]
			u = u[:i]
			break
		}
	}
	keep := max - len(t) - len(ext)
	if keep < len(u) {
		u = u[:keep]
	}
	return append(append(append([]uint16{}, u...), t...), ext...)
}

// jolietNames gives the children of one directory unique Joliet names.
func jolietNames(names []string) [][]uint16 {
	out := make([][]uint16, len(names))
	used := map[string]bool{}
	var rest []int
	for i, n := range names {
		u := jolietClean(n)
		if len(u) <= jolietMax && !used[string(utf16.Decode(u))] {
			used[string(utf16.Decode(u))], out[i] = true, u
			continue
		}
		rest = append(rest, i)
	}
	for _, i := range rest {
		u := jolietClean(names[i])
		for k := 1; ; k++ {
			c := jolietFit(u, fmt.Sprintf("~%d", k), jolietMax)
			if k == 1 && len(u) > jolietMax {
				c = jolietFit(u, "", jolietMax)
			}
			if !used[string(utf16.Decode(c))] {
				used[string(utf16.Decode(c))], out[i] = true, c
				break
			}
		}
	}
	return out
}

// sortedNames returns a directory's child names in byte order, so the
// identifiers made from them do not depend on map order.
func sortedNames(n *node) []string {
	names := make([]string, 0, len(n.children))
	for k := range n.children {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
