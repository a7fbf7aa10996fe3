package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/internal/qemutest"
)

// result is what one command printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

// qimgIn runs qimg in-process with dir as the working directory.
func qimgIn(t *testing.T, dir string, args ...string) result {
	t.Helper()
	t.Chdir(dir)
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return result{out.String(), errb.String(), code}
}

// qemuIn runs qemu-img (or another tool) in dir.
func qemuIn(t *testing.T, dir, tool string, args ...string) result {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s is not installed (run scripts/setup.sh): %v", tool, err)
	}
	var out, errb bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &out, &errb
	cmd.Env = append(os.Environ(), "TZ="+os.Getenv("TZ"))
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return result{out.String(), errb.String(), code}
}

// normalize maps qemu-img's program name in messages to qimg's.
func normalize(s string) string {
	s = strings.ReplaceAll(s, "qemu-img: ", "qimg: ")
	return strings.ReplaceAll(s, "Try 'qemu-img --help'", "Try 'qimg --help'")
}

// same runs the command with qemu-img in dirQ and qimg in dirI and fails
// unless standard output, standard error and the exit code agree.
func same(t *testing.T, dirQ, dirI string, args ...string) result {
	t.Helper()
	want := qemuIn(t, dirQ, "qemu-img", args...)
	// QEMU times PBKDF2 (LUKS create, measure) with the thread's CPU
	// clock, which on a loaded machine sometimes fails; only that is
	// retried (as qemutest.CreateEncrypted does).
	for try := 0; try < 4 && strings.Contains(want.stderr, "Unable to get accurate CPU usage"); try++ {
		want = qemuIn(t, dirQ, "qemu-img", args...)
	}
	got := qimgIn(t, dirI, args...)
	if got.code != want.code {
		t.Errorf("%v: exit %d, qemu-img exits %d\nqimg stderr: %sqemu-img stderr: %s", args, got.code, want.code, got.stderr, want.stderr)
	}
	if got.stdout != want.stdout {
		t.Errorf("%v: standard output differs\nqimg:\n%s\nqemu-img:\n%s", args, got.stdout, want.stdout)
	}
	if strings.TrimRight(got.stderr, "\n") != strings.TrimRight(normalize(want.stderr), "\n") {
		t.Errorf("%v: standard error differs\nqimg:\n%s\nqemu-img:\n%s", args, got.stderr, normalize(want.stderr))
	}
	return got
}

// img runs qemu-img in dir and fails on a non-zero exit.
func img(t *testing.T, dir string, args ...string) string {
	t.Helper()
	r := qemuIn(t, dir, "qemu-img", args...)
	if r.code != 0 {
		t.Fatalf("qemu-img %v: exit %d: %s", args, r.code, r.stderr)
	}
	return r.stdout
}

// qio runs qemu-io commands on an image in dir.
func qio(t *testing.T, dir, format, file string, cmds ...string) {
	t.Helper()
	args := []string{"-f", format}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	r := qemuIn(t, dir, "qemu-io", append(args, file)...)
	if r.code != 0 || strings.Contains(r.stdout, "failed") {
		t.Fatalf("qemu-io %v %s: %s%s", cmds, file, r.stdout, r.stderr)
	}
}

// setRefcount patches the 16-bit refcount of a host cluster in the first
// refcount block of a default qcow2 image (table at 64k, block at 128k).
func setRefcount(t *testing.T, path string, cluster int, v uint16) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	if _, err := f.WriteAt(b[:], 0x20000+int64(cluster)*2); err != nil {
		t.Fatal(err)
	}
}

