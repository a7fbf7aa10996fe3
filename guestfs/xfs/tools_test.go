package xfs

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

// tool finds a judge (xfsprogs live in /usr/sbin). A missing one fails
// the test under CI, where setup.sh installs them, and skips it
// elsewhere.
func tool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/" + name); err == nil {
		return "/usr/sbin/" + name
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not installed", name)
	}
	t.Skipf("%s not installed", name)
	return ""
}

// run runs a command and returns its standard output, failing the test
// on error. mkfs.xfs refuses file systems under 300 MiB unless it
// believes it runs under fstests, which the TEST_* variables tell it:
// small images keep the tests fast.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(tool(t, name), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "TEST_DIR=1", "TEST_DEV=1", "QA_CHECK_FS=1", "LC_ALL=C")
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// repairClean fails unless xfs_repair -n finds nothing to fix.
func repairClean(t testing.TB, img string) {
	t.Helper()
	cmd := exec.Command(tool(t, "xfs_repair"), "-n", img)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xfs_repair -n %s: %v\n%s", img, err, out)
	}
}

// pattern is deterministic, incompressible-enough file content.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

// longName makes long paths and link targets.
var longName = strings.Repeat("long-directory-name-", 5)

// node is one file of the prototype tree: what the image must hold.
type node struct {
	mode     fs.FileMode
	uid, gid uint32
	data     []byte
	target   string // of a symbolic link
	rdev     [2]uint32
}

// protoTree is the tree mkfs.xfs -p copies, described once so that the
// host copy, the protofile and the expectations agree.
func protoTree() map[string]*node {
	tr := map[string]*node{}
	file := func(p string, data []byte, mode fs.FileMode, uid uint32) {
		tr[p] = &node{mode: mode, uid: uid, gid: uid + 1, data: data}
	}
	dir := func(p string) { tr[p] = &node{mode: fs.ModeDir | 0o755} }
	link := func(p, target string) { tr[p] = &node{mode: fs.ModeSymlink | 0o777, target: target} }
	for _, d := range []string{"nested", "nested/a", "nested/a/b", "nested/a/b/c", longName, "dir10", "dir100", "dir600", "dir3000", "attrs"} {
		dir(d)
	}
	file("empty", nil, 0o644, 0)
	file("one", []byte("x"), 0o600, 1000)
	file("small", pattern(1000, 2), 0o751|fs.ModeSetuid, 7)
	file("sgid", pattern(5000, 8), 0o755|fs.ModeSetgid, 8)
	file("big", pattern(2<<20+123, 3), 0o644, 0)
	file("nested/a/b/c/file", []byte("deep\n"), 0o644, 0)
	file(longName+"/target", []byte("reached through a long link\n"), 0o644, 0)
	for i := range 10 {
		file(fmt.Sprintf("dir10/f%d", i), []byte(fmt.Sprint(i)), 0o644, uint32(i))
	}
	for i := range 100 {
		file(fmt.Sprintf("dir100/f%03d", i), []byte(fmt.Sprint(i)), 0o644, 0)
	}
	for i := range 600 {
		file(fmt.Sprintf("dir600/entry-%04d", i), nil, 0o644, 0)
	}
	for i := range 3000 {
		file(fmt.Sprintf("dir3000/entry-with-a-longer-name-%04d", i), nil, 0o644, 0)
	}
	link("link-rel", "small")
	link("link-abs", "/nested/a/b/c/file")
	link("link-dir", "nested/a")
	link("link-chain", "link-rel")
	link("link-long", "/./"+longName+"/target") // local: mkfs.xfs 6.1 -p writes bad remote v5 links
	link("nested/a/link-up", "../../small")
	link("escape", "../../../../../nested/a/b/c/file")
	tr["null"] = &node{mode: fs.ModeDevice | fs.ModeCharDevice | 0o666, rdev: [2]uint32{1, 3}}
	tr["sda"] = &node{mode: fs.ModeDevice | 0o660, gid: 6, rdev: [2]uint32{8, 0}}
	tr["bigdev"] = &node{mode: fs.ModeDevice | fs.ModeCharDevice | 0o600, rdev: [2]uint32{300, 70000}}
	tr["fifo"] = &node{mode: fs.ModeNamedPipe | 0o640}
	return tr
}

