package ext4

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/qimg/qimg/guestfs/internal/fstree"
)

// How the model test chooses paths, names, sizes and modes.

func (m *model) host(p string) string { return filepath.Join(m.cur, filepath.FromSlash(p)) }

// entry is a path of the host tree and its type.
type entry struct {
	path string
	mode fs.FileMode
}

// entries lists the host tree, not following links.
func (m *model) entries() []entry {
	var out []entry
	err := filepath.WalkDir(m.cur, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == m.cur {
			return err
		}
		rel, _ := filepath.Rel(m.cur, p)
		out = append(out, entry{filepath.ToSlash(rel), d.Type()})
		return nil
	})
	must(m.t, err)
	return out
}

// pick chooses an existing path whose type keep accepts, or "" if none:
// a directory holding such paths first, then one of them, so that a few
// big directories do not draw every choice.
func (m *model) pick(keep func(fs.FileMode) bool) string {
	byDir := map[string][]string{}
	for _, e := range m.entries() {
		if keep(e.mode) {
			d := path.Dir(e.path)
			byDir[d] = append(byDir[d], e.path)
		}
	}
	if len(byDir) == 0 {
		return ""
	}
	dirs := slices.Sorted(maps.Keys(byDir))
	c := byDir[dirs[m.rng.IntN(len(dirs))]]
	return c[m.rng.IntN(len(c))]
}

func anyType(fs.FileMode) bool     { return true }
func isDir(t fs.FileMode) bool     { return t.IsDir() }
func isRegular(t fs.FileMode) bool { return t.IsRegular() }
func notLink(t fs.FileMode) bool   { return t&fs.ModeSymlink == 0 }

// dir chooses a directory, the root often.
func (m *model) dir() string {
	if m.rng.IntN(4) == 0 {
		return "."
	}
	if d := m.pick(isDir); d != "" {
		return d
	}
	return "."
}

// name chooses a name: mostly from a few letters, so that names
// collide; sometimes long or not ASCII.
func (m *model) name() string {
	switch r := m.rng.IntN(20); {
	case r < 13:
		return string(rune('a' + m.rng.IntN(8)))
	case r < 16:
		return fmt.Sprintf("file-%d.conf", m.rng.IntN(20))
	case r < 18:
		return strings.Repeat("long-name-", 26)[:100+m.rng.IntN(156)]
	default:
		return fmt.Sprintf("é-ü-%c", 'a'+m.rng.IntN(4))
	}
}

func join(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// newPath chooses a path to create: a name in an existing directory
// (which may be taken), now and then below a missing one or a file.
func (m *model) newPath() string {
	switch m.rng.IntN(20) {
	case 0:
		return join(join(m.dir(), "missing-dir"), m.name())
	case 1:
		if f := m.pick(isRegular); f != "" {
			return join(f, m.name())
		}
	}
	return join(m.dir(), m.name())
}

// target chooses an existing path of a type, or now and then a new
// path (missing, or there with a type keep accepts).
func (m *model) target(keep func(fs.FileMode) bool) string {
	if m.rng.IntN(10) != 0 {
		if p := m.pick(keep); p != "" {
			return p
		}
	}
	for range 10 {
		p := m.newPath()
		if fi, err := os.Lstat(m.host(p)); err != nil || keep(fi.Mode().Type()) {
			return p
		}
	}
	return "missing-dir/" + m.name()
}

// size chooses a file size around the interesting edges: empty, inline
// sized, a block ± 1, up to 300 KiB, and now and then megabytes.
func (m *model) size() int64 {
	bs := m.bs
	switch m.rng.IntN(20) {
	case 0:
		return 0
	case 1:
		return 1
	case 2, 3:
		return 2 + m.rng.Int64N(58)
	case 4:
		return bs - 1 + m.rng.Int64N(3)
	case 5:
		return 12*bs - 1 + m.rng.Int64N(3) // the last direct block of a block map
	case 6:
		return 1<<20 + m.rng.Int64N(5<<20)
	}
	return m.rng.Int64N(300 << 10)
}

// data makes n random bytes.
func (m *model) data(n int64) []byte {
	b := make([]byte, n+8)
	for i := 0; i < len(b)-8; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], m.rng.Uint64())
	}
	return b[:n]
}