// fixtures makes the test images in dir with qemu-img and qemu-io only,
// so that qimg is judged on images it did not write.
func fixtures(t *testing.T, dir string) {
	t.Helper()
	img(t, dir, "create", "-q", "-f", "qcow2", "a.qcow2", "1G")
	img(t, dir, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "v2.qcow2", "100M")
	img(t, dir, "create", "-q", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", "c.qcow2")
	img(t, dir, "create", "-q", "-f", "qcow2", "-b", "c.qcow2", "-F", "qcow2", "m.qcow2")
	img(t, dir, "create", "-q", "-f", "raw", "r.raw", "10M")
	qio(t, dir, "raw", "r.raw", "write -P 7 1M 64k")
	img(t, dir, "create", "-q", "-f", "qcow2", "-b", "r.raw", "-F", "raw", "mp.qcow2", "8M")
	qio(t, dir, "qcow2", "mp.qcow2", "write -P 1 0 128k", "write -z 256k 64k", "write -c -P 3 512k 64k", "write -P 9 2M 4k")
	img(t, dir, "create", "-q", "-f", "qcow2", "-o", "preallocation=metadata,cluster_size=4096,lazy_refcounts=on,refcount_bits=8", "d.qcow2", "5M")
	img(t, dir, "create", "-q", "-f", "qcow2", "-o", "extended_l2=on,compression_type=zstd", "e.qcow2", "1000")
	qio(t, dir, "qcow2", "e.qcow2", "write -P 5 0 512")
	img(t, dir, "create", "-q", "-f", "qcow2", "-o", "data_file=f.data,data_file_raw=on", "f.qcow2", "1M")
	img(t, dir, "create", "-q", "-f", "qcow2", "s.qcow2", "64M")
	qio(t, dir, "qcow2", "s.qcow2", "write -P 1 0 1M")
	img(t, dir, "snapshot", "-c", "snap1", "s.qcow2")
	img(t, dir, "snapshot", "-c", "a longer snapshot name here", "s.qcow2")
	if err := os.WriteFile(filepath.Join(dir, "odd.raw"), bytes.Repeat([]byte("qimg"), 250), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	img(t, dir, "create", "-q", "-f", "qcow2", "-u", "-b", "../a.qcow2", "-F", "qcow2", "sub/l.qcow2", "1G")
	img(t, dir, "create", "-q", "-f", "qcow2", "leak.qcow2", "1M")
	qio(t, dir, "qcow2", "leak.qcow2", "write 0 64k")
	if err := os.Truncate(filepath.Join(dir, "leak.qcow2"), 8<<16); err != nil {
		t.Fatal(err)
	}
	setRefcount(t, filepath.Join(dir, "leak.qcow2"), 7, 1) // referenced by nothing
	b, err := os.ReadFile(filepath.Join(dir, "leak.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "corrupt.qcow2"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	setRefcount(t, filepath.Join(dir, "corrupt.qcow2"), 3, 0) // the L1 table
	img(t, dir, "create", "-q", "-f", "qcow2", "bm.qcow2", "64M")
	qio(t, dir, "qcow2", "bm.qcow2", "write -P 1 0 1M")
	img(t, dir, "bitmap", "--add", "bm.qcow2", "b0")
	img(t, dir, "bitmap", "--add", "-g", "128k", "--disable", "bm.qcow2", "a longer bitmap name")
	// bmu.qcow2 is bm.qcow2 after qimg opened it for writing: its bitmaps
	// are in use (qimg does not maintain them).
	if out, err := exec.Command("cp", filepath.Join(dir, "bm.qcow2"), filepath.Join(dir, "bmu.qcow2")).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	w, err := qcow2.Open(filepath.Join(dir, "bmu.qcow2"), &qcow2.OpenOptions{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	// The first write makes them stale; it rewrites what is there.
	if _, err := w.WriteAt(bytes.Repeat([]byte{1}, 512), 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	img(t, dir, "create", "-q", "-f", "raw", "z1", "1M")
	img(t, dir, "create", "-q", "-f", "raw", "z2", "2M")
	qio(t, dir, "raw", "z2", "write -P 1 1536k 1")
	img(t, dir, "create", "-q", "-f", "qcow2", "q1", "1M")
}

// twin makes two identical fixture directories, one for qemu-img and one
// for qimg, for commands that write.
func twin(t *testing.T) (string, string) {
	t.Helper()
	dq, di := t.TempDir(), t.TempDir()
	fixtures(t, dq)
	if out, err := exec.Command("cp", "-a", dq+"/.", di).CombinedOutput(); err != nil {
		t.Fatalf("copying fixtures: %v %s", err, out)
	}
	return dq, di
}

var _ = qemutest.Check
