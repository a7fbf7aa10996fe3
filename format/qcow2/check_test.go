package qcow2_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

// qemuVerdict is what qemu-img check says about an image.
type qemuVerdict struct {
	res    image.CheckResult
	code   int
	human  string
	stderr []string
}

func qemuCheck(t *testing.T, path string, args ...string) qemuVerdict {
	t.Helper()
	out, code, stderr := qemutest.RunCode(t, "qemu-img", append(append([]string{"check", "--output=json"}, args...), path)...)
	var v qemuVerdict
	v.code = code
	if strings.TrimSpace(out) != "" {
		if err := json.Unmarshal([]byte(out), &v.res); err != nil {
			t.Fatalf("qemu-img check output %q: %v", out, err)
		}
	}
	v.stderr = lines(stderr)
	return v
}

// qemuHuman runs qemu-img check with human output; a repair runs on a
// copy, so that src stays as it is.
func qemuHuman(t *testing.T, src string, args ...string) string {
	t.Helper()
	p := src
	if len(args) > 0 {
		p = copyFile(t, src)
	}
	out, _, _ := qemutest.RunCode(t, "qemu-img", append(append([]string{"check"}, args...), p)...)
	return out
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" && !strings.HasPrefix(l, "qemu-img:") {
			out = append(out, l)
		}
	}
	return out
}

func copyFile(t *testing.T, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// ourCheck runs Check on path, opened read-only unless repairing.
func ourCheck(t *testing.T, path string, repair image.RepairMode) (*image.CheckResult, error) {
	t.Helper()
	opts := &qcow2.OpenOptions{Backing: image.IgnoreBacking}
	if repair != image.RepairNone {
		opts.Writable, opts.ForCheck = true, true
	}
	img, err := qcow2.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	return img.Check(context.Background(), repair)
}

// sameVerdict compares our result with qemu-img's: counts, exit code,
// messages and human output.
func sameVerdict(t *testing.T, ours *image.CheckResult, q qemuVerdict, human string) {
	t.Helper()
	a, b := *ours, q.res
	a.Filename, b.Filename, a.Messages, a.Repaired = "", "", nil, false
	if !reflect.DeepEqual(a, b) {
		t.Errorf("check result\n ours %+v\n qemu %+v", a, b)
	}
	if got := ours.ExitCode(); got != q.code {
		t.Errorf("exit code %d, qemu-img %d", got, q.code)
	}
	if !equalLines(ours.Messages, q.stderr) {
		t.Errorf("messages\n ours %q\n qemu %q", ours.Messages, q.stderr)
	}
	var buf bytes.Buffer
	if err := ours.WriteHuman(&buf); err != nil {
		t.Fatal(err)
	}
	if q.code <= 3 && buf.String() != human {
		t.Errorf("human output\n ours %q\n qemu %q", buf.String(), human)
	}
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// compareToQemu checks path with both tools, without repair.
func compareToQemu(t *testing.T, path string) *image.CheckResult {
	t.Helper()
	q := qemuCheck(t, path)
	ours, err := ourCheck(t, path, image.RepairNone)
	if err != nil {
		t.Fatal(err)
	}
	sameVerdict(t, ours, q, qemuHuman(t, path))
	return ours
}

// compareRepair repairs one copy of path with qemu-img and another with
// Check, and compares the verdicts; it returns our repaired copy.
func compareRepair(t *testing.T, path string, repair image.RepairMode) string {
	t.Helper()
	flag := map[image.RepairMode]string{image.RepairLeaks: "leaks", image.RepairAll: "all"}[repair]
	human := qemuHuman(t, path, "-r", flag)
	q := qemuCheck(t, copyFile(t, path), "-r", flag)
	mine := copyFile(t, path)
	ours, err := ourCheck(t, mine, repair)
	if q.code == 1 {
		if err == nil {
			t.Fatalf("qemu-img check -r %s failed (%q) but Check did not", flag, q.stderr)
		}
		if ours == nil || ours.ExitCode() != 1 || !equalLines(ours.Messages, q.stderr) {
			t.Fatalf("failed repair: ours %+v, qemu %q", ours, q.stderr)
		}
		return mine
	}
	if err != nil {
		t.Fatal(err)
	}
	sameVerdict(t, ours, q, human)
	return mine
}

// --- helpers that damage images on purpose ---

func u64At(t *testing.T, path string, off int64) uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [8]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	return binary.BigEndian.Uint64(b[:])
}

func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func putU64(t *testing.T, path string, off int64, v uint64) {
	t.Helper()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	writeAt(t, path, off, b[:])
}

func header(t *testing.T, path string) qcow2.Header {
	t.Helper()
	img, err := qcow2.Open(path, &qcow2.OpenOptions{Backing: image.IgnoreBacking})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	return img.Header()
}

// setRefcount overwrites the stored refcount of a host cluster, whose
// refcount block must exist; widths of 8 bits and more only.
func setRefcount(t *testing.T, path string, cluster int64, v uint64) {
	t.Helper()
	h := header(t, path)
	width := int64(h.RefcountBits() / 8)
	perBlock := h.ClusterSize() / width
	block := int64(u64At(t, path, int64(h.RefcountTableOffset)+cluster/perBlock*8) &^ 511)
	if block == 0 {
		t.Fatalf("no refcount block for cluster %d", cluster)
	}
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	writeAt(t, path, block+cluster%perBlock*width, b[8-width:])
}

// l2EntryOff is the file offset of the L2 entry for guest cluster 0.
func l2EntryOff(t *testing.T, path string) int64 {
	t.Helper()
	h := header(t, path)
	l2 := int64(u64At(t, path, int64(h.L1TableOffset)) & 0x00fffffffffffe00)
	if l2 == 0 {
		t.Fatal("guest cluster 0 has no L2 table")
	}
	return l2
}

// newImage creates an image with qemu-img and fills it with qemu-io.
func newImage(t *testing.T, createOpts string, cmds ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "a.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", "-o", createOpts, p, "64M")
	if len(cmds) > 0 {
		qemutest.IO(t, p, cmds...)
	}
	return p
}

