package ext4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The crash test runs an edit in a child process (this test binary,
// re-executed) whose device kills the process just before its Nth write
// (a killed process never tears a single write; power loss, which can
// tear a superblock write across sectors, is outside what a process can
// test, and the kernel has the same window). Whatever N, the file system
// after recovery must be the old tree or the new one, e2fsck -fn clean.
const (
	crashEnv   = "QIMG_EXT4_CRASH_IMAGE"
	crashAtEnv = "QIMG_EXT4_CRASH_AT"
)

// killingDevice counts writes and dies at write number at.
type killingDevice struct {
	fileDevice
	n, at int
}

func (d *killingDevice) WriteAt(p []byte, off int64) (int, error) {
	d.n++
	if d.n == d.at {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	return d.fileDevice.WriteAt(p, off)
}

// crashEdit is the edit the child makes: one transaction touching
// directories, files, links and frees.
func crashEdit(f *FS) error {
	steps := []func() error{
		func() error { return f.Mkdir("newdir", 0o755) },
		func() error { return writeString(f, "newdir/file", strings.Repeat("new data\n", 500)) },
		func() error { return writeString(f, "small", "overwritten\n") },
		func() error { return f.Rename("nested/a", "newdir/a") },
		func() error { return f.RemoveAll("dir100") },
		func() error { return f.Truncate("big", 5000) },
		func() error { return f.Symlink("newdir/file", "newlink") },
		func() error { return f.Link("one", "newdir/hard") },
		func() error { return f.Remove("sixty") },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return f.Commit(context.Background())
}

// crashChild is the child's main: the edit on the image named in the
// environment, dying at the write named there; it prints the number of
// writes made when it lives.
func crashChild() {
	img := os.Getenv(crashEnv)
	at, _ := strconv.Atoi(os.Getenv(crashAtEnv))
	fd, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	st, _ := fd.Stat()
	dev := &killingDevice{fileDevice: fileDevice{fd}, at: at}
	f, err := OpenWritable(dev, st.Size(), img)
	if err == nil {
		err = crashEdit(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println(dev.n)
	os.Exit(0)
}

// treeOf describes every file of the file system: type, mode, size,
// links, content hash, link target.
func treeOf(t *testing.T, img string) map[string]string {
	t.Helper()
	f := openImage(t, img)
	out := map[string]string{}
	err := fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := f.Lstat(p)
		if err != nil {
			return err
		}
		in := fi.Sys().(*Inode)
		desc := fmt.Sprintf("%v %d links=%d", fi.Mode(), fi.Size(), in.Links)
		switch {
		case fi.Mode().IsRegular():
			b, err := fs.ReadFile(f, p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %x", sha256.Sum256(b))
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := f.ReadLink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		}
		out[p] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", img, err)
	}
	return out
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// runChild runs the edit on img, dying at write at (0: never); it
// returns the writes made when the child lived.
func runChild(t *testing.T, img string, at int) (int, bool) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+img, crashAtEnv+"="+strconv.Itoa(at))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		n, _ := strconv.Atoi(strings.TrimSpace(stdout.String()))
		return n, true
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.Sys().(syscall.WaitStatus).Signaled() {
		return 0, false
	}
	t.Fatalf("child: %v\n%s", err, stderr.String())
	return 0, false
}

// crashTree is the small tree the crash test edits.
func crashTree(t *testing.T) string {
	src := t.TempDir()
	files := map[string][]byte{
		"one": []byte("1"), "sixty": pattern(60, 1), "small": pattern(1000, 2),
		"big": pattern(200<<10, 3), "nested/a/b/file": []byte("deep\n"),
	}
	for i := range 100 {
		files[fmt.Sprintf("dir100/f%03d", i)] = []byte(fmt.Sprint(i))
	}
	for name, data := range files {
		p := filepath.Join(src, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, data, 0o644))
	}
	return src
}

func TestCrashAtEveryWrite(t *testing.T) {
	need(t, "mkfs.ext4", "e2fsck")
	src := crashTree(t)
	for _, v := range []struct {
		name    string
		opts    []string
		recover string // how the crashed image is recovered
		csumV3  bool   // the journal checksums its blocks, as the kernel sets it
	}{
		{"ext4-qimg", nil, "qimg", false},
		{"ext4-e2fsck", []string{"-b", "4096"}, "e2fsck", false},
		{"ext4-csumv3-e2fsck", nil, "e2fsck", true},
		{"ext3-e2fsck", []string{"-t", "ext3", "-O", "^dir_index"}, "e2fsck", false},
	} {
		t.Run(v.name, func(t *testing.T) {
			dir := t.TempDir()
			pristine := filepath.Join(dir, "pristine.img")
			run(t, "mkfs.ext4", append(append([]string{"-q", "-F", "-d", src}, v.opts...), pristine, "64M")...)
			if v.csumV3 {
				debugfsScript(t, pristine, "jo -c\njc\n")
				if !strings.Contains(run(t, "dumpe2fs", "-h", pristine), "journal_checksum_v3") {
					t.Fatal("debugfs did not turn on journal checksums")
				}
			}
			oldTree := treeOf(t, pristine)
			img := filepath.Join(dir, "img")
			copyFile(t, pristine, img)
			writes, ok := runChild(t, img, 0)
			if !ok || writes < 10 {
				t.Fatalf("the edit made %d writes", writes)
			}
			fsck(t, img)
			newTree := treeOf(t, img)
			if maps.Equal(oldTree, newTree) {
				t.Fatal("the edit changed nothing")
			}
			sawOld, sawNew := 0, 0
			for _, at := range crashPoints(writes, 24) {
				copyFile(t, pristine, img)
				if _, lived := runChild(t, img, at); lived {
					t.Fatalf("child lived past write %d of %d", at, writes)
				}
				// Read-only, the journal is replayed in memory: the
				// tree is already the old or the new one.
				if got := treeOf(t, img); !maps.Equal(got, oldTree) && !maps.Equal(got, newTree) {
					t.Fatalf("crash at write %d of %d: read-only view is neither old nor new:\n%s", at, writes, treeDiff(oldTree, newTree, got))
				}
				recoverImage(t, img, v.recover)
				fsck(t, img)
				switch got := treeOf(t, img); {
				case maps.Equal(got, oldTree):
					sawOld++
				case maps.Equal(got, newTree):
					sawNew++
				default:
					t.Fatalf("crash at write %d of %d left a tree that is neither old nor new:\n%s", at, writes, treeDiff(oldTree, newTree, got))
				}
			}
			if sawOld == 0 || sawNew == 0 {
				t.Fatalf("crashes left %d old and %d new trees; both should occur", sawOld, sawNew)
			}
			t.Logf("%d writes: %d crashes left the old tree, %d the new", writes, sawOld, sawNew)
		})
	}
}

// crashPoints picks up to n writes to die at: the last few (the commit
// and checkpoint) always, the rest spread over the data writes before.
func crashPoints(writes, n int) []int {
	var at []int
	for i := max(1, writes-n/2); i <= writes; i++ {
		at = append(at, i)
	}
	step := max(1, writes/(n/2))
	for i := 1; i < writes-n/2 && len(at) < n; i += step {
		at = append(at, i)
	}
	return at
}

// recoverImage replays the journal of a crashed image with qimg
// (OpenWritable) or e2fsck.
func recoverImage(t *testing.T, img, how string) {
	t.Helper()
	if how == "qimg" {
		f := openRW(t, img)
		must(t, f.Commit(context.Background()))
		return
	}
	out, err := exec.Command("/usr/sbin/e2fsck", "-E", "journal_only", "-y", img).CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 1 {
			t.Fatalf("e2fsck -E journal_only: %v\n%s", err, out)
		}
	}
}

func treeDiff(oldTree, newTree, got map[string]string) string {
	var b strings.Builder
	keys := slices.Sorted(maps.Keys(got))
	for _, k := range keys {
		if got[k] != oldTree[k] && got[k] != newTree[k] {
			fmt.Fprintf(&b, "  %s: %s (old %q, new %q)\n", k, got[k], oldTree[k], newTree[k])
		}
	}
	for k := range oldTree {
		if _, ok := got[k]; !ok {
			if _, inNew := newTree[k]; inNew {
				fmt.Fprintf(&b, "  %s missing\n", k)
			}
		}
	}
	return b.String()
}
