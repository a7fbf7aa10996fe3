package ext4

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/qimg/qimg/internal/qemutest"
)

// need checks for the judges (e2fsprogs, qemu-img): a missing one fails
// the test in CI and skips it elsewhere.
func need(t testing.TB, tools ...string) { t.Helper(); qemutest.Need(t, tools...) }

// run runs a command and returns its standard output, failing the test
// on error.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		name = p
	} else if _, err := os.Stat("/usr/sbin/" + name); err == nil {
		name = "/usr/sbin/" + name
	}
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME=", "LC_ALL=C")
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
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

const (
	hugeSize    = 5 << 30       // a sparse file past 4 GiB
	hugeDataOff = 4<<30 + 1<<29 // where its second piece of data lies
)

// writeHuge makes a sparse file past 4 GiB with data at both ends. It
// lives in its own tree: fstest.TestFS reads every file whole, many times.
func writeHuge(t testing.TB, path string) {
	hf, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	hf.Write(pattern(8192, 6))
	hf.WriteAt(pattern(8192, 7), hugeDataOff)
	if err := hf.Truncate(hugeSize); err != nil {
		t.Fatal(err)
	}
}

// longName makes slow symlinks: a target through it cannot fit in i_block.
var longName = strings.Repeat("long-directory-name-", 5)

// buildTree makes the source tree every variant copies with mkfs -d.
func buildTree(t testing.TB) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	write := func(name string, data []byte) {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("empty", nil)
	write("one", []byte("x"))
	write("sixty", pattern(60, 1))
	write("small", pattern(1000, 2))
	write("big", pattern(5<<20, 3))
	write("nested/a/b/c/file", []byte("deep\n"))
	write(longName+"/target", []byte("reached through a slow link\n"))
	for i := range 100 {
		write(fmt.Sprintf("dir100/f%03d", i), []byte(fmt.Sprint(i)))
	}
	for i := range 3000 {
		write(fmt.Sprintf("dir3000/entry-with-a-longer-name-%04d", i), nil)
	}
	// A file with a hole in the middle.
	sp, err := os.Create(filepath.Join(src, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	sp.Write(pattern(1<<20, 4))
	sp.WriteAt(pattern(1<<20, 5), 4<<20)
	sp.Close()
	// 400 separate extents: a tree of depth 2 with 1 KiB blocks, 1 with 4.
	fr, err := os.Create(filepath.Join(src, "fragmented"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 400 {
		fr.WriteAt(pattern(1024, byte(i)), int64(i)*8192)
	}
	fr.Close()
	if err := os.Chmod(filepath.Join(src, "small"), 0o4751); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"link-rel":         "small",
		"link-abs":         "/nested/a/b/c/file",
		"link-dir":         "nested/a",
		"link-chain":       "link-rel",
		"link-slow-rel":    longName + "/target",
		"link-slow-abs":    "/" + longName + "/" + "target",
		"nested/a/link-up": "../../small",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(src, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(src, "one"), filepath.Join(src, "hard")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o640); err != nil {
		t.Fatal(err)
	}
	return src
}

// xattrsSet are set with debugfs after mkfs: small ones land in the
// inode, the large one in an attribute block.
var xattrsSet = []struct{ path, name, value string }{
	{"small", "user.comment", "hello"},
	{"small", "user.second", "another-value"},
	{"big", "user.large", strings.Repeat("v", 700)},
	{"nested", "user.dir", "on-a-directory"},
}

// mkfs makes a 64 MiB image of src with extra mkfs.ext4 options, sets
// the test xattrs and, for htree, rebuilds directory indexes.
func mkfs(t testing.TB, src string, opts ...string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fs.img")
	args := append([]string{"-q", "-F", "-d", src}, opts...)
	run(t, "mkfs.ext4", append(args, img, "64M")...)
	var cmds strings.Builder
	for i, x := range xattrsSet {
		// Values go through files: debugfs splits its command lines.
		vf := filepath.Join(t.TempDir(), fmt.Sprint("value", i))
		if err := os.WriteFile(vf, []byte(x.value), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&cmds, "ea_set -f %s /%s %s\n", vf, x.path, x.name)
	}
	cmdFile := filepath.Join(t.TempDir(), "cmds")
	if err := os.WriteFile(cmdFile, []byte(cmds.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "debugfs", "-w", "-f", cmdFile, img)
	// -D optimises directories, building htree indexes for the large
	// ones when dir_index is on. Exit status 1 means "fixed", fine here.
	cmd := exec.Command("/usr/sbin/e2fsck", "-fyD", img)
	if out, err := cmd.CombinedOutput(); err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 1 {
			t.Fatalf("e2fsck -fyD: %v\n%s", err, out)
		}
	}
	out, err := exec.Command("/usr/sbin/e2fsck", "-fn", img).CombinedOutput()
	if err != nil {
		t.Fatalf("e2fsck -fn after setup: %v\n%s", err, out)
	}
	return img
}
