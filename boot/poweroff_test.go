package boot

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/qimg/qimg/internal/qemutest"
)

// The Run tests boot the kernel and initrd of the test installer
// scripts/installer-iso.sh builds (cached outside the clone; the first
// run builds it in well under a minute). Its kernel command line hooks
// (qimg.end=poweroff, reboot, hang) end the guest in each way at once.

// installerDir returns the directory of the cached test installer.
func installerDir(t *testing.T) string {
	t.Helper()
	return qemutest.Script(t, filepath.Join("..", "scripts", "installer-iso.sh"))
}

// runInstaller runs the test installer's kernel and initrd with args on a
// blank disk and returns what Run returned.
func runInstaller(t *testing.T, args string, timeout time.Duration, fail ...Marker) (*Result, error) {
	t.Helper()
	dir := installerDir(t)
	disk := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 64<<20); err != nil {
		t.Fatal(err)
	}
	tmp := privateTemp(t)
	res, err := Run(context.Background(), Machine{
		Disk: disk, DiskFormat: "raw", Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.gz"),
		Append: "console=ttyS0,115200 " + args, Memory: 256, Timeout: timeout, Fail: fail, TempDir: tmp,
	})
	checkCleanedUp(t, tmp)
	if res == nil {
		t.Fatalf("Run returned no result: %v", err)
	}
	return res, err
}

// A guest that powers off ends the run with success.
func TestRunPowersOff(t *testing.T) {
	t.Parallel()
	res, err := runInstaller(t, "qimg.end=poweroff", 5*time.Minute)
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(res.Tail, "\n"))
	}
	if !hasPhase(res, PhaseKernel) || !strings.Contains(strings.Join(res.Tail, "\n"), "powering off as asked") {
		t.Errorf("result %+v", res)
	}
}

// A guest that reboots has not powered off: QEMU's SHUTDOWN event says
// guest-reset.
func TestRunRebootIsNotPowerOff(t *testing.T) {
	t.Parallel()
	_, err := runInstaller(t, "qimg.end=reboot", 5*time.Minute)
	if !errors.Is(err, ErrNotPoweredOff) || !strings.Contains(err.Error(), "guest-reset") {
		t.Fatalf("error %v, want ErrNotPoweredOff after guest-reset", err)
	}
}

// A failure marker decides even when the guest powers off right after it
// (the installer without an answer file says FAILED and powers off).
func TestRunFailureMarker(t *testing.T) {
	t.Parallel()
	res, err := runInstaller(t, "", 5*time.Minute, Marker{"installer failed", regexp.MustCompile(`^qimg-installer: FAILED: `)})
	if !errors.Is(err, ErrFailed) || res.Failure == nil || !strings.Contains(res.Failure.Line, "no answer file") {
		t.Fatalf("error %v, failure %+v, want the installer's FAILED line", err, res.Failure)
	}
}

// A guest that runs on is stopped at the time-out.
func TestRunTimesOut(t *testing.T) {
	t.Parallel()
	res, err := runInstaller(t, "qimg.end=hang", 20*time.Second)
	if !errors.Is(err, ErrTimeout) || res.Elapsed < 20*time.Second {
		t.Fatalf("error %v after %v, want ErrTimeout", err, res.Elapsed)
	}
}

func TestRunRefusesBadMachines(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "d.raw")
	if err := os.WriteFile(disk, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, m := range []Machine{
		{},
		{Disk: disk, DiskFormat: "vmdk"},
		{Disk: disk, DiskFormat: "raw", Initrd: disk},
		{Disk: disk, DiskFormat: "raw", Kernel: filepath.Join(dir, "missing")},
		{Disk: disk, DiskFormat: "raw", Kernel: dir},
		{Disk: disk, DiskFormat: "raw", Timeout: -time.Second},
	} {
		if res, err := Run(context.Background(), m); err == nil || res != nil {
			t.Errorf("Run(%+v) = %+v, %v; want an error", m, res, err)
		}
	}
}

