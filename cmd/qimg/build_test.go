package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qimg/qimg/internal/libvirttest"
	"github.com/qimg/qimg/internal/qemutest"
)

// installerISO returns the test installer's ISO, which
// scripts/installer-iso.sh builds the first time (under a minute).
func installerISO(t *testing.T) string {
	t.Helper()
	return filepath.Join(qemutest.Script(t, "../../scripts/installer-iso.sh"), "installer.iso")
}

// The seed's workflow on the test installer: qimg build installs it
// unattended under TCG, prepares it (--sysprep) and compresses it; qemu-img
// check and e2fsck pass, qimg cat reads the answer file's marker back and
// qimg boot-test boots the result by itself.
func TestBuildSysprepCompressBoots(t *testing.T) {
	iso := installerISO(t)
	dir, tmp := t.TempDir(), t.TempDir()
	t.Setenv("TMPDIR", tmp)
	preseed := "d-i qimg/marker string QIMG-CLI-2718\nd-i qimg/hostname string clibuilt\n"
	if err := os.WriteFile(filepath.Join(dir, "preseed.cfg"), []byte(preseed), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := qimgIn(t, dir, "build", "--iso", iso, "--answers", "preseed.cfg", "-o", "out.qcow2", "--size", "128M",
		"--memory", "256", "--timeout", "15m", "--sysprep", "--compress", "--log", "install.log", "--backend", "qemu")
	if r.code != 0 {
		t.Fatalf("qimg build: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("qimg build took %v:\n%s", time.Since(start), r.stdout)
	for _, want := range []string{"debian-installer layout", "installed under ", `Performing "machine-id"`, "wrote out.qcow2"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "install.log")); err != nil || !bytes.Contains(b, []byte("qimg-installer: done: installed QIMG-CLI-2718")) {
		t.Errorf("install.log: %v, %d bytes", err, len(b))
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left behind in TMPDIR: %v", left)
	}
	if check := qemutest.Img(t, "check", filepath.Join(dir, "out.qcow2")); !strings.Contains(check, "No errors were found") ||
		strings.Contains(check, " 0.00% compressed") {
		t.Errorf("qemu-img check:\n%s", check)
	}
	raw := filepath.Join(dir, "out.raw")
	qemutest.Img(t, "convert", "-O", "raw", filepath.Join(dir, "out.qcow2"), raw)
	if b, err := exec.Command("e2fsck", "-fn", raw+"?offset=1048576").CombinedOutput(); err != nil {
		t.Errorf("e2fsck: %v\n%s", err, b)
	}
	os.Remove(raw)
	if r := qimgIn(t, dir, "cat", "out.qcow2", "/etc/qimg-marker", "/root/preseed.cfg"); r.code != 0 || r.stdout != "QIMG-CLI-2718\n"+preseed {
		t.Errorf("qimg cat: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = qimgIn(t, dir, "boot-test", "--local", "out.qcow2", "--no-default-expect", "--expect", "^qimg-payload: QIMG-CLI-2718$",
		"--expect", "^clibuilt login: ", "--memory", "256")
	if r.code != 0 {
		t.Fatalf("boot-test: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// The same through the libvirt backend, against a private libvirtd
// (internal/libvirttest): qimg build installs under TCG as a transient
// domain (with one more CD-ROM attached), leaves no domain and no
// temporary file, and the disk boots by itself.
func TestBuildLibvirtBoots(t *testing.T) {
	iso := installerISO(t)
	d := libvirttest.Start(t)
	dir, tmp := t.TempDir(), t.TempDir()
	t.Setenv("TMPDIR", tmp)
	preseed := "d-i qimg/marker string QIMG-LIBVIRT-1618\nd-i qimg/hostname string virtbuilt\n"
	if err := os.WriteFile(filepath.Join(dir, "preseed.cfg"), []byte(preseed), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := qimgIn(t, dir, "build", "--iso", iso, "--answers", "preseed.cfg", "-o", "out.qcow2", "--size", "128M",
		"--memory", "256", "--timeout", "15m", "--log", "install.log", "--backend", "libvirt", "--connect", d.URI(),
		"--extra-iso", iso, "--firmware", "bios")
	if r.code != 0 {
		log, _ := os.ReadFile(filepath.Join(dir, "install.log"))
		t.Fatalf("qimg build: exit %d\n%s%s\n%s", r.code, r.stdout, r.stderr, log)
	}
	t.Logf("qimg build took %v:\n%s", time.Since(start), r.stdout)
	for _, want := range []string{"through libvirt", "installed under tcg (libvirt)", "wrote out.qcow2"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	if strings.Contains(r.stdout, "Glance properties") {
		t.Errorf("a BIOS Linux install needs no properties:\n%s", r.stdout)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "install.log")); err != nil || !bytes.Contains(b, []byte("qimg-installer: done: installed QIMG-LIBVIRT-1618")) {
		t.Errorf("install.log: %v, %d bytes", err, len(b))
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left behind in TMPDIR: %v", left)
	}
	if names, err := d.Domains(); err != nil || len(names) != 0 {
		t.Errorf("domains left: %v %v", names, err)
	}
	if check := qemutest.Img(t, "check", filepath.Join(dir, "out.qcow2")); !strings.Contains(check, "No errors were found") {
		t.Errorf("qemu-img check:\n%s", check)
	}
	if r := qimgIn(t, dir, "cat", "out.qcow2", "/etc/qimg-marker"); r.code != 0 || r.stdout != "QIMG-LIBVIRT-1618\n" {
		t.Errorf("qimg cat: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = qimgIn(t, dir, "boot-test", "--local", "out.qcow2", "--no-default-expect", "--expect", "^qimg-payload: QIMG-LIBVIRT-1618$",
		"--expect", "^virtbuilt login: ", "--memory", "256")
	if r.code != 0 {
		t.Fatalf("boot-test: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestBuildRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"build", "--answers", "a", "-o", "o.qcow2"}, "build needs --iso, --answers and -o"},
		{[]string{"build", "--iso", "i", "--answers", "a", "-o", "o", "--backend", "vmware"}, `--backend "vmware"`},
		{[]string{"build", "--iso", "i", "--answers", "a", "-o", "o", "--connect", "qemu+ssh://h/system"}, "only a local qemu:///system"},
		{[]string{"build", "--iso", "i", "--answers", "a", "-o", "o", "--connect", "qemu:///system?x=1"}, "unknown parameter x"},
		{[]string{"build", "--iso", "i", "--answers", "a", "-o", "o", "--firmware", "coreboot"}, `firmware "coreboot"`},
		{[]string{"build", "--iso", "i", "--answers", "a", "-o", "o", "--drivers", "virtio-win.iso"}, "driver ISO is for Windows"},
		{[]string{"build", "--iso", "i", "--answers", "a", "-o", "o", "--size", "ten"}, `--size "ten"`},
		{[]string{"build", "--iso", "i", "--answers", "a", "-o", "o", "--fail", "("}, `--fail "("`},
		{[]string{"build", "--iso", "i", "--answers", "a", "-o", "o", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"build", "--iso", "i", "--answers", "a", "-o", "o", "--os", "beos"}, `"beos" installers are not supported`},
		{[]string{"build", "--iso", "missing.iso", "--answers", "missing.cfg", "-o", "o"}, "missing.cfg"},
		{[]string{"build", "extra"}, "Unexpected argument: extra"},
	} {
		r := qimgIn(t, dir, c.args...)
		if r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("qimg %v: exit %d, stderr %q; want 1 and %q", c.args, r.code, r.stderr, c.want)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// qimg killed (SIGKILL) while its installer runs through libvirt (here
// one that hangs, so that it never ends by itself): the domain was created
// with autodestroy, so libvirtd destroys it when qimg's connection drops,
// and no output appears.
func TestBuildLibvirtKilled(t *testing.T) {
	iso := installerISO(t)
	bin := qimgBinary(t)
	d := libvirttest.Start(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "preseed.cfg"), []byte("d-i qimg/marker string M\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "install.log")
	cmd := exec.Command(bin, "build", "--iso", iso, "--answers", "preseed.cfg", "-o", "out.qcow2", "--size", "64M",
		"--memory", "256", "--log", log, "--backend", "libvirt", "--connect", d.URI(), "--append", "qimg.end=hang")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "TMPDIR="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if b, _ := os.ReadFile(log); bytes.Contains(b, []byte("qimg-installer: hanging as asked")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the installer did not start")
		}
	}
	if names, err := d.Domains(); err != nil || len(names) != 1 {
		t.Fatalf("domains while installing: %v %v", names, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		names, err := d.Domains()
		if err == nil && len(names) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("domains left after qimg was killed: %v %v", names, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out.qcow2")); !os.IsNotExist(err) {
		t.Errorf("out.qcow2: %v", err)
	}
}