// writeProto writes the tree's file contents under dir and returns a
// protofile for it.
func writeProto(t testing.TB, tr map[string]*node, dir string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("/dev/null\n0 0\nd--755 0 0\n")
	var walk func(parent string, depth int)
	walk = func(parent string, depth int) {
		var names []string
		for p := range tr {
			if path := filepath.Dir(p); path == parent || (parent == "" && path == ".") {
				names = append(names, p)
			}
		}
		slices.Sort(names)
		for _, p := range names {
			n := tr[p]
			ind := strings.Repeat(" ", depth)
			perm := fmt.Sprintf("%03o", n.mode.Perm())
			u, g := "-", "-"
			if n.mode&fs.ModeSetuid != 0 {
				u = "u"
			}
			if n.mode&fs.ModeSetgid != 0 {
				g = "g"
			}
			own := fmt.Sprintf("%d %d", n.uid, n.gid)
			base := filepath.Base(p)
			switch {
			case n.mode.IsDir():
				fmt.Fprintf(&b, "%s%s d%s%s%s %s\n", ind, base, u, g, perm, own)
				walk(p, depth+1)
				fmt.Fprintf(&b, "%s$\n", ind)
			case n.mode&fs.ModeSymlink != 0:
				fmt.Fprintf(&b, "%s%s l%s%s%s %s %s\n", ind, base, u, g, perm, own, n.target)
			case n.mode&fs.ModeNamedPipe != 0:
				fmt.Fprintf(&b, "%s%s p%s%s%s %s\n", ind, base, u, g, perm, own)
			case n.mode&fs.ModeDevice != 0:
				c := "b"
				if n.mode&fs.ModeCharDevice != 0 {
					c = "c"
				}
				fmt.Fprintf(&b, "%s%s %s%s%s%s %s %d %d\n", ind, base, c, u, g, perm, own, n.rdev[0], n.rdev[1])
			default:
				src := filepath.Join(dir, strings.ReplaceAll(p, "/", "_"))
				if err := os.WriteFile(src, n.data, 0o644); err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&b, "%s%s -%s%s%s %s %s\n", ind, base, u, g, perm, own, src)
			}
		}
	}
	walk("", 1)
	b.WriteString("$\n")
	proto := filepath.Join(dir, "proto")
	if err := os.WriteFile(proto, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return proto
}

// xattrsSet are set with xfs_db's attr_set, which fills values with 'v':
// in the inode on a file with few small ones, in a leaf block with a
// remote value on "big", and in many leaves under a node on "attrs"
// (an empty directory: xfs_db 6.1 crashes making room in a v4 inode
// whose short form directory fills it).
var xattrsSet = []struct {
	path, ns, name string
	size           int
}{
	{"small", "-u", "comment", 5},
	{"small", "-s", "selinux", 30},
	{"small", "-r", "trusted-one", 3},
	{"big", "-u", "large", 5000},
	{"big", "-u", "also", 10},
	{"nested", "-u", "dir", 14},
}

// manyXattrs is how many attributes dir10 gets: enough for a dabtree.
const manyXattrs = 400

// xattrOnV4 tells whether xfs_db can set x on a v4 file system: 6.1
// crashes setting attributes on a v4 regular file or a remote value
// (the mounted test covers those through the kernel).
func xattrOnV4(path string, size int) bool {
	return path != "small" && path != "big" && size < 2048
}