func TestMachineArgsDirectKernel(t *testing.T) {
	m := machine{
		name: "qimg-run", accel: TCG, memory: 512, cpus: 1, disk: "/t/d.raw", diskFormat: "raw", keepDisk: true,
		cdrom: "/i/a,b.iso", kernel: "/t/vmlinuz", initrd: "/t/initrd", appendArgs: "console=ttyS0 auto=true",
		mac: "02:00:00:00:00:01", qmp: "/t/q", events: "/t/e",
	}
	args := strings.Join(m.args(), " ")
	for _, want := range []string{
		"-name qimg-run", "file=/t/d.raw,format=raw,if=none,id=disk,cache=writeback",
		"file=/i/a,,b.iso,format=raw,if=ide,media=cdrom,readonly=on",
		"-kernel /t/vmlinuz -append console=ttyS0 auto=true -initrd /t/initrd",
		"-qmp unix:/t/e,server=on,wait=on", "-no-reboot",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("%s lacks %q", args, want)
		}
	}
}

func hasPhase(r *Result, name string) bool {
	for _, p := range r.Phases {
		if p.Name == name {
			return true
		}
	}
	return false
}

// A Windows-style machine: booted from its installer CD-ROM after the
// empty disk, the disk on SATA, an e1000 NIC, UEFI, more ISOs on the SATA
// controller's other ports, and reboots allowed.
func TestMachineArgsWindowsStyle(t *testing.T) {
	m := machine{
		name: "qimg-run", accel: TCG, memory: 2048, cpus: 2, disk: "/t/d.qcow2", keepDisk: true,
		cdrom: "/i/win.iso", bootCDROM: true, cdroms: []string{"/t/autounattend.iso", "/i/virtio,win.iso"},
		diskBus: BusSATA, nic: NICE1000, uefi: &UEFI{Code: "/fw/CODE.fd", Vars: "/t/VARS.fd"}, reboots: true,
		mac: "02:00:00:00:00:01", qmp: "/t/q", events: "/t/e",
	}
	args := strings.Join(m.args(), " ")
	for _, want := range []string{
		"-device ahci,id=sata -device ide-hd,drive=disk,bus=sata.0,bootindex=1",
		"-device e1000,netdev=net0,romfile=,mac=02:00:00:00:00:01",
		"-drive if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd -drive if=pflash,format=raw,unit=1,file=/t/VARS.fd",
		"file=/i/win.iso,format=raw,if=none,id=cdrom,media=cdrom,readonly=on -device ide-cd,drive=cdrom,bus=ide.1,unit=0,bootindex=2",
		"file=/t/autounattend.iso,format=raw,if=none,id=cd0,media=cdrom,readonly=on -device ide-cd,drive=cd0,bus=sata.1",
		"file=/i/virtio,,win.iso,format=raw,if=none,id=cd1,media=cdrom,readonly=on -device ide-cd,drive=cd1,bus=sata.2",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("%s lacks %q", args, want)
		}
	}
	for _, bad := range []string{"-no-reboot", "virtio-blk-pci", "virtio-net-pci"} {
		if strings.Contains(args, bad) {
			t.Errorf("%s has %q", args, bad)
		}
	}
	if n := strings.Count(args, "ahci"); n != 1 {
		t.Errorf("%d AHCI controllers in %s", n, args)
	}
}

// TestEndError pins the wording both backends (QEMU here, libvirt in
// build) give a run that did not power off.
func TestEndError(t *testing.T) {
	r := &Result{Elapsed: 12300 * time.Millisecond, Failure: &Sighting{Name: "kernel panic", At: 4500 * time.Millisecond, Line: "Kernel panic - not syncing"}}
	cases := []struct {
		cause error
		want  string
		is    error
	}{
		{ErrFailed, `d.qcow2: kernel panic at 4.5s: "Kernel panic - not syncing": ` + ErrFailed.Error(), ErrFailed},
		{ErrTimeout, "d.qcow2: the guest still ran after 10m0s: " + ErrTimeout.Error(), ErrTimeout},
		{io.ErrUnexpectedEOF, "d.qcow2: stopped after 12.3s: unexpected EOF", io.ErrUnexpectedEOF},
	}
	for _, c := range cases {
		err := EndError("d.qcow2", r, 10*time.Minute, c.cause)
		if err.Error() != c.want || !errors.Is(err, c.is) {
			t.Errorf("EndError(%v) = %q, want %q", c.cause, err, c.want)
		}
	}
}
