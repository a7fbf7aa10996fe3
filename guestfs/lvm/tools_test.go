package lvm_test

// Helpers that build volume groups with the real lvm2 tools on loop
// devices, report them with pvs/vgs/lvs, and hand the backing files to
// the tests once the devices are gone.
//
// The tools run with --driverloaded n and LVs are created with -an -Zn
// (not activated, not zeroed): this machine's kernel may have no device
// mapper (none on the CI virtual machines), and an inactive LV needs none.
// So the tests never write through /dev/VG/LV: they write each LV's bytes
// into the backing file at the offsets lvs (seg_pe_ranges) and pvs
// (pe_start) report, which keeps the layout's oracle the tools' own view.
// --devices limits every command to the test's loop devices, so the host's
// disks and other runs' PVs are never scanned.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

var vgCounter atomic.Int64

// lvmEnv is a set of loop devices over files of a test's temporary
// directory, and the one VG made on them.
type lvmEnv struct {
	t      *testing.T
	files  []string
	loops  []string
	vg     string
	closed bool
}

// newLVM makes one sparse file per size and attaches each to a loop
// device; t.Cleanup deactivates the VG and detaches the devices whatever
// happens to the test.
func newLVM(t *testing.T, sizes ...int64) *lvmEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the LVM tests need root for loop devices (run scripts/setup.sh and the tests as root)")
	}
	e := &lvmEnv{t: t, vg: fmt.Sprintf("qimgtest%d_%d", os.Getpid(), vgCounter.Add(1))}
	dir := t.TempDir()
	t.Cleanup(e.close)
	for i, size := range sizes {
		f := filepath.Join(dir, fmt.Sprintf("pv%d.raw", i))
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(f, size); err != nil {
			t.Fatal(err)
		}
		loop := strings.TrimSpace(qemutest.Run(t, "losetup", "--find", "--show", f))
		e.files = append(e.files, f)
		e.loops = append(e.loops, loop)
	}
	return e
}

// close deactivates the VG (a no-op for LVs never activated, but the
// rule for anything a test leaves) and detaches the loop devices. It
// runs at cleanup and may be called earlier; it runs once.
func (e *lvmEnv) close() {
	if e.closed {
		return
	}
	e.closed = true
	if len(e.loops) > 0 {
		args := append([]string{"vgchange", "-an", "--driverloaded", "n"}, e.devices()...)
		exec.Command("lvm", append(args, e.vg)...).Run()
	}
	for _, l := range e.loops {
		if out, err := exec.Command("losetup", "-d", l).CombinedOutput(); err != nil {
			e.t.Errorf("losetup -d %s: %v: %s", l, err, out)
		}
	}
}

func (e *lvmEnv) devices() []string {
	var a []string
	for _, l := range e.loops {
		a = append(a, "--devices", l)
	}
	return a
}

// lvm runs an lvm command on the test's devices only.
func (e *lvmEnv) lvm(cmd string, args ...string) string {
	e.t.Helper()
	all := append([]string{cmd, "--driverloaded", "n"}, e.devices()...)
	return qemutest.Run(e.t, "lvm", append(all, args...)...)
}

// report runs pvs, vgs or lvs with --reportformat json --units b and
// returns its rows, with byte sizes stripped of their "B".
func (e *lvmEnv) report(cmd, fields string, args ...string) []map[string]string {
	e.t.Helper()
	out := e.lvm(cmd, append([]string{"--reportformat", "json", "--units", "b", "--nosuffix", "-o", fields}, args...)...)
	var r struct {
		Report []map[string][]map[string]string `json:"report"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		e.t.Fatalf("%s report: %v\n%s", cmd, err, out)
	}
	if len(r.Report) != 1 {
		e.t.Fatalf("%s report: %d reports\n%s", cmd, len(r.Report), out)
	}
	for _, rows := range r.Report[0] {
		return rows
	}
	return nil
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		t.Fatalf("number %q: %v", s, err)
	}
	return n
}

// peRange is one PV range of seg_pe_ranges: "/dev/loop3:0-1".
type peRange struct {
	dev        string
	first, end int64 // extents [first, end)
}

func parsePERanges(t *testing.T, s string) []peRange {
	t.Helper()
	var rs []peRange
	for f := range strings.FieldsSeq(s) {
		i := strings.LastIndexByte(f, ':')
		a, b, ok := strings.Cut(f[i+1:], "-")
		if i < 0 || !ok {
			t.Fatalf("PE range %q", f)
		}
		rs = append(rs, peRange{f[:i], atoi(t, a), atoi(t, b) + 1})
	}
	return rs
}

// pattern is the content the tests give an LV: every 512-byte sector
// names the LV and the sector, so a misplaced read shows where it read.
func pattern(lv string, size int64) []byte {
	b := make([]byte, size)
	for off := int64(0); off < size; off += 512 {
		copy(b[off:min(off+512, size)], fmt.Sprintf("%s sector %d\n", lv, off/512))
	}
	return b
}

// fillLVs writes pattern(lv) into each linear LV through the layout the
// tools report, into the backing files (the devices must be detached),
// and returns the contents by LV name.
func (e *lvmEnv) fillLVs(lvRows, pvRows []map[string]string, extentSize int64) map[string][]byte {
	e.t.Helper()
	peStart := map[string]int64{}
	for _, pv := range pvRows {
		peStart[pv["pv_name"]] = atoi(e.t, pv["pe_start"])
	}
	file := map[string]string{}
	for i, l := range e.loops {
		file[l] = e.files[i]
	}
	want := map[string][]byte{}
	for _, r := range lvRows {
		if r["segtype"] != "linear" {
			continue
		}
		name := r["lv_name"]
		if want[name] == nil {
			want[name] = pattern(name, atoi(e.t, r["lv_size"]))
		}
		start, size := atoi(e.t, r["seg_start"]), atoi(e.t, r["seg_size"])
		pr := parsePERanges(e.t, r["seg_pe_ranges"])
		if len(pr) != 1 || (pr[0].end-pr[0].first)*extentSize != size {
			e.t.Fatalf("linear segment %v of %s", r, name)
		}
		f, err := os.OpenFile(file[pr[0].dev], os.O_WRONLY, 0)
		if err != nil {
			e.t.Fatal(err)
		}
		_, err = f.WriteAt(want[name][start:start+size], peStart[pr[0].dev]+pr[0].first*extentSize)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			e.t.Fatal(err)
		}
	}
	return want
}

// readAll reads a whole image.
func readAll(t *testing.T, img image.Image) []byte {
	t.Helper()
	b := make([]byte, img.Size())
	if n, err := img.ReadAt(b, 0); n != len(b) {
		t.Fatalf("ReadAt of %d bytes: %d, %v", len(b), n, err)
	}
	return b
}
