package ext4

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// node is what the model test compares of one file: its type, mode,
// size, contents, link target, link count, owner, modification time
// (seconds) and extended attributes.
type node struct {
	kind   byte // 'd', 'f', 'l', or '?'
	perm   fs.FileMode
	size   int64
	sum    [32]byte
	target string
	links  uint64
	uid    uint32
	gid    uint32
	mtime  int64
	xattrs map[string]string
}

// Fields of a node to compare.
const (
	fKind = 1 << iota
	fPerm
	fSize
	fSum
	fTarget
	fLinks
	fOwner
	fMtime
	fXattrs
	allFields = fKind | fPerm | fSize | fSum | fTarget | fLinks | fOwner | fMtime | fXattrs
)

// mtimeSlack is how far apart the host and the image may set the same
// "now": the two calls run one after the other, on a loaded machine.
const mtimeSlack = 3

const modelPermBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

func kindOf(m fs.FileMode) byte {
	switch {
	case m.IsDir():
		return 'd'
	case m.IsRegular():
		return 'f'
	case m&fs.ModeSymlink != 0:
		return 'l'
	}
	return '?'
}

// skipTop reports whether a path is left out of every tree: lost+found,
// which mkfs makes and the model never names.
func skipTop(rel string) bool { return rel == "lost+found" }

// hostTree reads a host directory, not following links, contents only
// if asked; attributes are the user.* and trusted.* ones.
func (m *model) hostTree(root string, contents bool) map[string]*node {
	out := map[string]*node{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if skipTop(rel) {
			return filepath.SkipDir
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		n := &node{kind: kindOf(fi.Mode()), perm: fi.Mode() & modelPermBits, links: uint64(st.Nlink),
			uid: st.Uid, gid: st.Gid, mtime: fi.ModTime().Unix(), xattrs: map[string]string{}}
		switch n.kind {
		case 'f':
			n.size = fi.Size()
			if !contents {
				break
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			n.sum = hashOf(m, f)
			f.Close()
		case 'l':
			n.size = fi.Size()
			if n.target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		for _, name := range hostXattrNames(p) {
			v, err := hostXattr(p, name)
			if err != nil {
				return err
			}
			n.xattrs[name] = string(v)
		}
		out[rel] = n
		return nil
	})
	must(m.t, err)
	return out
}

func hashOf(m *model, r io.Reader) [32]byte {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		m.fatalf("reading: %v", err)
	}
	return [32]byte(h.Sum(nil))
}

// hostXattrNames lists a host file's user.* and trusted.* attributes.
func hostXattrNames(p string) []string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return nil
	}
	var out []string
	for name := range strings.SplitSeq(string(buf[:n]), "\x00") {
		if strings.HasPrefix(name, "user.") || strings.HasPrefix(name, "trusted.") {
			out = append(out, name)
		}
	}
	return out
}

func hostXattr(p, name string) ([]byte, error) {
	buf := make([]byte, 64<<10)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// imageTree reads a file system through this package, contents only
// if asked (they are most of the cost).
func (m *model) imageTree(f *FS, contents bool) map[string]*node {
	out := map[string]*node{}
	err := fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		if skipTop(p) {
			return fs.SkipDir
		}
		fi, err := f.Lstat(p)
		if err != nil {
			return err
		}
		in := fi.Sys().(*Inode)
		n := &node{kind: kindOf(fi.Mode()), perm: fi.Mode() & modelPermBits, links: uint64(in.Links),
			uid: in.UID, gid: in.GID, mtime: in.Mtime.Unix(), xattrs: map[string]string{}}
		switch n.kind {
		case 'f':
			n.size = fi.Size()
			if contents {
				file, err := f.Open(p)
				if err != nil {
					return err
				}
				n.sum = hashOf(m, file.(io.Reader))
				file.Close()
			}
		case 'l':
			n.size = fi.Size()
			if n.target, err = f.ReadLink(p); err != nil {
				return err
			}
		}
		xs, err := f.Xattrs(p)
		if err != nil {
			return err
		}
		for _, x := range xs {
			n.xattrs[x.Name] = string(x.Value)
		}
		out[p] = n
		return nil
	})
	if err != nil {
		m.fatalf("walking the image: %v", err)
	}
	return out
}

