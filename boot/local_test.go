package boot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qimg/qimg/customize/seed"
	"github.com/qimg/qimg/internal/qemutest"
)

// The boot tests start the Debian 12 guest scripts/boot-image.sh builds
// (cached outside the clone; the first run builds it, which takes
// minutes) under TCG, or KVM where it works.

// bootImage returns the cached bootable Debian 12 qcow2, building it the
// first time.
func bootImage(t *testing.T) string {
	t.Helper()
	return qemutest.Script(t, filepath.Join("..", "scripts", "boot-image.sh"))
}

// layout reads a value from the fixture's layout file.
func layout(t *testing.T, img, key string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(img), "layout"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return v
		}
	}
	t.Fatalf("layout has no %s", key)
	return ""
}

// makeSeed builds a NoCloud cidata ISO with qimg's own seed package (the
// boot is its judge too).
func makeSeed(t *testing.T, userData string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "seed.iso")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := seed.Build(context.Background(), f, seed.Config{UserData: []byte(userData)}, seed.Options{}); err != nil {
		t.Fatal(err)
	}
	return path
}

func fileSum(t *testing.T, path string) [sha256.Size]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// privateTemp returns a directory of the test's own for Options.TempDir,
// so that it can check Local left nothing there.
func privateTemp(t *testing.T) string {
	return t.TempDir()
}

// checkCleanedUp fails if Local left files in tmp or a QEMU that runs on
// them.
func checkCleanedUp(t *testing.T, tmp string) {
	t.Helper()
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("left behind in TMPDIR: %s", e.Name())
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(tmp)) {
			t.Errorf("process %s still runs on %s: %q", filepath.Dir(p), tmp, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		}
	}
}

// The proof: the Debian 12 guest boots on a throwaway overlay with a
// NoCloud seed and a new MAC; cloud-init finds the seed and runs the
// user-data, which prints a marker, the hostname it set and the address
// the new NIC got by DHCP; the image file is not changed by a single
// byte; QEMU and the temporary files are gone afterwards.
func TestLocalBootsDebian(t *testing.T) {
	t.Parallel()
	img := bootImage(t)
	tmp := privateTemp(t)
	mac, err := randomMAC()
	if err != nil {
		t.Fatal(err)
	}
	seed := makeSeed(t, `#cloud-config
hostname: qimg-boot
runcmd:
  - [sh, -c, 'echo "QIMG-MARKER host=$(hostname) mac=$(cat /sys/class/net/e*/address) ip=$(ip -o -4 addr show scope global | cut -d" " -f7 | head -n1)" >/dev/ttyS0']
`)
	before := fileSum(t, img)
	logFile := filepath.Join(t.TempDir(), "console.log")
	var console qemutest.SyncBuffer
	marker := regexp.MustCompile(`QIMG-MARKER host=qimg-boot mac=` + regexp.QuoteMeta(mac) + ` ip=10\.0\.2\.15/24`)
	res, err := Local(context.Background(), Options{
		Image: img, Seed: seed, MAC: mac, Expect: []*regexp.Regexp{marker},
		Console: &console, Log: logFile, TempDir: tmp,
	})
	if err != nil {
		if res != nil {
			t.Logf("console tail:\n%s", strings.Join(res.Tail, "\n"))
		}
		t.Fatal(err)
	}
	t.Logf("booted under %s in %.1fs", res.Accel, res.Elapsed.Seconds())
	for _, p := range res.Phases {
		t.Logf("  %-20s %6.1fs", p.Name, p.At.Seconds())
	}
	checkPhases(t, res, PhaseFirmware, PhaseBootloader, PhaseKernel, PhaseInitramfs, PhaseInit, PhaseCloudInit, PhaseLogin, PhaseCloudDone)
	if len(res.Matched) != 3 || res.Missing != nil || res.Failure != nil {
		t.Errorf("matched %v, missing %v, failure %v", res.Matched, res.Missing, res.Failure)
	}
	if res.MAC != mac {
		t.Errorf("MAC %s, want %s", res.MAC, mac)
	}
	if after := fileSum(t, img); after != before {
		t.Errorf("the image changed: sha256 %x before, %x after", before, after)
	}
	raw, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if !marker.Match(raw) || !bytes.Contains(raw, []byte("\x1b[")) {
		t.Errorf("the log does not hold the raw console (marker, escape sequences)")
	}
	if s := console.String(); !marker.MatchString(s) || strings.Contains(s, "\x1b") {
		t.Errorf("the stream does not hold the clean console")
	}
	checkCleanedUp(t, tmp)
}