// scattered writes data out of guest order so that check has
// fragmentation to count, plus a compressed and a zeroed cluster.
var scattered = []string{
	"write -P 1 4M 192k", "write -P 2 0 64k", "write -P 3 1M 128k",
	"write -c -P 4 8M 64k", "write -z 2M 64k", "write -P 5 40M 4k",
}

func TestCheckCleanVariants(t *testing.T) {
	for _, tc := range []struct {
		name, opts string
		snapshot   bool
		cmds       []string
	}{
		{"v2", "compat=0.10", true, scattered},
		{"v3", "compat=1.1", true, scattered},
		{"512-refcount1", "cluster_size=512,refcount_bits=1", false, scattered},
		{"refcount64", "cluster_size=4096,refcount_bits=64", true, scattered},
		{"extended_l2", "extended_l2=on", true, append([]string{"write -P 7 20M 4k", "write -P 8 20979712 2k"}, scattered...)},
		{"zstd", "compression_type=zstd", true, append([]string{"write -c -P 9 12M 64k"}, scattered...)},
		{"discarded", "compat=1.1", false, append(scattered, "discard 1M 64k")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newImage(t, tc.opts, tc.cmds...)
			if tc.snapshot {
				qemutest.Img(t, "snapshot", "-c", "s1", p)
				qemutest.IO(t, p, "write -P 10 4M 64k", "write -c -P 11 10M 64k", "write -P 12 30M 64k")
			}
			res := compareToQemu(t, p)
			if res.ExitCode() != 0 || res.AllocatedClusters == 0 {
				t.Fatalf("clean image: %+v", res)
			}
		})
	}
}

func TestCheckLeaks(t *testing.T) {
	p := newImage(t, "compat=1.1", scattered...)
	raw := qemutest.ToRaw(t, p)
	// Grow the file by one cluster and give it a refcount nothing uses.
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, st.Size()+65536); err != nil {
		t.Fatal(err)
	}
	setRefcount(t, p, st.Size()/65536, 1)
	res := compareToQemu(t, p)
	if res.Leaks != 1 || res.ExitCode() != 3 {
		t.Fatalf("want one leak: %+v", res)
	}
	fixed := compareRepair(t, p, image.RepairLeaks)
	qemutest.Check(t, fixed)
	if !bytes.Equal(qemutest.ToRaw(t, fixed), raw) {
		t.Fatal("repair changed the guest data")
	}
}