// debugfsTree reads the committed image with debugfs: rdump for types,
// contents and link targets; stat for modes (rdump's chown drops
// setuid), owners, link counts, times and attribute names; ea_get for
// attribute values.
func (m *model) debugfsTree() map[string]*node {
	dir, err := os.MkdirTemp(m.t.TempDir(), "rdump")
	must(m.t, err)
	defer os.RemoveAll(dir)
	dump := filepath.Join(dir, "tree")
	must(m.t, os.Mkdir(dump, 0o755))
	run(m.t, "debugfs", "-R", "rdump / "+dump, m.img)
	tree := m.hostTree(dump, true)
	paths := slices.Sorted(maps.Keys(tree))
	var cmds strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&cmds, "stat /%s\n", p)
	}
	stats := m.debugfsBatch(dir, cmds.String())
	if len(stats) != len(paths) {
		m.fatalf("debugfs answered %d of %d stats", len(stats), len(paths))
	}
	type value struct{ path, name, file string }
	var values []value
	cmds.Reset()
	for i, p := range paths {
		n := tree[p]
		if err := parseStat(n, stats[i]); err != nil {
			m.fatalf("debugfs stat /%s: %v\n%s", p, err, stats[i])
		}
		for name := range n.xattrs {
			v := value{p, name, filepath.Join(dir, fmt.Sprintf("value-%d", len(values)))}
			values = append(values, v)
			fmt.Fprintf(&cmds, "ea_get -f %s /%s %s\n", v.file, p, name)
		}
	}
	if len(values) > 0 {
		m.debugfsBatch(dir, cmds.String())
	}
	for _, v := range values {
		b, err := os.ReadFile(v.file)
		if err != nil {
			m.fatalf("debugfs ea_get /%s %s wrote no value", v.path, v.name)
		}
		tree[v.path].xattrs[v.name] = string(b)
	}
	return tree
}

// debugfsBatch runs debugfs commands from a file and returns each one's
// output.
func (m *model) debugfsBatch(dir, cmds string) []string {
	file := filepath.Join(dir, "cmds")
	must(m.t, os.WriteFile(file, []byte(cmds), 0o644))
	out := run(m.t, "debugfs", "-f", file, m.img)
	// Each command's output follows its echo, "debugfs: " and the line.
	return strings.Split(out, "debugfs: ")[1:]
}

var (
	statMode  = regexp.MustCompile(`Mode:\s+(\d+)`)
	statOwner = regexp.MustCompile(`User:\s+(\d+)\s+Group:\s+(\d+)`)
	statLinks = regexp.MustCompile(`Links:\s+(\d+)`)
	statMtime = regexp.MustCompile(`(?m)^\s*mtime: 0x([0-9a-f]+)(?::([0-9a-f]+))?`)
	statXattr = regexp.MustCompile(`(?m)^  (\S+) \((\d+)\)`)
)

// parseStat fills a node's mode, owner, links, mtime and attribute
// names from debugfs stat.
func parseStat(n *node, out string) error {
	mode := statMode.FindStringSubmatch(out)
	owner := statOwner.FindStringSubmatch(out)
	links := statLinks.FindStringSubmatch(out)
	mtime := statMtime.FindStringSubmatch(out)
	if mode == nil || owner == nil || links == nil || mtime == nil {
		return fmt.Errorf("unexpected output")
	}
	bits, _ := strconv.ParseUint(mode[1], 8, 32)
	n.perm = fs.FileMode(bits & 0o777)
	for _, b := range []struct {
		bit  uint64
		mode fs.FileMode
	}{{0o4000, fs.ModeSetuid}, {0o2000, fs.ModeSetgid}, {0o1000, fs.ModeSticky}} {
		if bits&b.bit != 0 {
			n.perm |= b.mode
		}
	}
	uid, _ := strconv.ParseUint(owner[1], 10, 32)
	gid, _ := strconv.ParseUint(owner[2], 10, 32)
	n.uid, n.gid = uint32(uid), uint32(gid)
	n.links, _ = strconv.ParseUint(links[1], 10, 64)
	sec, _ := strconv.ParseUint(mtime[1], 16, 32)
	n.mtime = int64(int32(sec))
	if mtime[2] != "" {
		extra, _ := strconv.ParseUint(mtime[2], 16, 32)
		n.mtime += int64(extra&3) << 32
	}
	n.xattrs = map[string]string{}
	if _, rest, ok := strings.Cut(out, "Extended attributes:\n"); ok {
		for _, x := range statXattr.FindAllStringSubmatch(rest, -1) {
			n.xattrs[x[1]] = ""
		}
	}
	return nil
}

