package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/internal/qemutest"
)

// A disk with nothing to boot: SeaBIOS says so on the serial console,
// boot-test fails at once with exit 1, the phases so far and the console's
// tail, and leaves nothing behind. (The Debian guest's boots are in
// package boot's tests.)
func TestBootTestNothingToBoot(t *testing.T) {
	dir := t.TempDir()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	if err := os.WriteFile(filepath.Join(dir, "blank.raw"), make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	r := qimgIn(t, dir, "boot-test", "--local", "blank.raw", "--timeout", "2m", "--memory", "256", "--log", "console.log", "--console")
	if r.code != 1 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"SeaBIOS (version ", "blank.raw did not boot under ", "firmware ", "login prompt         missing", "failed: no bootable device at "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, want := range []string{"console (last ", "  | SeaBIOS (version ", "  | No bootable device.", `qimg: boot-test: blank.raw: no bootable device at `} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr+r.stdout, "\x1b") {
		t.Error("the console stream or tail holds escape sequences")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "console.log")); err != nil || !strings.Contains(string(b), "No bootable device.") {
		t.Errorf("console.log: %v %q", err, b)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestBootTestRefuses(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "base.raw"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	qemutest.Img(t, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", filepath.Join(dir, "top.qcow2"))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"boot-test", "base.raw"}, "qimg: boot-test needs --local"},
		{[]string{"boot-test", "--local"}, "qimg: Expecting one image file name"},
		{[]string{"boot-test", "--local", "--expect", "(", "base.raw"}, `qimg: --expect "(": error parsing regexp`},
		{[]string{"boot-test", "--local", "--timeout", "-1s", "base.raw"}, "qimg: --timeout must not be negative"},
		{[]string{"boot-test", "--local", "--mac", "01:00:5e:00:00:01", "base.raw"}, "multicast"},
		{[]string{"boot-test", "--local", "--accel", "hvf", "base.raw"}, `accelerator "hvf" is neither kvm nor tcg`},
		{[]string{"--untrusted", "boot-test", "--local", "top.qcow2"}, "backing file"},
		{[]string{"boot-test", "--local", "missing.qcow2"}, "missing.qcow2"},
	} {
		r := qimgIn(t, dir, c.args...)
		if r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("qimg %v: exit %d, stderr %q; want 1 and %q", c.args, r.code, r.stderr, c.want)
		}
	}
}
