package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestInjectKilled kills `qimg inject` at random moments while it edits
// a qcow2 image: qemu-img check must find no corruption (leaked clusters
// are allowed: they waste space, as qemu-img says, and harm no data), and
// after journal recovery e2fsck -fn is clean and the guest holds either
// the old files or all the new ones.
func TestInjectKilled(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "qimg")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	mkext4(t, dir, guestTree(t, dir), "fs.raw")
	img(t, dir, "convert", "-O", "qcow2", "fs.raw", "pristine.qcow2")
	payload := bytes.Repeat([]byte("payload-"), 3<<20/8) // 3 MiB
	if err := os.WriteFile(filepath.Join(dir, "payload"), payload, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"inject", "-q", "edit.qcow2",
		"--write", "/etc/hostname:new-name\n",
		"--upload", filepath.Join(dir, "payload") + ":/payload",
		"--mkdir", "/srv/data",
		"--delete", "/home/user",
	}
	edit := filepath.Join(dir, "edit.qcow2")
	copyTo := func() {
		b, err := os.ReadFile(filepath.Join(dir, "pristine.qcow2"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(edit, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyTo()
	start := time.Now()
	if out, err := runIn(dir, bin, args...); err != nil {
		t.Fatalf("inject: %v\n%s", err, out)
	}
	full := time.Since(start)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	oldSeen, newSeen := 0, 0
	for i := range 12 {
		copyTo()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(rng.Int64N(int64(full) + 1))
		if i == 0 {
			delay = 0
		}
		time.Sleep(delay)
		cmd.Process.Kill()
		cmd.Wait()
		check := qemuIn(t, dir, "qemu-img", "check", "edit.qcow2")
		if check.code != 0 && check.code != 3 || strings.Contains(check.stdout+check.stderr, "ERROR") {
			t.Fatalf("kill after %v: qemu-img check: %+v", delay, check)
		}
		raw := filepath.Join(dir, "edit.raw")
		if r := qemuIn(t, dir, "qemu-img", "convert", "-O", "raw", "edit.qcow2", raw); r.code != 0 {
			t.Fatalf("convert: %+v", r)
		}
		if out, err := exec.Command("/usr/sbin/e2fsck", "-E", "journal_only", "-y", raw).CombinedOutput(); err != nil {
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 1 {
				t.Fatalf("journal recovery: %v\n%s", err, out)
			}
		}
		if out, err := exec.Command("/usr/sbin/e2fsck", "-fn", raw).CombinedOutput(); err != nil {
			t.Fatalf("kill after %v: e2fsck -fn: %v\n%s", delay, err, out)
		}
		host := debugfs(t, raw, "cat /etc/hostname")
		got := debugfs(t, raw, "cat /payload")
		switch {
		case host == "old-name\n" && got == "":
			oldSeen++
		case host == "new-name\n" && got == string(payload):
			newSeen++
		default:
			t.Fatalf("kill after %v: hostname %q and a payload of %d bytes: neither old nor new", delay, host, len(got))
		}
	}
	if oldSeen == 0 {
		t.Error("no kill left the old tree: the test did not interrupt anything")
	}
	t.Logf("12 kills over %v: %d old trees, %d new", full, oldSeen, newSeen)
}

func runIn(dir, bin string, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	return cmd.CombinedOutput()
}