// perm chooses permission bits, with setuid, setgid or sticky at times.
func (m *model) perm() fs.FileMode {
	p := fs.FileMode(m.rng.IntN(0o1000))
	switch m.rng.IntN(8) {
	case 0:
		p |= fs.ModeSetuid
	case 1:
		p |= fs.ModeSetgid
	case 2:
		p |= fs.ModeSticky
	}
	return p
}

// linkTarget makes a relative link target that does not climb above the
// link's directory's depth: to an existing entry, a missing one or a
// parent; padded past 60 bytes now and then (a slow link).
func (m *model) linkTarget(link string) string {
	up := strings.Repeat("../", strings.Count(link, "/"))
	var t string
	switch m.rng.IntN(4) {
	case 0:
		t = m.name()
	case 1:
		t = up + m.target(anyType)
	case 2:
		t = up + "."
	default:
		t = "missing/" + m.name()
	}
	switch m.rng.IntN(4) {
	case 0: // a slow link
		t = strings.Repeat("./", 25+m.rng.IntN(50)) + t
	case 1: // around the 60 bytes a fast link holds
		if pad := 59 + m.rng.IntN(3) - len(t); pad >= 3 {
			t = strings.Repeat("./", pad/2) + strings.Repeat("/", pad%2) + t
		}
	}
	return t
}

// notDirOrAny mostly keeps to what can be linked, and now and then tries
// a directory.
func notDirOrAny(m *model) func(fs.FileMode) bool {
	if m.rng.IntN(8) == 0 {
		return anyType
	}
	return func(t fs.FileMode) bool { return !t.IsDir() }
}

// escapes reports whether resolving p on the host (following links on
// the way, and the last one if follow) climbs out of the host tree. The
// writer stops ".." at the guest's root, so the two would resolve such
// a path differently; a link can come to climb out when it moves to a
// shallower directory. Only rename's paths (which may go through a
// link) and truncate's (which follows one) can meet such links: the
// other paths are chosen among real directories.
func (m *model) escapes(p string, follow bool) bool {
	var dir []string
	rest := strings.Split(p, "/")
	for links := 0; len(rest) > 0 && links <= fstree.MaxSymlinks; {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(dir) == 0 {
				return true
			}
			dir = dir[:len(dir)-1]
			continue
		}
		hp := filepath.Join(append([]string{m.cur}, append(dir, c)...)...)
		fi, err := os.Lstat(hp)
		if err != nil {
			return false // both fail alike from here
		}
		if fi.Mode()&fs.ModeSymlink != 0 && (len(rest) > 0 || follow) {
			t, err := os.Readlink(hp)
			if err != nil || strings.HasPrefix(t, "/") {
				return true
			}
			rest = append(strings.Split(t, "/"), rest...)
			links++
			continue
		}
		dir = append(dir, c)
	}
	return false
}

// xattrTarget chooses a file to change attr of: Linux refuses user.*
// attributes on links, so only trusted.* ones go there.
func (m *model) xattrTarget(attr string) string {
	if strings.HasPrefix(attr, "user.") {
		return m.target(notLink)
	}
	return m.target(anyType)
}

// xattrName chooses an attribute name: a few user.* and trusted.* ones,
// now and then a long one.
func (m *model) xattrName() string {
	ns := "user."
	if m.rng.IntN(3) == 0 {
		ns = "trusted."
	}
	if m.rng.IntN(10) == 0 {
		return ns + strings.Repeat("long-attribute-", 7)[:20+m.rng.IntN(80)]
	}
	return ns + string(rune('a'+m.rng.IntN(4)))
}
