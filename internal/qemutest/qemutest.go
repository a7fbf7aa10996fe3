// Package qemutest runs qemu-img and qemu-io, the oracles every qimg test
// compares against, and the other tools that judge qimg's output (blkid). A missing tool fails the test: the setup script
// installs them, and a test that silently skips proves nothing.
package qemutest

import (
	"bytes"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Run runs a command and returns its standard output; a non-zero exit
// fails the test.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, code, stderr := RunCode(t, name, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d\n%s%s", name, strings.Join(args, " "), code, out, stderr)
	}
	return out
}

// RunCode runs a command and returns its standard output, exit code and
// standard error.
func RunCode(t testing.TB, name string, args ...string) (string, int, string) {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (run scripts/setup.sh): %v", name, err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return stdout.String(), code, stderr.String()
}

// Img runs qemu-img.
func Img(t testing.TB, args ...string) string { t.Helper(); return Run(t, "qemu-img", args...) }

// IO runs qemu-io with one -c per command on a qcow2 image and fails on
// any reported error (qemu-io exits 0 even when a command fails).
func IO(t testing.TB, file string, cmds ...string) string {
	t.Helper()
	return IOFormat(t, "qcow2", file, cmds...)
}

// IOFormat is IO on an image of the given format.
func IOFormat(t testing.TB, format, file string, cmds ...string) string {
	t.Helper()
	args := []string{"-f", format}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out := Run(t, "qemu-io", append(args, file)...)
	if strings.Contains(out, "failed") || strings.Contains(out, "error") {
		t.Fatalf("qemu-io %v on %s:\n%s", cmds, file, out)
	}
	return out
}

// Check runs qemu-img check and fails unless the image is clean.
func Check(t testing.TB, file string) {
	t.Helper()
	out, code, stderr := RunCode(t, "qemu-img", "check", file)
	if code != 0 {
		t.Fatalf("qemu-img check %s: exit %d\n%s%s", file, code, out, stderr)
	}
}

// ToRaw converts an image to raw with qemu-img and returns the bytes.
func ToRaw(t testing.TB, file string) []byte {
	t.Helper()
	return ToRawAs(t, "", file)
}

// ToRawAs is ToRaw with the input format given (-f), or probed if empty.
func ToRawAs(t testing.TB, format, file string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "oracle.raw")
	args := []string{"convert", "-O", "raw"}
	if format != "" {
		args = append(args, "-f", format)
	}
	Img(t, append(args, file, out)...)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RandomFile writes n random bytes to a new file in dir and returns its path.
func RandomFile(t testing.TB, dir string, n int) string {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	p := filepath.Join(dir, "random.raw")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// CreateEncrypted runs a `qemu-img create` that sets up LUKS encryption.
// QEMU times the key derivation with the thread's CPU clock, which on a
// loaded machine sometimes fails with "Unable to get accurate CPU usage";
// that failure alone is retried.
func CreateEncrypted(t testing.TB, args ...string) {
	t.Helper()
	for try := 0; ; try++ {
		out, code, stderr := RunCode(t, "qemu-img", args...)
		if code == 0 {
			return
		}
		if try == 4 || !strings.Contains(stderr, "accurate CPU usage") {
			t.Fatalf("qemu-img %v: exit %d\n%s%s", args, code, out, stderr)
		}
	}
}
