package build

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qimg/qimg/boot"
	"github.com/qimg/qimg/internal/qemutest"
)

// The install tests run the test installer scripts/installer-iso.sh
// builds (cached outside the clone; the first run builds it in under a
// minute): Debian's kernel and a busybox initrd in d-i's layout, which
// reads /preseed.cfg, partitions and formats the disk, copies a bootable
// payload and powers off.

// installerISO returns the path of the cached test installer ISO.
func installerISO(t *testing.T) string {
	t.Helper()
	return filepath.Join(qemutest.Script(t, filepath.Join("..", "scripts", "installer-iso.sh")), "installer.iso")
}

// answers writes a preseed file for the test installer.
func answers(t *testing.T, dir, text string) string {
	t.Helper()
	p := filepath.Join(dir, "preseed.cfg")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// leftovers fails if dir holds anything but the names in keep.
func leftovers(t *testing.T, dir string, keep ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !contains(keep, e.Name()) {
			t.Errorf("left behind in %s: %s", dir, e.Name())
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The proof: the installer runs unattended from the ISO, finds its
// answer file in the initrd and installs; the image passes qemu-img
// check, its partition table and ext4 pass sfdisk and e2fsck, debugfs
// reads the answer file's marker back, and the disk boots by itself.
func TestBuildInstalls(t *testing.T) {
	t.Parallel()
	iso := installerISO(t)
	work, tmp := t.TempDir(), t.TempDir()
	out := filepath.Join(work, "out.qcow2")
	ans := answers(t, work, "d-i qimg/marker string QIMG-BUILD-4711\nd-i qimg/hostname string built\n")
	var progress bytes.Buffer
	start := time.Now()
	res, err := Build(context.Background(), Options{
		ISO: iso, Answers: ans, Output: out, Size: 128 << 20, Memory: 256, Timeout: 10 * time.Minute,
		Progress: &progress, StatusEvery: 5 * time.Second, TempDir: tmp,
	})
	if err != nil {
		if res != nil && res.Install != nil {
			t.Log(strings.Join(res.Install.Tail, "\n"))
		}
		t.Fatal(err)
	}
	t.Logf("installed in %v (%v in QEMU)\n%s", time.Since(start), res.Install.Elapsed, progress.String())
	if res.Layout.Name != "debian-installer" || !strings.Contains(progress.String(), "answers in the initrd (/preseed.cfg)") ||
		!regexp.MustCompile(`build: installing: \d+s, console: `).MatchString(progress.String()) {
		t.Errorf("layout %+v, progress %s", res.Layout, progress.String())
	}
	leftovers(t, tmp)
	leftovers(t, work, "out.qcow2", "preseed.cfg")
	qemutest.Check(t, out)

	raw := filepath.Join(work, "out.raw")
	qemutest.Img(t, "convert", "-O", "raw", out, raw)
	var table struct {
		PartitionTable struct {
			Label      string
			Partitions []struct {
				Start, Size int64
				Type        string
				Bootable    bool
			}
		}
	}
	if err := json.Unmarshal([]byte(qemutest.Run(t, "sfdisk", "--json", raw)), &table); err != nil {
		t.Fatal(err)
	}
	pt := table.PartitionTable
	if pt.Label != "dos" || len(pt.Partitions) != 1 || !pt.Partitions[0].Bootable || pt.Partitions[0].Type != "83" {
		t.Fatalf("partition table %+v", pt)
	}
	part := fmt.Sprintf("%s?offset=%d", raw, pt.Partitions[0].Start*512)
	if b, err := exec.Command("e2fsck", "-fn", part).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck: %v\n%s", err, b)
	}
	for path, want := range map[string]string{
		"/etc/qimg-marker": "QIMG-BUILD-4711\n", "/etc/hostname": "built\n",
		"/root/preseed.cfg": "d-i qimg/marker string QIMG-BUILD-4711\nd-i qimg/hostname string built\n",
	} {
		if got := qemutest.Run(t, "debugfs", "-R", "cat "+path, part); got != want {
			t.Errorf("%s holds %q, want %q", path, got, want)
		}
	}
	os.Remove(raw)

	bootTmp := t.TempDir()
	br, err := boot.Local(context.Background(), boot.Options{
		Image: out, NoDefaultExpect: true, Memory: 256, Timeout: 10 * time.Minute, TempDir: bootTmp,
		Expect: []*regexp.Regexp{regexp.MustCompile(`^qimg-payload: QIMG-BUILD-4711$`), regexp.MustCompile(`^built login: `)},
	})
	if err != nil {
		if br != nil {
			t.Log(strings.Join(br.Tail, "\n"))
		}
		t.Fatalf("the installed disk does not boot: %v", err)
	}
	t.Logf("the installed disk booted in %v", br.Elapsed)
}

// An installer that fails leaves no output and no temporary files: the
// answer file sets no marker, the installer says FAILED.
func TestBuildFails(t *testing.T) {
	t.Parallel()
	iso := installerISO(t)
	work, tmp := t.TempDir(), t.TempDir()
	out := filepath.Join(work, "out.qcow2")
	ans := answers(t, work, "d-i qimg/hostname string no-marker\n")
	res, err := Build(context.Background(), Options{
		ISO: iso, Answers: ans, Output: out, Size: 64 << 20, Memory: 256, Timeout: 10 * time.Minute, TempDir: tmp,
		Fail: []*regexp.Regexp{regexp.MustCompile(`^qimg-installer: FAILED: `)},
	})
	if !errors.Is(err, boot.ErrFailed) || res == nil || res.Install == nil || res.Install.Failure == nil ||
		!strings.Contains(res.Install.Failure.Line, "sets no qimg/marker") {
		t.Fatalf("error %v, result %+v; want the installer's failure", err, res)
	}
	leftovers(t, tmp)
	leftovers(t, work, "preseed.cfg")
}

// Ctrl-C: the build stops, QEMU with it, and nothing is left.
func TestBuildCancel(t *testing.T) {
	t.Parallel()
	iso := installerISO(t)
	work, tmp := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := Build(ctx, Options{
		ISO: iso, Answers: answers(t, work, "d-i qimg/marker string M\n"), Output: filepath.Join(work, "out.qcow2"),
		Size: 64 << 20, Memory: 256, TempDir: tmp, Console: qemutest.CancelOn("Linux version", cancel),
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	leftovers(t, tmp)
	leftovers(t, work, "preseed.cfg")
}

// QEMU killed in the middle of the install (here while mke2fs runs): the
// build fails as one that did not power off, and leaves no output and no
// temporary files.
func TestBuildQEMUKilled(t *testing.T) {
	t.Parallel()
	iso := installerISO(t)
	work, tmp := t.TempDir(), t.TempDir()
	_, err := Build(context.Background(), Options{
		ISO: iso, Answers: answers(t, work, "d-i qimg/marker string M\n"), Output: filepath.Join(work, "out.qcow2"),
		Size: 64 << 20, Memory: 256, TempDir: tmp, Console: killOn{"making ext4", tmp, t},
	})
	if !errors.Is(err, boot.ErrNotPoweredOff) || !strings.Contains(err.Error(), "signal: killed") {
		t.Fatalf("error %v, want ErrNotPoweredOff after QEMU was killed", err)
	}
	leftovers(t, tmp)
	leftovers(t, work, "preseed.cfg")
}

// killOn kills with SIGKILL the processes whose command line names dir
// (QEMU: its sockets are there) when a console chunk contains s.
type killOn struct {
	s, dir string
	t      *testing.T
}

func (k killOn) Write(p []byte) (int, error) {
	if !bytes.Contains(p, []byte(k.s)) {
		return len(p), nil
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	killed := 0
	for _, c := range procs {
		b, err := os.ReadFile(c)
		if err != nil || !bytes.Contains(b, []byte(k.dir)) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(c)))
		if err == nil && syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed++
		}
	}
	if killed == 0 {
		k.t.Errorf("no process runs on %s", k.dir)
	}
	return len(p), nil
}

// Bad options and an ISO without a known installer are refused before
// anything starts.
func TestBuildRefuses(t *testing.T) {
	work := t.TempDir()
	ans := answers(t, work, "x\n")
	notISO := filepath.Join(work, "not.iso")
	if err := os.WriteFile(notISO, make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	unknown := writeISOFile(t, work, "unknown.iso", map[string]string{"boot/vmlinuz": "k"})
	out := filepath.Join(work, "out.qcow2")
	for _, o := range []Options{
		{Answers: ans, Output: out},
		{ISO: unknown, Answers: ans, Output: out, OS: "windows"},
		{ISO: unknown, Answers: ans, Output: out, Kernel: "boot/vmlinuz"},
		{ISO: unknown, Answers: ans, Output: out, Size: 4096},
		{ISO: notISO, Answers: ans, Output: out},
		{ISO: unknown, Answers: ans, Output: out},
		{ISO: unknown, Answers: filepath.Join(work, "missing"), Output: out},
	} {
		if _, err := Build(context.Background(), o); err == nil {
			t.Errorf("Build(%+v) succeeded", o)
		} else {
			t.Log(err)
		}
	}
	leftovers(t, work, "preseed.cfg", "not.iso", "unknown.iso")
}

// UEFI through the QEMU backend: OVMF boots the installer's kernel
// (whose EFI stub says so on the console), with one more CD-ROM on the
// SATA controller; the installer powers off at once (qimg.end=poweroff),
// and OVMF's variable store copy goes with the temporary directory.
func TestBuildUEFIQEMU(t *testing.T) {
	t.Parallel()
	iso := installerISO(t)
	work, tmp := t.TempDir(), t.TempDir()
	log := filepath.Join(work, "console.log")
	res, err := Build(context.Background(), Options{
		ISO: iso, Answers: answers(t, work, "d-i qimg/marker string M\n"), Output: filepath.Join(work, "out.qcow2"),
		Size: 64 << 20, Memory: 256, TempDir: tmp, Firmware: UEFI, Append: "qimg.end=poweroff", Log: log,
		ExtraISOs: []string{iso}, Timeout: 5 * time.Minute,
	})
	b, _ := os.ReadFile(log)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !bytes.Contains(b, []byte("EFI stub: ")) || !bytes.Contains(b, []byte("qimg-installer: powering off as asked")) {
		t.Errorf("no UEFI boot seen:\n%s", b)
	}
	if res.Properties["hw_firmware_type"] != "uefi" {
		t.Errorf("properties %v", res.Properties)
	}
	leftovers(t, tmp)
}