// compare fails the run when got differs from want in the fields asked.
func (m *model) compare(want, got map[string]*node, what string, fields int) {
	m.t.Helper()
	var diffs []string
	for _, p := range unionKeys(want, got) {
		w, g := want[p], got[p]
		switch {
		case g == nil:
			diffs = append(diffs, fmt.Sprintf("%s: missing (want %s)", p, w))
			continue
		case w == nil:
			diffs = append(diffs, fmt.Sprintf("%s: extra (%s)", p, g))
			continue
		}
		if d := w.diff(g, fields); d != "" {
			diffs = append(diffs, fmt.Sprintf("%s: %s", p, d))
		}
	}
	if len(diffs) > 0 {
		m.fatalf("%s: the image differs from the host:\n%s", what, strings.Join(diffs[:min(len(diffs), 20)], "\n"))
	}
}

// unionKeys lists the keys of a and b, sorted.
func unionKeys[V any](a, b map[string]V) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, dup := a[k]; !dup {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// diff describes how g differs from n in the fields asked.
func (n *node) diff(g *node, fields int) string {
	var d []string
	check := func(f int, name string, w, gv any) {
		if fields&f != 0 && w != gv {
			d = append(d, fmt.Sprintf("%s %v, want %v", name, gv, w))
		}
	}
	check(fKind, "type", string(n.kind), string(g.kind))
	if n.kind != g.kind {
		return strings.Join(d, "; ")
	}
	check(fPerm, "mode", n.perm, g.perm)
	if n.kind != 'd' {
		check(fSize, "size", n.size, g.size)
	}
	check(fSum, "contents", n.sum, g.sum)
	check(fTarget, "target", n.target, g.target)
	check(fLinks, "links", n.links, g.links)
	check(fOwner, "owner", fmt.Sprint(n.uid, ":", n.gid), fmt.Sprint(g.uid, ":", g.gid))
	if fields&fMtime != 0 && (g.mtime-n.mtime > mtimeSlack || n.mtime-g.mtime > mtimeSlack) {
		d = append(d, fmt.Sprintf("mtime %d, want %d", g.mtime, n.mtime))
	}
	if fields&fXattrs != 0 {
		for _, k := range unionKeys(n.xattrs, g.xattrs) {
			w, wok := n.xattrs[k]
			gv, gok := g.xattrs[k]
			if wok != gok || w != gv {
				d = append(d, fmt.Sprintf("attribute %s: %d bytes (present %v), want %d bytes (present %v)", k, len(gv), gok, len(w), wok))
			}
		}
	}
	return strings.Join(d, "; ")
}

func (n *node) String() string {
	return fmt.Sprintf("%c %v %d bytes links=%d %d:%d", n.kind, n.perm, n.size, n.links, n.uid, n.gid)
}

// coverage counts what the image holds of the structures the writer
// must get right, so that a run shows it reached them: indexed
// directories, extent trees with index levels, indirect blocks,
// attribute blocks, slow symbolic links.
func (m *model) coverage(f *FS) {
	count := map[string]int{}
	err := fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := f.Lstat(p)
		if err != nil {
			return err
		}
		in := fi.Sys().(*Inode)
		switch {
		case in.IsDir() && in.Flags&FlagIndex != 0:
			count["htree dirs"]++
		case in.Flags&FlagExtents != 0 && binary.LittleEndian.Uint16(in.block[6:]) > 0:
			count["extent trees"]++
		case in.Flags&FlagExtents == 0 && in.IsRegular() && binary.LittleEndian.Uint32(in.block[48:]) != 0:
			count["indirect maps"]++
		case in.IsSymlink() && in.Size >= 60:
			count["slow links"]++
		}
		if in.FileACL != 0 {
			count["xattr blocks"]++
		}
		return nil
	})
	if err != nil {
		m.fatalf("walking the image: %v", err)
	}
	for k, n := range count {
		m.stats["max "+k] = max(m.stats["max "+k], n)
	}
}