func setXattrs(t testing.TB, img string, crc bool) {
	t.Helper()
	var cmds strings.Builder
	for _, x := range xattrsSet {
		if crc || xattrOnV4(x.path, x.size) {
			fmt.Fprintf(&cmds, "path /%s\nattr_set %s -v %d %s\n", x.path, x.ns, x.size, x.name)
		}
	}
	cmds.WriteString("path /attrs\n")
	for i := range manyXattrs {
		fmt.Fprintf(&cmds, "attr_set -u -v %d attribute-number-%04d\n", 20+i%7, i)
	}
	f := filepath.Join(t.TempDir(), "cmds")
	if err := os.WriteFile(f, []byte(cmds.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "xfs_db", "-x", "-f", "-c", "source "+f, img)
}

// wantXattrs is what Xattrs must list for path, sorted by name.
func wantXattrs(path string, crc bool) []Xattr {
	prefix := map[string]string{"-u": "user.", "-s": "security.", "-r": "trusted."}
	var out []Xattr
	for _, x := range xattrsSet {
		if x.path == path && (crc || xattrOnV4(x.path, x.size)) {
			out = append(out, Xattr{Name: prefix[x.ns] + x.name, Value: bytes.Repeat([]byte("v"), x.size)})
		}
	}
	if path == "attrs" {
		for i := range manyXattrs {
			out = append(out, Xattr{Name: fmt.Sprintf("user.attribute-number-%04d", i), Value: bytes.Repeat([]byte("v"), 20+i%7)})
		}
	}
	slices.SortFunc(out, func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func openImage(t testing.TB, img string) *FS {
	t.Helper()
	r, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	st, err := r.Stat()
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := Open(r, st.Size(), filepath.Base(img))
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

// TestProtoImages builds images with mkfs.xfs -p in several geometries,
// checks them with xfs_repair -n, and compares every file's type,
// permissions, owner, size, contents, link target, device number and
// attributes with the prototype, and directory listings with xfs_db.
func TestProtoImages(t *testing.T) {
	tr := protoTree()
	dir := t.TempDir()
	proto := writeProto(t, tr, dir)
	variants := map[string][]string{
		"v5":              nil,
		"v4":              {"-m", "crc=0"},
		"v4-noftype":      {"-m", "crc=0", "-n", "ftype=0"},
		"v5-1k-dirblk16k": {"-b", "size=1024", "-n", "size=16384"},
		"v5-64k-inode2k":  {"-b", "size=65536", "-i", "size=2048"},
		"v5-rmap-nrext64": {"-m", "rmapbt=1", "-i", "nrext64=1"},
	}
	for name, opts := range variants {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			img := filepath.Join(t.TempDir(), "fs.img")
			if err := os.WriteFile(img, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(img, 192<<20); err != nil {
				t.Fatal(err)
			}
			run(t, "mkfs.xfs", append(append([]string{"-q", "-f", "-p", proto}, opts...), img)...)
			crc := isV5(opts)
			setXattrs(t, img, crc)
			repairClean(t, img)
			fsys := openImage(t, img)
			compareTree(t, fsys, tr)
			for _, d := range []string{".", "dir10", "dir100", "dir600", "dir3000", "nested"} {
				compareXfsDBLs(t, fsys, img, d)
			}
			for _, p := range []string{"small", "big", "nested", "attrs", "one"} {
				got, err := fsys.Xattrs(p)
				if err != nil {
					t.Fatalf("Xattrs(%s): %v", p, err)
				}
				slices.SortFunc(got, func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) })
				if want := wantXattrs(p, crc); !slices.EqualFunc(got, want, func(a, b Xattr) bool { return a.Name == b.Name && bytes.Equal(a.Value, b.Value) }) {
					t.Errorf("Xattrs(%s): %d attributes, want %d (first %v)", p, len(got), len(want), got[:min(len(got), 2)])
				}
			}
			if name == "v5" {
				// The layouts the test is meant to reach, as xfs_db sees them.
				for _, c := range [][3]string{
					{"/dir3000", "print core.format", "core.format = 3 (btree)"},
					{"/dir100", "print core.size", "core.size = 4096"},
					{"/attrs", "ablock 0", "hdr.info.hdr.magic = 0x3ebe"},
				} {
					if out := run(t, "xfs_db", "-r", "-c", "path "+c[0], "-c", c[1], "-c", "print", img); !strings.Contains(out, c[2]) {
						t.Errorf("%s: xfs_db does not show %q", c[0], c[2])
					}
				}
			}
			checkResolution(t, fsys)
			// fstest reads every file many ways: once per on-disk
			// format of directories (with and without ftype) is enough.
			if name == "v5" || name == "v4-noftype" {
				if err := fstest.TestFS(fsys, "big", "nested/a/b/c/file", "dir3000/entry-with-a-longer-name-2999"); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// isV5 tells whether mkfs.xfs options make a v5 (crc) file system.
func isV5(opts []string) bool {
	return !slices.Contains(opts, "crc=0")
}

// compareTree checks the file system holds exactly the tree.
func compareTree(t testing.TB, fsys *FS, tr map[string]*node) {
	t.Helper()
	seen := 0
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		seen++
		n, ok := tr[p]
		if !ok {
			return fmt.Errorf("%s: not in the prototype", p)
		}
		fi, err := fsys.Lstat(p)
		if err != nil {
			return err
		}
		in := fi.Sys().(*Inode)
		if fi.Mode() != n.mode || d.Type() != n.mode.Type() || in.UID != n.uid || in.GID != n.gid {
			return fmt.Errorf("%s: mode %v (entry %v) owner %d:%d, want %v %d:%d", p, fi.Mode(), d.Type(), in.UID, in.GID, n.mode, n.uid, n.gid)
		}
		switch {
		case n.mode.IsRegular():
			data, err := fsys.ReadFile(p)
			if err != nil {
				return err
			}
			if !bytes.Equal(data, n.data) || fi.Size() != int64(len(n.data)) {
				return fmt.Errorf("%s: %d bytes (size %d) differ from the prototype's %d", p, len(data), fi.Size(), len(n.data))
			}
		case n.mode&fs.ModeSymlink != 0:
			target, err := fsys.ReadLink(p)
			if err != nil || target != n.target {
				return fmt.Errorf("%s: link to %q, %v; want %q", p, target, err, n.target)
			}
		case n.mode&fs.ModeDevice != 0:
			if ma, mi := in.Rdev(); ma != n.rdev[0] || mi != n.rdev[1] {
				return fmt.Errorf("%s: device %d:%d, want %v", p, ma, mi, n.rdev)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != len(tr) {
		t.Fatalf("walked %d files, the prototype has %d", seen, len(tr))
	}
}

// compareXfsDBLs compares a directory's names and inode numbers with
// what xfs_db's ls reads from the same image.
func compareXfsDBLs(t testing.TB, fsys *FS, img, dir string) {
	t.Helper()
	p := "/"
	if dir != "." {
		p += dir
	}
	want := map[string]uint64{}
	for _, line := range strings.Split(run(t, "xfs_db", "-r", "-c", "ls "+p, img), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[5] == "." || f[5] == ".." {
			continue
		}
		ino, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			t.Fatalf("xfs_db ls: %q", line)
		}
		want[f[5]] = ino
	}
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(want) {
		t.Fatalf("%s: %d entries, xfs_db lists %d", dir, len(ents), len(want))
	}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if ino := info.Sys().(*Inode).Ino; want[e.Name()] != ino {
			t.Fatalf("%s/%s: inode %d, xfs_db says %d", dir, e.Name(), ino, want[e.Name()])
		}
	}
}

// checkResolution follows links inside the guest: absolute targets start
// at its root and ".." stops there.
func checkResolution(t testing.TB, fsys *FS) {
	t.Helper()
	for p, want := range map[string]string{
		"link-abs": "deep\n", "escape": "deep\n", "link-long": "reached through a long link\n",
		"link-dir/b/c/file": "deep\n", "nested/a/link-up": string(pattern(1000, 2)), "link-chain": string(pattern(1000, 2)),
	} {
		got, err := fsys.ReadFile(p)
		if err != nil || string(got) != want {
			t.Errorf("ReadFile(%s) = %d bytes, %v", p, len(got), err)
		}
	}
	if _, err := fsys.Stat("nope/x"); err == nil {
		t.Error("Stat of a missing path succeeded")
	}
	if fi, err := fsys.Stat("link-dir"); err != nil || !fi.IsDir() {
		t.Errorf("Stat(link-dir) = %v, %v", fi, err)
	}
}