// checkPhases fails unless the result has each phase, in this order.
func checkPhases(t *testing.T, r *Result, names ...string) {
	t.Helper()
	var got []string
	last := time.Duration(0)
	for _, p := range r.Phases {
		got = append(got, p.Name)
		if p.At < last || p.At > r.Elapsed {
			t.Errorf("phase %s at %v: out of order", p.Name, p.At)
		}
		last = p.At
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("phases %v, want %v", got, names)
	}
}

// A guest whose root file system is gone: the kernel starts, the
// initramfs waits for the root device, gives up and drops to a shell; the
// test fails on that, with the console's tail, long before its time-out.
func TestLocalFailsOnBrokenRoot(t *testing.T) {
	t.Parallel()
	img := bootImage(t)
	tmp := privateTemp(t)
	broken := filepath.Join(t.TempDir(), "broken.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", "-b", img, "-F", "qcow2", broken)
	rootOffset, err := strconv.ParseInt(layout(t, img, "root_offset"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	// Zero the ext4 superblock: blkid no longer finds the root's UUID.
	qemutest.IO(t, broken, "write -z "+strconv.FormatInt(rootOffset, 10)+" 4096")
	before := fileSum(t, broken)
	start := time.Now()
	res, err := Local(context.Background(), Options{Image: broken, Timeout: 8 * time.Minute, TempDir: tmp})
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("error %v, want ErrFailed", err)
	}
	t.Logf("%v after %.1fs", err, time.Since(start).Seconds())
	if res.Failure == nil || res.Failure.Name != "initramfs shell" {
		t.Errorf("failure %+v, want the initramfs shell", res.Failure)
	}
	if len(res.Tail) == 0 || !strings.Contains(strings.Join(res.Tail, "\n"), "does not exist") {
		t.Errorf("tail does not say what went wrong:\n%s", strings.Join(res.Tail, "\n"))
	}
	checkPhases(t, res, PhaseFirmware, PhaseBootloader, PhaseKernel, PhaseInitramfs)
	if fileSum(t, broken) != before {
		t.Error("the image changed")
	}
	checkCleanedUp(t, tmp)
}

// An expected line that never comes: the boot times out, says what it
// was still waiting for, and cleans up.
func TestLocalTimesOut(t *testing.T) {
	t.Parallel()
	img := bootImage(t)
	tmp := privateTemp(t)
	res, err := Local(context.Background(), Options{
		Image: img, NoDefaultExpect: true, Timeout: 15 * time.Second, TempDir: tmp,
		Expect: []*regexp.Regexp{regexp.MustCompile(`NEVER-PRINTED`)},
	})
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), `"/NEVER-PRINTED/"`) {
		t.Fatalf("error %v, want ErrTimeout naming the marker", err)
	}
	if res == nil || len(res.Missing) != 1 || len(res.Phases) == 0 || res.Elapsed < 15*time.Second {
		t.Fatalf("result %+v", res)
	}
	checkCleanedUp(t, tmp)
}

// Cancelling the context (Ctrl-C in qimg) stops QEMU and cleans up.
func TestLocalCancel(t *testing.T) {
	t.Parallel()
	img := bootImage(t)
	tmp := privateTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := Local(ctx, Options{Image: img, Console: qemutest.CancelOn("SeaBIOS", cancel), TempDir: tmp})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if res == nil || res.Elapsed > time.Minute {
		t.Fatalf("result %+v", res)
	}
	checkCleanedUp(t, tmp)
}

