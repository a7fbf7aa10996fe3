package customize_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/customize"
	"github.com/qimg/qimg/guestfs/ext4"
)

// memDevice is an ext4.Device in memory.
type memDevice struct{ b []byte }

func (m *memDevice) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (m *memDevice) WriteAt(p []byte, off int64) (int, error) { return copy(m.b[off:], p), nil }
func (m *memDevice) Flush() error                             { return nil }

// guest opens testdata/example.img.gz (the ext4 package's example: a
// 128 KiB file system with etc/os-release, home/guest/hello.txt and
// links home/guest/release -> /etc/os-release, home/guest/escape ->
// ../../../../../etc/os-release) in memory for editing.
func guest(t testing.TB) (*customize.Guest, *memDevice) {
	t.Helper()
	g, dev, err := openGuest()
	if err != nil {
		t.Fatal(err)
	}
	return g, dev
}

func openGuest() (*customize.Guest, *memDevice, error) {
	f, err := os.Open("testdata/example.img.gz")
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, nil, err
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, nil, err
	}
	dev := &memDevice{b: raw}
	fsys, err := ext4.OpenWritable(dev, int64(len(raw)), "example.img")
	if err != nil {
		return nil, nil, err
	}
	return &customize.Guest{FS: fsys}, dev, nil
}

func parse(t *testing.T, args ...string) []customize.Op {
	t.Helper()
	var ops []customize.Op
	for i := 0; i < len(args); i += 2 {
		op, err := customize.Parse(args[i], args[i+1])
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op)
	}
	return ops
}

func TestParse(t *testing.T) {
	for _, bad := range [][2]string{
		{"upload", "no-colon"}, {"chmod", "999:/x"}, {"chmod", "0644"}, {"chown", "root:0:/x"},
		{"link", "target"}, {"mkdir", ""}, {"nonsense", "x"}, {"write", ":content"},
	} {
		if _, err := customize.Parse(bad[0], bad[1]); err == nil {
			t.Errorf("Parse(%q, %q) accepted", bad[0], bad[1])
		}
	}
	for _, good := range [][2]string{
		{"write", "/etc/motd:"}, {"write", "/etc/x:a:b:c"}, {"append-line", "/f:"}, {"link", "/t:/a:/b"},
		{"chown", "0:0:/path:with:colons"},
	} {
		if _, err := customize.Parse(good[0], good[1]); err != nil {
			t.Errorf("Parse(%q, %q): %v", good[0], good[1], err)
		}
	}
}

func TestApply(t *testing.T) {
	g, dev := guest(t)
	local := filepath.Join(t.TempDir(), "local.txt")
	os.WriteFile(local, []byte("from the host\n"), 0o600)
	var log bytes.Buffer
	g.Log = &log
	ops := parse(t,
		"write", "/home/guest/release:through the link\n", // an absolute link: the guest's /etc
		"append-line", "/etc/crlf:first",
		"upload", local+":/home/guest",
		"mkdir", "/a/b/c",
		"link", "/etc/os-release:/a/l1:/a/l2",
		"move", "/home/guest/hello.txt:/a/b",
		"chmod", "4755:/a/b/hello.txt",
		"chown", "7:8:/a",
		"touch", "/a/b/c/new",
	)
	if err := customize.Apply(context.Background(), g, ops); err != nil {
		t.Fatal(err)
	}
	fsys, err := ext4.Open(bytes.NewReader(dev.b), int64(len(dev.b)), "x")
	if err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("etc/os-release"); got != "through the link\n" {
		t.Errorf("write through an absolute guest link reached %q", got)
	}
	if got := read("home/guest/local.txt"); got != "from the host\n" {
		t.Errorf("upload into a directory: %q", got)
	}
	fi, err := fsys.Stat("home/guest/local.txt")
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("uploaded file mode %v (new files are 0644): %v", fi.Mode(), err)
	}
	fi, err = fsys.Stat("a/b/hello.txt")
	if err != nil || fi.Mode()&fs.ModeSetuid == 0 {
		t.Errorf("moved and chmodded file: %v %v", fi, err)
	}
	if in := mustInode(t, fsys, "a"); in.UID != 7 || in.GID != 8 {
		t.Errorf("chown: %d:%d", in.UID, in.GID)
	}
	if target, err := fsys.ReadLink("a/l2"); err != nil || target != "/etc/os-release" {
		t.Errorf("link: %q %v", target, err)
	}
	if !strings.Contains(log.String(), "Moving: /home/guest/hello.txt -> /a/b") {
		t.Errorf("log:\n%s", log.String())
	}
}

func mustInode(t *testing.T, fsys *ext4.FS, p string) *ext4.Inode {
	fi, err := fsys.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*ext4.Inode)
}

// An error in the middle discards every change: the device holds the
// same bytes as before.
func TestApplyAllOrNothing(t *testing.T) {
	g, dev := guest(t)
	before := bytes.Clone(dev.b)
	ops := parse(t, "write", "/etc/os-release:changed", "mkdir", "/new", "delete", "/does/not/exist")
	err := customize.Apply(context.Background(), g, ops)
	if err == nil || !strings.Contains(err.Error(), "--delete /does/not/exist") {
		t.Fatalf("Apply: %v", err)
	}
	if !bytes.Equal(before, dev.b) {
		t.Fatal("a failed Apply changed the device")
	}
	if _, err := g.FS.Stat("new"); err == nil {
		t.Fatal("the staged mkdir is still visible after the failure")
	}
	for _, op := range [][]string{
		{"delete", "/"}, {"mkdir", "/etc/os-release/sub"}, {"upload", "/nonexistent:/x"},
		{"copy-in", "/nonexistent:/etc"}, {"move", "/home:/home/guest/inside"},
	} {
		if err := customize.Apply(context.Background(), g, parse(t, op...)); err == nil {
			t.Errorf("%v succeeded", op)
		}
	}
	if !bytes.Equal(before, dev.b) {
		t.Fatal("failed operations changed the device")
	}
}

func TestAppendLineKeepsLineEnds(t *testing.T) {
	g, _ := guest(t)
	ops := parse(t, "write", "/w.txt:a\r\nb", "append-line", "/w.txt:c", "append-line", "/new.txt:x")
	if err := customize.Apply(context.Background(), g, ops); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"w.txt": "a\r\nb\r\nc\r\n", "new.txt": "x\n"} {
		if b, err := fs.ReadFile(g.FS, p); err != nil || string(b) != want {
			t.Errorf("%s: %q %v, want %q", p, b, err, want)
		}
	}
}