// TestCheckRepairWritable repairs through an ordinary writable open and
// then keeps writing: the allocator must see the repaired refcounts.
func TestCheckRepairWritable(t *testing.T) {
	p := newImage(t, "compat=1.1", scattered...)
	data := qemutest.ToRaw(t, p)
	setRefcount(t, p, l2EntryOff(t, p)/65536, 3)
	img, err := qcow2.Open(p, &qcow2.OpenOptions{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := img.Check(context.Background(), image.RepairAll)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode() != 0 || res.LeaksFixed != 1 {
		t.Fatalf("repair: %+v %q", res, res.Messages)
	}
	more := bytes.Repeat([]byte{0xab}, 200000)
	if _, err := img.WriteAt(more, 100000); err != nil {
		t.Fatal(err)
	}
	copy(data[100000:], more)
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	qemutest.Check(t, p)
	if !bytes.Equal(qemutest.ToRaw(t, p), data) {
		t.Fatal("data differs after repair and write")
	}
}

func TestCheckCorruptions(t *testing.T) {
	for _, tc := range []struct {
		name, opts string
		damage     func(t *testing.T, p string)
		want       int64 // corruptions qemu-img finds
	}{
		{"l2-refcount-zero", "compat=1.1", func(t *testing.T, p string) {
			setRefcount(t, p, l2EntryOff(t, p)/65536, 0)
		}, 2},
		{"data-refcount-high", "compat=1.1", func(t *testing.T, p string) {
			setRefcount(t, p, int64(u64At(t, p, l2EntryOff(t, p))&0x00fffffffffffe00)/65536, 2)
		}, 1},
		{"data-refcount-zero-64bit", "cluster_size=4096,refcount_bits=64", func(t *testing.T, p string) {
			setRefcount(t, p, int64(u64At(t, p, l2EntryOff(t, p))&0x00fffffffffffe00)/4096, 0)
		}, 2},
		{"copied-cleared", "compat=0.10", func(t *testing.T, p string) {
			off := l2EntryOff(t, p)
			putU64(t, p, off, u64At(t, p, off)&^(1<<63))
		}, 1},
		{"past-eof", "compat=1.1", func(t *testing.T, p string) {
			putU64(t, p, l2EntryOff(t, p), 1<<63|1<<40)
		}, 2},
		{"corrupt-bit", "compat=1.1", func(t *testing.T, p string) {
			setRefcount(t, p, l2EntryOff(t, p)/65536, 0)
			putU64(t, p, 72, header(t, p).IncompatibleFeatures|qcow2.IncompatCorrupt)
		}, 2},
		{"refblock-shared", "compat=1.1", func(t *testing.T, p string) {
			h := header(t, p)
			rb := u64At(t, p, int64(h.RefcountTableOffset))
			putU64(t, p, int64(h.RefcountTableOffset)+8, rb)
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newImage(t, tc.opts, scattered...)
			qemutest.Img(t, "snapshot", "-c", "s1", p)
			qemutest.IO(t, p, "write -P 13 0 64k")
			raw := filepath.Join(t.TempDir(), "before.raw")
			qemutest.Img(t, "convert", "-O", "raw", p, raw)
			tc.damage(t, p)
			res := compareToQemu(t, p)
			if res.ExitCode() != 2 || tc.want != 0 && res.Corruptions != tc.want {
				t.Fatalf("damage not seen as wanted: %+v %q", res, res.Messages)
			}
			compareRepair(t, p, image.RepairLeaks)
			fixed := compareRepair(t, p, image.RepairAll)
			if tc.name != "past-eof" {
				qemutest.Check(t, fixed)
				qemutest.Img(t, "compare", "-f", "raw", "-F", "qcow2", raw, fixed)
			}
			if header(t, fixed).IncompatibleFeatures&qcow2.IncompatCorrupt != 0 {
				t.Error("corrupt bit still set after repair")
			}
		})
	}
}

// TestCheckDirtyOpen crashes a lazy-refcounts writer by hand: dirty bit
// set, refcounts stale. A writable Open must repair and clear the bit.
func TestCheckDirtyOpen(t *testing.T) {
	p := newImage(t, "compat=1.1,lazy_refcounts=on", scattered...)
	data := qemutest.ToRaw(t, p)
	data0 := int64(u64At(t, p, l2EntryOff(t, p)) & 0x00fffffffffffe00)
	setRefcount(t, p, data0/65536, 0)
	setRefcount(t, p, l2EntryOff(t, p)/65536, 2)
	h := header(t, p)
	putU64(t, p, 72, h.IncompatibleFeatures|qcow2.IncompatDirty)
	if res := compareToQemu(t, p); res.ExitCode() != 2 {
		t.Fatalf("damaged dirty image: %+v", res)
	}
	img, err := qcow2.Open(p, &qcow2.OpenOptions{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	if img.Header().IncompatibleFeatures&qcow2.IncompatDirty != 0 {
		t.Error("dirty bit still set in memory")
	}
	if _, err := img.WriteAt([]byte("after"), 3<<20); err != nil {
		t.Fatal(err)
	}
	copy(data[3<<20:], "after")
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	if header(t, p).IncompatibleFeatures&qcow2.IncompatDirty != 0 {
		t.Error("dirty bit still set on disk")
	}
	qemutest.Check(t, p)
	if !bytes.Equal(qemutest.ToRaw(t, p), data) {
		t.Fatal("data differs after dirty repair")
	}
}

func TestCheckReadOnlyAndCancel(t *testing.T) {
	p := newImage(t, "compat=1.1", scattered...)
	setRefcount(t, p, l2EntryOff(t, p)/65536, 0)
	before, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	st0, _ := os.Stat(p)
	img, err := qcow2.Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if _, err := img.Check(context.Background(), image.RepairAll); !errors.Is(err, image.ErrReadOnly) {
		t.Errorf("repair of a read-only image: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := img.Check(ctx, image.RepairNone); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled check: %v", err)
	}
	if res, err := img.Check(context.Background(), image.RepairNone); err != nil || res.Corruptions != 2 {
		t.Errorf("check: %+v, %v", res, err)
	}
	after, _ := os.ReadFile(p)
	st1, _ := os.Stat(p)
	if !bytes.Equal(before, after) || !st0.ModTime().Equal(st1.ModTime()) {
		t.Error("a check without repair modified the image")
	}
	if _, err := img.WriteAt([]byte{1}, 0); err == nil {
		t.Error("write to a read-only image succeeded")
	}
	w, err := qcow2.Open(p, &qcow2.OpenOptions{Writable: true, ForCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteAt([]byte{1}, 0); !errors.Is(err, image.ErrReadOnly) {
		t.Errorf("guest write to an image opened for check: %v", err)
	}
}

func TestCheckSpecialVariants(t *testing.T) {
	t.Run("bitmaps", func(t *testing.T) {
		p := newImage(t, "compat=1.1")
		qemutest.Img(t, "bitmap", "--add", p, "b0")
		qemutest.IO(t, p, scattered...)
		qemutest.Img(t, "bitmap", "--add", p, "b1")
		compareToQemu(t, p)
		// A rebuild must keep the bitmap clusters referenced.
		setRefcount(t, p, l2EntryOff(t, p)/65536, 0)
		compareToQemu(t, p)
		fixed := compareRepair(t, p, image.RepairAll)
		qemutest.Check(t, fixed)
		if info := qemutest.Img(t, "info", fixed); strings.Count(info, "name: b") != 2 {
			t.Fatalf("bitmaps lost:\n%s", info)
		}
	})
	t.Run("data_file", func(t *testing.T) {
		// qemu-img resolves a relative name against its working directory.
		p := newImage(t, "data_file="+filepath.Join(t.TempDir(), "data.raw"), scattered[:3]...)
		if res := compareToQemu(t, p); res.AllocatedClusters == 0 {
			t.Fatalf("no data clusters counted: %+v", res)
		}
	})
	t.Run("luks", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "e.qcow2")
		secret := "secret,id=sec0,data=abc"
		qemutest.CreateEncrypted(t, "create", "-q", "-f", "qcow2", "--object", secret, "-o", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10", p, "64M")
		opts := "driver=qcow2,file.filename=" + p + ",encrypt.key-secret=sec0"
		qemutest.Run(t, "qemu-io", "--object", secret, "--image-opts", opts, "-c", "write 0 128k", "-c", "write 1M 64k")
		q := qemuCheck(t, opts, "--object", secret, "--image-opts")
		ours, err := ourCheck(t, p, image.RepairNone)
		if err != nil {
			t.Fatal(err)
		}
		human, _, _ := qemutest.RunCode(t, "qemu-img", "check", "--object", secret, "--image-opts", opts)
		sameVerdict(t, ours, q, human)
	})
}
