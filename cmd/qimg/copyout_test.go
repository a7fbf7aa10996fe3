package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tool runs a program in dir and fails on a non-zero exit.
func tool(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	r := qemuIn(t, dir, name, args...)
	if r.code != 0 {
		t.Fatalf("%s %v: exit %d: %s", name, args, r.code, r.stderr)
	}
	return r.stdout
}

// debugfsW runs debugfs commands that change img.
func debugfsW(t *testing.T, dir, img, cmds string) {
	t.Helper()
	f := filepath.Join(dir, "debugfs.cmds")
	if err := os.WriteFile(f, []byte(cmds), 0o644); err != nil {
		t.Fatal(err)
	}
	r := qemuIn(t, dir, "debugfs", "-w", "-f", f, img)
	if r.code != 0 || strings.Contains(r.stderr, ": ") && !strings.HasPrefix(r.stderr, "debugfs ") {
		t.Fatalf("debugfs %s: exit %d: %s", cmds, r.code, r.stderr)
	}
}

// copyOutTree writes the tree the copy-out tests put in an image: every
// file type, modes with set-id and sticky bits, owners, old mtimes,
// links of every kind and names a shell would trip on.
func copyOutTree(t *testing.T, dir string) string {
	src := filepath.Join(dir, "src")
	tree := filepath.Join(src, "tree")
	files := []struct {
		name string
		mode fs.FileMode
		data []byte
	}{
		{"file.txt", 0o644, []byte("hello\n")},
		{"exec", 0o755, []byte("#!/bin/sh\necho hi\n")},
		{"secret", 0o600, []byte("s3cr3t")},
		{"suid", 0o755 | fs.ModeSetuid, []byte("suid")},
		{"sgid", 0o755 | fs.ModeSetgid, nil},
		{"ro", 0o444, []byte("read only")},
		{"empty", 0o644, nil},
		{"big", 0o644, bytes.Repeat([]byte("0123456789abcdef"), 3<<16)}, // 3 MiB, many buffers
		{"sub/deep/x.bin", 0o640, bytes.Repeat([]byte{0, 1, 2, 250}, 25000)},
		{"name with spaces", 0o644, []byte("spaces")},
		{"...", 0o644, []byte("three dots")},
		{"-rf", 0o644, []byte("dash")},
	}
	for _, f := range files {
		p := filepath.Join(tree, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	// A file with a hole.
	sp, err := os.Create(filepath.Join(tree, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	sp.WriteAt([]byte("end"), 5<<20)
	sp.Close()
	for _, d := range []string{"sticky", "emptydir", "sub"} {
		os.MkdirAll(filepath.Join(tree, d), 0o755)
	}
	os.Chmod(filepath.Join(tree, "sticky"), 0o777|fs.ModeSticky)
	os.Chmod(filepath.Join(tree, "sub"), 0o750)
	for link, target := range map[string]string{
		"link-rel": "file.txt", "link-abs": "/etc/passwd", "link-dangling": "nowhere/at/all",
		"link-dir": "sub", "sub/deep/up": "../../file.txt",
	} {
		if err := os.Symlink(target, filepath.Join(tree, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(tree, "file.txt"), filepath.Join(tree, "hard")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(tree, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(src, "top.txt"), []byte("top\n"), 0o644)
	if err := os.Lchown(filepath.Join(tree, "secret"), 1234, 5678); err != nil {
		t.Fatal(err)
	}
	os.Lchown(filepath.Join(tree, "link-abs"), 1234, 5678)
	os.Lchown(filepath.Join(tree, "sub"), 4321, 8765)
	// Old times, one hour apart, set last so that nothing changes them
	// after (mkfs.ext4 -d keeps whole seconds).
	i := 0
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		i++
		tm := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC).Add(time.Duration(i) * time.Hour)
		ts := []unix.Timespec{unix.NsecToTimespec(tm.UnixNano()), unix.NsecToTimespec(tm.UnixNano())}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// entryState is what copy-out keeps of a file.
type entryState struct {
	mode     fs.FileMode
	uid, gid uint32
	mtime    time.Time
	content  string // a regular file's SHA-256, a link's target
}

func (s entryState) String() string {
	return fmt.Sprintf("%v %d:%d %s %.16s", s.mode, s.uid, s.gid, s.mtime.UTC().Format(time.RFC3339Nano), s.content)
}

// treeState describes every path below root without following links;
// root itself is left out.
func treeState(t *testing.T, root string) map[string]entryState {
	t.Helper()
	m := map[string]entryState{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		s := entryState{mode: fi.Mode(), uid: st.Uid, gid: st.Gid, mtime: fi.ModTime()}
		switch {
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s.content = fmt.Sprintf("%x", sha256.Sum256(data))
		case fi.Mode()&fs.ModeSymlink != 0:
			s.content, err = os.Readlink(p)
		}
		rel, _ := filepath.Rel(root, p)
		m[rel] = s
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// wantCopy is what copy-out of src should make: the fifo skipped, and
// owners and set-id bits only for root.
func wantCopy(t *testing.T, src string) map[string]entryState {
	want := treeState(t, src)
	delete(want, "tree/fifo")
	if os.Geteuid() != 0 {
		for k, s := range want {
			s.uid, s.gid = uint32(os.Getuid()), uint32(os.Getgid())
			s.mode &^= fs.ModeSetuid | fs.ModeSetgid
			want[k] = s
		}
	}
	return want
}

func compareStates(t *testing.T, what string, got, want map[string]entryState) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: %s missing", what, k)
		} else if g.mode != w.mode || g.uid != w.uid || g.gid != w.gid || !g.mtime.Equal(w.mtime) || g.content != w.content {
			t.Errorf("%s: %s is %v, want %v", what, k, g, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: %s should not be there", what, k)
		}
	}
}

// imageStamp is an image file's contents and modification time.
func imageStamp(t *testing.T, p string) string {
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	return fmt.Sprintf("%x %v", sha256.Sum256(data), fi.ModTime())
}

// TestCopyOut copies trees, files and links out of an ext4 filesystem
// made by mkfs.ext4 -d, as raw, compressed qcow2 and a qcow2 overlay,
// and compares modes, owners, mtimes, contents and link targets with the
// source tree, and contents and links with debugfs rdump. The images are
// unchanged afterwards, as after ls and cat.
func TestCopyOut(t *testing.T) {
	dir := t.TempDir()
	src := copyOutTree(t, dir)
	want := wantCopy(t, src)
	if m := want["tree/sticky"].mode; m&fs.ModeSticky == 0 || os.Geteuid() == 0 && want["tree/sgid"].mode&fs.ModeSetgid == 0 {
		t.Fatalf("the source tree lost its special bits: sticky %v", m)
	}
	tool(t, dir, "mkfs.ext4", "-q", "-F", "-d", src, "fs.raw", "32M")
	// Nanoseconds, which mkfs.ext4 -d drops: file.txt (and its hard
	// link hard) are half a second later.
	debugfsW(t, dir, "fs.raw", "sif /tree/file.txt mtime_extra 2000000000\n")
	for _, k := range []string{"tree/file.txt", "tree/hard"} {
		s := want[k]
		s.mtime = s.mtime.Add(500 * time.Millisecond)
		want[k] = s
	}
	img(t, dir, "convert", "-c", "-f", "raw", "-O", "qcow2", "fs.raw", "fs.qcow2")
	img(t, dir, "create", "-q", "-f", "qcow2", "-b", "fs.qcow2", "-F", "qcow2", "top.qcow2")
	images := []string{"fs.raw", "fs.qcow2", "top.qcow2"}
	stamps := map[string]string{}
	for _, im := range images {
		stamps[im] = imageStamp(t, filepath.Join(dir, im))
	}
	for _, im := range images {
		out := filepath.Join(dir, "out-"+im)
		os.Mkdir(out, 0o755)
		r := qimgIn(t, dir, "copy-out", im, "/tree", "/top.txt", out)
		if r.code != 0 || r.stdout != "" || r.stderr != "qimg: warning: "+im+": /tree/fifo: fifo not copied\n" {
			t.Errorf("copy-out %s: %+v", im, r)
		}
		compareStates(t, im, treeState(t, out), want)
	}
	// debugfs rdump agrees on contents and link targets.
	os.Mkdir(filepath.Join(dir, "rdump"), 0o755)
	tool(t, dir, "debugfs", "-R", "rdump /tree rdump", "fs.raw")
	rd := treeState(t, filepath.Join(dir, "rdump"))
	ours := treeState(t, filepath.Join(dir, "out-top.qcow2"))
	for k, s := range rd {
		if o := ours[k]; o.content != s.content || o.mode.Type() != s.mode.Type() {
			t.Errorf("%s: ours %v, debugfs rdump %v", k, o, s)
		}
	}
	// The whole filesystem lands in LOCALDIR itself, whose own mode
	// stays.
	all := filepath.Join(dir, "all")
	os.Mkdir(all, 0o711)
	before, _ := os.Stat(all)
	if r := qimgIn(t, dir, "copy-out", "top.qcow2", "/", "all"); r.code != 0 {
		t.Errorf("copy-out /: %+v", r)
	}
	got := treeState(t, all)
	if _, ok := got["lost+found"]; !ok {
		t.Error("copy-out / made no lost+found")
	}
	delete(got, "lost+found")
	compareStates(t, "copy-out /", got, want)
	if after, _ := os.Stat(all); after.Mode() != before.Mode() {
		t.Errorf("LOCALDIR changed from %v to %v", before, after)
	}
	// One file, and a link named as a REMOTE, which is copied as a link.
	one := filepath.Join(dir, "one")
	os.Mkdir(one, 0o755)
	if r := qimgIn(t, dir, "copy-out", "fs.qcow2", "/tree/sub/deep/x.bin", "/tree/link-dir", "one"); r.code != 0 {
		t.Errorf("copy-out of a file and a link: %+v", r)
	}
	compareStates(t, "one file", treeState(t, one), map[string]entryState{"x.bin": want["tree/sub/deep/x.bin"], "link-dir": want["tree/link-dir"]})
	// Read-only: no command changes an image.
	for _, im := range images {
		qimgIn(t, dir, "ls", "-lR", im, "/")
		qimgIn(t, dir, "cat", im, "/tree/big")
	}
	for _, im := range images {
		if s := imageStamp(t, filepath.Join(dir, im)); s != stamps[im] {
			t.Errorf("%s changed: %s, was %s", im, s, stamps[im])
		}
	}
}

// TestCopyOutErrors: a missing REMOTE names the image and the path, a
// missing or non-directory LOCALDIR names it, and both exit 1.
func TestCopyOutErrors(t *testing.T) {
	dir := t.TempDir()
	src := copyOutTree(t, dir)
	tool(t, dir, "mkfs.ext4", "-q", "-F", "-d", src, "fs.raw", "32M")
	os.Mkdir(filepath.Join(dir, "out"), 0o755)
	for _, c := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"fs.raw", "/nope", "out"}, "qimg: fs.raw: /nope: No such file or directory\n"},
		{[]string{"fs.raw", "/top.txt/x", "out"}, "qimg: fs.raw: /top.txt/x: No such file or directory\n"},
		{[]string{"fs.raw", "/tree/link-abs", "/tree", "out"}, ""}, // a dangling link is copied
		{[]string{"fs.raw", "/top.txt", "nodir"}, "qimg: nodir: No such file or directory\n"},
		{[]string{"fs.raw", "/top.txt", "fs.raw"}, "qimg: fs.raw: Not a directory\n"},
		{[]string{"fs.raw", "out"}, "qimg: Expecting an image, at least one path inside it and a local directory\nTry 'qimg --help' for more information\n"},
		{[]string{"missing.qcow2", "/top.txt", "out"}, "qimg: Could not open 'missing.qcow2': Could not open 'missing.qcow2': No such file or directory\n"}, // as qemu-img says it
	} {
		r := qimgIn(t, dir, append([]string{"copy-out"}, c.args...)...)
		switch {
		case c.stderr == "" && (r.code != 0 || strings.Contains(r.stderr, "qimg: fs.raw: /")):
			t.Errorf("copy-out %v: %+v", c.args, r)
		case c.stderr != "" && (r.code != 1 || r.stderr != c.stderr):
			t.Errorf("copy-out %v: %+v, want exit 1 and %q", c.args, r, c.stderr)
		}
	}
}

// renameEntry rewrites, in the filesystem image img (without
// metadata_csum, whose directory checksums would then fail), the one
// directory entry named old of file type ftype (1 file, 2 directory,
// 7 link) to new, of the same length: names no tool would make.
func renameEntry(t *testing.T, img string, ftype byte, old, new string) {
	t.Helper()
	if len(old) != len(new) {
		t.Fatalf("%q and %q differ in length", old, new)
	}
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	pat := append([]byte{byte(len(old)), ftype}, old...)
	if n := bytes.Count(data, pat); n != 1 {
		t.Fatalf("entry %q found %d times in %s", old, n, img)
	}
	i := bytes.Index(data, pat)
	copy(data[i+2:], new)
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// hostileImage makes an ext4 image of a small tree, changed by debugfs
// commands then by entry renames, and an empty LOCALDIR "out" and a
// directory "outside" beside it holding one file, victim, that
// copy-out must never reach.
func hostileImage(t *testing.T, cmds string, renames ...[3]string) (dir, outside string) {
	dir = t.TempDir()
	src := filepath.Join(dir, "src")
	for name, content := range map[string]string{
		"escape-dXr/payload": "payload\n", "escape-fXle": "guest data\n", "zz": "dot dot\n",
		"slashXname": "slash\n", "realdir/f": "f\n", "...": "dots\n", "bad\nname\x1b[31m": "terminal\n",
	} {
		p := filepath.Join(src, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	outside = filepath.Join(dir, "outside")
	os.MkdirAll(outside, 0o755)
	os.WriteFile(filepath.Join(outside, "victim"), []byte("victim\n"), 0o644)
	os.Mkdir(filepath.Join(dir, "out"), 0o755)
	tool(t, dir, "mkfs.ext4", "-q", "-F", "-b", "1024", "-O", "^metadata_csum", "-d", src, "fs.raw", "8M")
	debugfsW(t, dir, "fs.raw", strings.ReplaceAll(cmds, "OUTSIDE", outside))
	for _, r := range renames {
		renameEntry(t, filepath.Join(dir, "fs.raw"), map[string]byte{"file": 1, "dir": 2, "link": 7}[r[0]], r[1], r[2])
	}
	return dir, outside
}

// checkConfined fails if outside holds anything but the untouched victim,
// or out holds anything but directories, regular files and links.
func checkConfined(t *testing.T, dir, outside string) {
	t.Helper()
	ents, _ := os.ReadDir(outside)
	data, _ := os.ReadFile(filepath.Join(outside, "victim"))
	if len(ents) != 1 || string(data) != "victim\n" {
		t.Errorf("outside LOCALDIR: %v, victim %q", ents, data)
	}
	for p, s := range treeState(t, filepath.Join(dir, "out")) {
		if m := s.mode.Type(); m != 0 && m != fs.ModeDir && m != fs.ModeSymlink {
			t.Errorf("out/%s is %v", p, s.mode)
		}
	}
}

// TestCopyOutHostileLinks: guest links aimed at the host, absolute and
// climbing, are copied as links with their targets as stored and never
// followed; odd names are copied as they are, and ls quotes those that
// would drive a terminal.
func TestCopyOutHostileLinks(t *testing.T) {
	dir, outside := hostileImage(t, "mkdir etc\n"+
		"symlink etc/evil /../../../../OUTSIDE/x\n"+
		"symlink abs-dir OUTSIDE\n"+
		"symlink abs-file OUTSIDE/victim\n"+
		"symlink climb ../../../../../../../../../../../OUTSIDE/victim\n")
	r := qimgIn(t, dir, "copy-out", "fs.raw", "/", "/etc", "out")
	if r.code != 0 {
		t.Fatalf("copy-out: %+v", r)
	}
	checkConfined(t, dir, outside)
	got := treeState(t, filepath.Join(dir, "out"))
	for link, target := range map[string]string{
		"etc/evil": "/../../../../" + outside + "/x", "abs-dir": outside, "abs-file": outside + "/victim",
		"climb": "../../../../../../../../../../../" + outside + "/victim",
	} {
		if s := got[link]; s.mode.Type() != fs.ModeSymlink || s.content != target {
			t.Errorf("%s: %v, want a link to %s", link, s, target)
		}
	}
	if s := got["..."]; !s.mode.IsRegular() || s.content != fmt.Sprintf("%x", sha256.Sum256([]byte("dots\n"))) {
		t.Errorf("...: %v", s)
	}
	if _, ok := got["bad\nname\x1b[31m"]; !ok {
		t.Error("the name with a newline and an escape was not copied")
	}
	// Copying again over the links already made replaces them.
	if r := qimgIn(t, dir, "copy-out", "fs.raw", "/", "/etc", "out"); r.code != 0 {
		t.Errorf("copy-out again: %+v", r)
	}
	checkConfined(t, dir, outside)
	if r := qimgIn(t, dir, "ls", "fs.raw", "/"); !strings.Contains(r.stdout, "\nbad\\nname\\033[31m\n") {
		t.Errorf("ls of a name with control characters: %q", r.stdout)
	}
	// cat follows links inside the guest only: the host's victim is not
	// the guest's.
	if r := qimgIn(t, dir, "cat", "fs.raw", "/abs-file"); r.code != 1 || r.stdout != "" {
		t.Errorf("cat through a link to a host path: %+v", r)
	}
}

// TestCopyOutHostileNames: entries no tool makes. Two entries of one
// name, a link to a host directory and a directory holding a file (a
// tar archive's classic escape), and a link to a host file and a file;
// ".." as a name; a name with a slash; a directory that contains itself.
func TestCopyOutHostileNames(t *testing.T) {
	dir, outside := hostileImage(t, "symlink escape-dir OUTSIDE\nsymlink escape-file OUTSIDE/victim\n",
		[3]string{"dir", "escape-dXr", "escape-dir"}, [3]string{"file", "escape-fXle", "escape-file"},
		[3]string{"file", "zz", ".."})
	r := qimgIn(t, dir, "copy-out", "fs.raw", "/", "out")
	// Which of two equal names comes first is the sort's choice: a
	// directory after the link replaces it, a link after the directory
	// finds a directory in the way.
	if r.code != 0 && !strings.Contains(r.stderr, "a directory is in the way") {
		t.Errorf("copy-out: %+v", r)
	}
	checkConfined(t, dir, outside)
	got := treeState(t, filepath.Join(dir, "out"))
	if s, ok := got["escape-dir/payload"]; ok && !s.mode.IsRegular() {
		t.Errorf("escape-dir/payload: %v", s)
	}
	if s := got["escape-file"]; s.mode.Type() != fs.ModeSymlink && s.content != fmt.Sprintf("%x", sha256.Sum256([]byte("guest data\n"))) {
		t.Errorf("escape-file: %v", s)
	}
	if _, ok := got[".."]; ok {
		t.Error("an entry named .. was copied")
	}

	dir, outside = hostileImage(t, "", [3]string{"file", "slashXname", "slash/name"})
	r = qimgIn(t, dir, "copy-out", "fs.raw", "/", "out")
	if r.code != 1 || !strings.Contains(r.stderr, "qimg: fs.raw: /: ") || !strings.Contains(r.stderr, "corrupt") {
		t.Errorf("copy-out of a name with a slash: %+v", r)
	}
	checkConfined(t, dir, outside)
	if r := qimgIn(t, dir, "ls", "-R", "fs.raw", "/"); r.code != 1 || !strings.Contains(r.stderr, "corrupt") {
		t.Errorf("ls -R of a name with a slash: %+v", r)
	}

	dir, outside = hostileImage(t, "ln realdir realdir/loop\n")
	r = qimgIn(t, dir, "copy-out", "fs.raw", "/realdir", "out")
	if r.code != 1 || r.stderr != "qimg: fs.raw: /realdir/loop: directory met twice (a loop or a hard link to a directory): the filesystem is corrupt\n" {
		t.Errorf("copy-out of a directory loop: %+v", r)
	}
	checkConfined(t, dir, outside)
	if r := qimgIn(t, dir, "ls", "-R", "fs.raw", "/"); r.code != 1 || !strings.Contains(r.stderr, "directory met twice") {
		t.Errorf("ls -R of a directory loop: %+v", r)
	}
}

// TestCopyOutGoesOn: a file that cannot be read (its inode cleared) is
// reported, and the others are copied.
func TestCopyOutGoesOn(t *testing.T) {
	dir, outside := hostileImage(t, "clri escape-fXle\n")
	r := qimgIn(t, dir, "copy-out", "fs.raw", "/", "out")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "qimg: fs.raw: /escape-fXle: ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("copy-out: %+v", r)
	}
	checkConfined(t, dir, outside)
	got := treeState(t, filepath.Join(dir, "out"))
	for _, p := range []string{"...", "escape-dXr/payload", "realdir/f", "zz"} {
		if !got[p].mode.IsRegular() {
			t.Errorf("%s not copied", p)
		}
	}
}

// TestCopyOutLocalHazards: what LOCALDIR holds already is merged into or
// replaced, never written through: a link where a file or a directory
// goes, a hard link to a file outside; a directory where a file goes
// is an error.
func TestCopyOutLocalHazards(t *testing.T) {
	dir, outside := hostileImage(t, "")
	out := filepath.Join(dir, "out")
	os.MkdirAll(filepath.Join(out, "realdir"), 0o755)
	os.WriteFile(filepath.Join(out, "realdir", "mine"), []byte("kept\n"), 0o644)
	os.Symlink(filepath.Join(outside, "victim"), filepath.Join(out, "realdir", "f")) // a link where a file goes
	os.Symlink(outside, filepath.Join(out, "escape-dXr"))                            // a link where a directory goes
	os.Link(filepath.Join(outside, "victim"), filepath.Join(out, "escape-fXle"))     // a hard link where a file goes
	if r := qimgIn(t, dir, "copy-out", "fs.raw", "/realdir", "/escape-dXr", "/escape-fXle", "out"); r.code != 0 {
		t.Fatalf("copy-out: %+v", r)
	}
	checkConfined(t, dir, outside)
	got := treeState(t, out)
	sum := func(s string) string { return fmt.Sprintf("%x", sha256.Sum256([]byte(s))) }
	for p, content := range map[string]string{"realdir/mine": "kept\n", "realdir/f": "f\n",
		"escape-dXr/payload": "payload\n", "escape-fXle": "guest data\n"} {
		if s := got[p]; !s.mode.IsRegular() || s.content != sum(content) {
			t.Errorf("%s: %v, want a file holding %q", p, s, content)
		}
	}
	if !got["escape-dXr"].mode.IsDir() {
		t.Errorf("escape-dXr: %v", got["escape-dXr"])
	}
	os.RemoveAll(filepath.Join(out, "realdir"))
	os.MkdirAll(filepath.Join(out, "realdir", "f"), 0o755)
	r := qimgIn(t, dir, "copy-out", "fs.raw", "/realdir", "out")
	if r.code != 1 || r.stderr != "qimg: out/realdir/f: a directory is in the way\n" {
		t.Errorf("a directory in the way: %+v", r)
	}
}

// TestCopyOutAsUser runs the copier as it runs for a user other than
// root: owners are not kept and set-user-ID and set-group-ID bits are
// dropped (the sticky bit stays), as tar does.
func TestCopyOutAsUser(t *testing.T) {
	dir := t.TempDir()
	src := copyOutTree(t, dir)
	tool(t, dir, "mkfs.ext4", "-q", "-F", "-d", src, "fs.raw", "32M")
	e := &env{ctx: t.Context(), stdout: io.Discard, stderr: io.Discard}
	var o guestOptions
	fsys, done, err := o.open(e, filepath.Join(dir, "fs.raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	top, err := openHostDir(out)
	if err != nil {
		t.Fatal(err)
	}
	defer top.close()
	c := newCopier(t.Context(), fsys, "fs.raw", out, io.Discard)
	c.asRoot = false
	if err := c.copyRemote(top, "/tree"); err != nil || c.failed {
		t.Fatalf("copy: %v", err)
	}
	got := treeState(t, out)
	for p, want := range map[string]fs.FileMode{"tree/suid": 0o755, "tree/sgid": 0o755, "tree/sticky": fs.ModeDir | fs.ModeSticky | 0o777, "tree/ro": 0o444} {
		if got[p].mode != want {
			t.Errorf("%s: %v, want %v", p, got[p].mode, want)
		}
	}
	if s := got["tree/secret"]; s.uid != uint32(os.Getuid()) || s.gid != uint32(os.Getgid()) {
		t.Errorf("tree/secret owned %d:%d, want ours", s.uid, s.gid)
	}
}

// TestCopyOutISO copies out of a Rock Ridge ISO 9660 image, a filesystem
// that is not an EntryFS (files are opened by path) and records no
// owners here: contents, modes, links and mtimes as xorriso stored them.
func TestCopyOutISO(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "openstack", "latest"), 0o755)
	os.WriteFile(filepath.Join(src, "openstack", "latest", "meta_data.json"), []byte(`{"uuid": "x"}`), 0o644)
	os.WriteFile(filepath.Join(src, "user-data"), []byte("#cloud-config\n"), 0o600)
	os.Symlink("openstack/latest/meta_data.json", filepath.Join(src, "md"))
	tool(t, dir, "xorriso", "-as", "mkisofs", "-quiet", "-V", "config-2", "-R", "-o", "cd.iso", src)
	os.Mkdir(filepath.Join(dir, "out"), 0o755)
	if r := qimgIn(t, dir, "copy-out", "cd.iso", "/", "out"); r.code != 0 {
		t.Fatalf("copy-out: %+v", r)
	}
	got, want := treeState(t, filepath.Join(dir, "out")), treeState(t, src)
	for p, w := range want {
		g := got[p]
		if g.mode != w.mode || g.content != w.content || !g.mtime.Equal(w.mtime.Truncate(time.Second)) {
			t.Errorf("%s: %v, want %v", p, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("copied %d paths, want %d", len(got), len(want))
	}
}

// TestCopyOutXFS copies out of an XFS filesystem made by mkfs.xfs from a
// prototype (which sets owners and modes but not times): contents,
// modes with set-id bits, owners, links as links, a device skipped.
func TestCopyOutXFS(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.WriteFile(data, []byte("xfs data\n"), 0o644)
	proto := "/dev/null\n0 0\nd--755 0 0\n" +
		"etc d--750 10 20\n hostname ---640 1234 5678 " + data + "\n link l--777 0 0 /etc/hostname\n null c--666 0 0 1 3\n $\n" +
		"bin d--755 0 0\n su -u-755 0 0 " + data + "\n $\n$\n"
	os.WriteFile(filepath.Join(dir, "proto"), []byte(proto), 0o644)
	tool(t, dir, "truncate", "-s", "150M", "xfs.raw")
	mkfs := exec.Command("mkfs.xfs", "-q", "-f", "-p", "proto", "xfs.raw")
	mkfs.Dir = dir
	// mkfs.xfs wants 300 MiB unless it believes fstests runs it.
	mkfs.Env = append(os.Environ(), "TEST_DIR=1", "TEST_DEV=1", "QA_CHECK_FS=1")
	if out, err := mkfs.CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs: %v\n%s", err, out)
	}
	os.Mkdir(filepath.Join(dir, "out"), 0o755)
	r := qimgIn(t, dir, "copy-out", "xfs.raw", "/etc", "/bin", "out")
	if r.code != 0 || r.stderr != "qimg: warning: xfs.raw: /etc/null: character device not copied\n" {
		t.Errorf("copy-out: %+v", r)
	}
	got := treeState(t, filepath.Join(dir, "out"))
	sum := fmt.Sprintf("%x", sha256.Sum256([]byte("xfs data\n")))
	root := os.Geteuid() == 0
	owner := func(uid, gid uint32) (uint32, uint32) {
		if root {
			return uid, gid
		}
		return uint32(os.Getuid()), uint32(os.Getgid())
	}
	suid := fs.FileMode(0o755)
	if root {
		suid |= fs.ModeSetuid
	}
	for p, w := range map[string]struct {
		mode     fs.FileMode
		uid, gid uint32
		content  string
	}{
		"etc": {fs.ModeDir | 0o750, 10, 20, ""}, "etc/hostname": {0o640, 1234, 5678, sum},
		"etc/link": {fs.ModeSymlink | 0o777, 0, 0, "/etc/hostname"}, "bin": {fs.ModeDir | 0o755, 0, 0, ""},
		"bin/su": {suid, 0, 0, sum},
	} {
		g := got[p]
		uid, gid := owner(w.uid, w.gid)
		if g.mode != w.mode || g.uid != uid || g.gid != gid || g.content != w.content {
			t.Errorf("%s: %v, want %v %d:%d %.16s", p, g, w.mode, uid, gid, w.content)
		}
	}
	if len(got) != 5 {
		t.Errorf("copied %d paths: %v", len(got), got)
	}
}