// An image that is no image: Local refuses it before starting QEMU.
func TestLocalRefusesCorruptImage(t *testing.T) {
	t.Parallel()
	tmp := privateTemp(t)
	bad := filepath.Join(t.TempDir(), "bad.qcow2")
	if err := os.WriteFile(bad, append([]byte("QFI\xfb\x00\x00\x00\x03"), make([]byte, 504)...), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Local(context.Background(), Options{Image: bad, TempDir: tmp})
	if err == nil || res != nil {
		t.Fatalf("Local on a corrupt image: %v, %+v", err, res)
	}
	t.Log(err)
	checkCleanedUp(t, tmp)
}

// QEMU quits when asked over QMP, without being killed.
func TestQMPQuit(t *testing.T) {
	dir := t.TempDir()
	blank := filepath.Join(dir, "blank.raw")
	if err := os.WriteFile(blank, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := Options{Image: blank, Accel: TCG}.resolved()
	if err != nil {
		t.Fatal(err)
	}
	m, err := o.machine(dir)
	if err != nil {
		t.Fatal(err)
	}
	q, err := startQEMU(o.QEMU, m)
	if err != nil {
		t.Fatal(err)
	}
	go q.readConsole(io.Discard, func() {})
	deadline := time.Now().Add(30 * time.Second)
	for err = errors.New("not tried"); err != nil && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		err = qmpQuit(context.Background(), m.qmp, quitTimeout)
	}
	if err != nil {
		q.stop(m.qmp)
		t.Fatal(err)
	}
	select {
	case <-q.exited:
	case <-time.After(quitTimeout):
		q.stop(m.qmp)
		t.Fatal("QEMU did not quit")
	}
	if q.waitErr != nil {
		t.Errorf("QEMU exited with %v: %s", q.waitErr, q.stderr)
	}
}

func TestMachineArgs(t *testing.T) {
	m := machine{accel: TCG, memory: 512, cpus: 2, disk: "/t/o,v.qcow2", seed: "/s/seed.iso", seedISO: true, mac: "02:00:00:00:00:01", qmp: "/t/q"}
	args := strings.Join(m.args(), " ")
	for _, want := range []string{
		"file=/t/o,,v.qcow2,format=qcow2", "-accel tcg,thread=multi", "mac=02:00:00:00:00:01",
		"file=/s/seed.iso,format=raw,if=ide,media=cdrom,readonly=on", "-m 512 -smp 2", "unix:/t/q,server=on,wait=off",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("%s lacks %q", args, want)
		}
	}
	m.seedISO, m.accel = false, KVM
	args = strings.Join(m.args(), " ")
	for _, want := range []string{"-accel kvm -cpu host", "file=/s/seed.iso,format=raw,if=virtio,readonly=on"} {
		if !strings.Contains(args, want) {
			t.Errorf("%s lacks %q", args, want)
		}
	}
}

func TestRandomMAC(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		s, err := randomMAC()
		if err != nil {
			t.Fatal(err)
		}
		if c, err := checkMAC(s); err != nil || c != s || seen[s] {
			t.Fatalf("MAC %s: %v (seen before: %v)", s, err, seen[s])
		}
		seen[s] = true
		if b0, err := strconv.ParseUint(s[:2], 16, 8); err != nil || b0&0x03 != 0x02 || strings.HasPrefix(s, "52:54:00") {
			t.Fatalf("MAC %s is not unicast and locally administered outside 52:54:00", s)
		}
	}
	for _, bad := range []string{"", "01:00:5e:00:00:01", "00:11:22:33:44", "zz:00:00:00:00:00"} {
		if _, err := checkMAC(bad); err == nil {
			t.Errorf("checkMAC(%q) accepted it", bad)
		}
	}
}
