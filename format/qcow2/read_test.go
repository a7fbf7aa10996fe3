package qcow2_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qimg/qimg/format"

	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

// The tests in this file build every image with qemu-img and qemu-io and
// hold qimg's read path to what QEMU itself reads: the guest bytes of
// `qemu-img convert -O raw` and the block status of `qemu-img map`.

// workload collects qemu-io commands whose data comes from pattern files
// unique to each write (16-byte text lines naming the write and the offset),
// so that data read from the wrong place can never look right, while still
// compressing well enough for `write -c` to store compressed clusters.
type workload struct {
	t    *testing.T
	dir  string
	n    int
	cmds []string
}

func newWorkload(t *testing.T) *workload {
	return &workload{t: t, dir: t.TempDir()}
}

// write adds "write <flags> -s <pattern> off length".
func (w *workload) write(flags string, off, length int64) *workload {
	w.t.Helper()
	w.n++
	var b bytes.Buffer
	for i := int64(0); i < length; i += 16 {
		fmt.Fprintf(&b, "%03d:%011x\n", w.n%1000, off+i)
	}
	p := filepath.Join(w.dir, fmt.Sprintf("pat%d", w.n))
	if err := os.WriteFile(p, b.Bytes()[:length], 0o644); err != nil {
		w.t.Fatal(err)
	}
	w.cmds = append(w.cmds, strings.TrimSpace(fmt.Sprintf("write %s -s %s %d %d", flags, p, off, length)))
	return w
}

// cmd adds a raw qemu-io command.
func (w *workload) cmd(format string, args ...any) *workload {
	w.cmds = append(w.cmds, fmt.Sprintf(format, args...))
	return w
}

// run applies the commands to a qcow2 image and starts a new batch.
func (w *workload) run(file string) {
	w.t.Helper()
	if len(w.cmds) > 0 {
		qemutest.IO(w.t, file, w.cmds...)
	}
	w.cmds = nil
}

// standardWork writes every kind of cluster qemu can produce into the
// first nc clusters of an image with cluster size cs: normal data with
// partial clusters, compressed clusters, a partial write over a compressed
// cluster (copy-on-write), zeroes with and without unmapping, a discard, a
// partial-cluster zero write, and data in the last, partial cluster.
// The image must be at least nc clusters plus some bytes long.
func standardWork(w *workload, cs int64, nc int, size int64) {
	steps := []func(c int64) int64{
		func(c int64) int64 { w.write("-c", c, cs); return cs },
		func(c int64) int64 { w.write("-c", c, cs).write("", c+512, 1024); return cs }, // COW over compressed
		func(c int64) int64 { w.write("", c, cs).cmd("write -z %d %d", c, cs); return cs },
		func(c int64) int64 { w.write("", c, cs).cmd("write -z -u %d %d", c, cs); return cs },
		func(c int64) int64 { w.write("", c, cs).cmd("discard %d %d", c, cs); return cs },
		func(c int64) int64 { w.write("", c, cs).cmd("write -z %d %d", c+cs/2, 512); return cs },
		func(c int64) int64 { w.write("-c", c, cs).cmd("write -z %d %d", c, cs); return cs }, // zero over compressed
		func(c int64) int64 { w.write("", c, 2*cs+3*512); return 3 * cs },                    // spans three clusters
	}
	end := min(int64(nc)*cs, size-512)
	c := int64(0)
	for i, step := range steps {
		need := cs
		if i == len(steps)-1 {
			need = 2*cs + 3*512
		}
		if c+need > end {
			break
		}
		c += step(c)
	}
	w.write("", size-512, 512)
}

// create runs qemu-img create -f qcow2 with options (may be empty). With
// a backing file (-b in extra) a size of 0 takes the backing file's size.
func create(t *testing.T, path string, size int64, opts string, extra ...string) {
	t.Helper()
	args := []string{"create", "-q", "-f", "qcow2"}
	if opts != "" {
		args = append(args, "-o", opts)
	}
	args = append(args, extra...)
	args = append(args, path)
	if size > 0 || !slices.Contains(extra, "-b") {
		args = append(args, fmt.Sprint(size))
	}
	qemutest.Img(t, args...)
}

// mapEntry is one entry of qemu-img map --output=json.
type mapEntry struct {
	Start   int64  `json:"start"`
	Length  int64  `json:"length"`
	Depth   int    `json:"depth"`
	Present bool   `json:"present"`
	Zero    bool   `json:"zero"`
	Data    bool   `json:"data"`
	Offset  *int64 `json:"offset"`
}

func (e mapEntry) status() string {
	return fmt.Sprintf("data=%v zero=%v present=%v depth=%d", e.Data, e.Zero, e.Present, e.Depth)
}

// mergeStatus merges adjacent entries of equal status, ignoring offsets.
func mergeStatus(es []mapEntry) []mapEntry {
	var out []mapEntry
	for _, e := range es {
		if n := len(out); n > 0 && out[n-1].status() == e.status() && out[n-1].Start+out[n-1].Length == e.Start {
			out[n-1].Length += e.Length
			continue
		}
		e.Offset = nil
		out = append(out, e)
	}
	return out
}

func qemuMap(t *testing.T, path string) []mapEntry {
	t.Helper()
	var es []mapEntry
	out := qemutest.Img(t, "map", "-f", "qcow2", "--output=json", path)
	if err := json.Unmarshal([]byte(out), &es); err != nil {
		t.Fatalf("qemu-img map output: %v\n%s", err, out)
	}
	// An empty image has one entry of length 0.
	return slices.DeleteFunc(es, func(e mapEntry) bool { return e.Length == 0 })
}

// ourMap walks the image with Extent, checking that the extents tile it.
func ourMap(t *testing.T, img *qcow2.Image) ([]mapEntry, []image.Extent) {
	t.Helper()
	var es []mapEntry
	var exts []image.Extent
	size := img.Size()
	for off := int64(0); off < size; {
		e, err := img.Extent(off, size-off)
		if err != nil {
			t.Fatalf("Extent(%d): %v", off, err)
		}
		if e.Start != off || e.Length <= 0 || e.End() > size {
			t.Fatalf("Extent(%d, %d) = %+v: does not continue the walk", off, size-off, e)
		}
		exts = append(exts, e)
		es = append(es, mapEntry{Start: e.Start, Length: e.Length, Depth: e.Depth, Present: e.Allocated, Zero: e.Zero, Data: e.Data})
		off = e.End()
	}
	return es, exts
}

// compareMap holds our Extent walk to qemu-img map: the same status for
// every byte, and the same host offset wherever we report one.
func compareMap(t *testing.T, img *qcow2.Image, path string) {
	t.Helper()
	q := qemuMap(t, path)
	ours, exts := ourMap(t, img)
	mq, mo := mergeStatus(q), mergeStatus(ours)
	if fmt.Sprint(mq) != fmt.Sprint(mo) {
		var b strings.Builder
		for _, e := range mq {
			fmt.Fprintf(&b, "  qemu %10d +%-10d %s\n", e.Start, e.Length, e.status())
		}
		for _, e := range mo {
			fmt.Fprintf(&b, "  qimg %10d +%-10d %s\n", e.Start, e.Length, e.status())
		}
		t.Fatalf("%s: block status differs from qemu-img map:\n%s", path, b.String())
	}
	// Host offsets: every piece of one of our extents with an offset must
	// have the same offset in qemu's map.
	for _, e := range exts {
		if e.HostOffset < 0 {
			if e.Data && !e.Compressed {
				t.Errorf("%s: uncompressed data extent %+v has no host offset", path, e)
			}
			continue
		}
		for _, m := range q {
			lo, hi := max(m.Start, e.Start), min(m.Start+m.Length, e.End())
			if lo >= hi {
				continue
			}
			if m.Offset == nil || *m.Offset+(lo-m.Start) != e.HostOffset+(lo-e.Start) {
				t.Errorf("%s: guest %d: qimg host offset %d, qemu-img map %+v", path, lo, e.HostOffset+(lo-e.Start), m)
			}
		}
	}
}

// verify opens path with qimg and checks it against qemu-img: the full
// ReadAt output, random unaligned reads, and the Extent walk.
func verify(t *testing.T, path string, opts *qcow2.OpenOptions) *qcow2.Image {
	t.Helper()
	want := qemutest.ToRaw(t, path)
	img, err := qcow2.Open(path, chained(path, opts))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { img.Close() })
	if img.Size() != int64(len(want)) {
		t.Fatalf("%s: size %d, qemu-img reads %d bytes", path, img.Size(), len(want))
	}
	got := make([]byte, len(want)+100)
	n, err := img.ReadAt(got, 0)
	if n != len(want) || err != io.EOF {
		t.Fatalf("ReadAt past the end: n=%d err=%v, want %d, io.EOF", n, err, len(want))
	}
	diff(t, path, 0, got[:n], want)
	rng := rand.New(rand.NewPCG(uint64(len(want)), 7))
	h := img.Header()
	for i := 0; i < 40 && len(want) > 0; i++ {
		off := rng.Int64N(int64(len(want)))
		l := rng.Int64N(min(int64(len(want))-off, 3*h.ClusterSize())) + 1
		buf := make([]byte, l)
		if n, err := img.ReadAt(buf, off); n != int(l) || err != nil {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", l, off, n, err)
		}
		diff(t, path, off, buf, want[off:off+l])
	}
	compareMap(t, img, path)
	return img
}

func diff(t *testing.T, path string, base int64, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	end := min(i+32, len(got), len(want))
	t.Fatalf("%s: guest data differs from qemu-img convert at offset %#x:\n qimg %q\n qemu %q", path, base+int64(i), got[i:end], want[i:end])
}

func TestReadClusterSizes(t *testing.T) {
	for _, compat := range []string{"0.10", "1.1"} {
		for _, cs := range []int64{512, 4 << 10, 64 << 10, 2 << 20} {
			t.Run(fmt.Sprintf("compat=%s/cluster=%d", compat, cs), func(t *testing.T) {
				nc := 11
				if cs == 2<<20 {
					nc = 4 // keep the image at a few MiB
				}
				size := int64(nc)*cs + 3*512
				p := filepath.Join(t.TempDir(), "a.qcow2")
				create(t, p, size, fmt.Sprintf("compat=%s,cluster_size=%d", compat, cs))
				w := newWorkload(t)
				standardWork(w, cs, nc, size)
				w.run(p)
				qemutest.Check(t, p)
				verify(t, p, nil)
			})
		}
	}
}

func TestReadRefcountWidths(t *testing.T) {
	for _, bits := range []int{1, 2, 4, 8, 16, 32, 64} {
		t.Run(fmt.Sprint("refcount_bits=", bits), func(t *testing.T) {
			cs := int64(4096)
			size := int64(10*cs + 512)
			p := filepath.Join(t.TempDir(), "a.qcow2")
			opts := fmt.Sprintf("cluster_size=%d,refcount_bits=%d", cs, bits)
			if bits == 16 {
				opts += ",lazy_refcounts=on"
			}
			create(t, p, size, opts)
			w := newWorkload(t)
			standardWork(w, cs, 10, size)
			w.run(p)
			img := verify(t, p, nil)
			if h := img.Header(); h.RefcountBits() != bits || (bits == 16) != (h.CompatibleFeatures&qcow2.CompatLazyRefcounts != 0) {
				t.Fatalf("header: refcount bits %d, compatible features %#x", h.RefcountBits(), h.CompatibleFeatures)
			}
		})
	}
}

func TestReadZstd(t *testing.T) {
	for _, cs := range []int64{4 << 10, 64 << 10} {
		t.Run(fmt.Sprint("cluster=", cs), func(t *testing.T) {
			size := 12*cs + 1024
			p := filepath.Join(t.TempDir(), "z.qcow2")
			create(t, p, size, fmt.Sprintf("compression_type=zstd,cluster_size=%d", cs))
			w := newWorkload(t)
			standardWork(w, cs, 10, size)
			// Runs of compressed clusters mixed with normal ones.
			w.write("-c", 10*cs, cs).write("-c", 11*cs, cs).write("", 9*cs+100*16, 64)
			w.run(p)
			img := verify(t, p, nil)
			if h := img.Header(); h.CompressionName() != "zstd" {
				t.Fatalf("compression type %q", h.CompressionName())
			}
		})
	}
}

// TestReadDirtyLazyRefcounts reads an image whose dirty bit is set, as a
// crashed writer with lazy refcounts leaves it: reading needs no repair.
func TestReadDirtyLazyRefcounts(t *testing.T) {
	cs := int64(64 << 10)
	size := 6*cs + 512
	p := filepath.Join(t.TempDir(), "lazy.qcow2")
	create(t, p, size, "lazy_refcounts=on")
	w := newWorkload(t)
	standardWork(w, cs, 6, size)
	w.run(p)
	patchU64(t, p, 72, func(v uint64) uint64 { return v | qcow2.IncompatDirty })
	verify(t, p, nil)
}

func TestReadExtendedL2(t *testing.T) {
	for _, cs := range []int64{32 << 10, 64 << 10} {
		t.Run(fmt.Sprint("cluster=", cs), func(t *testing.T) {
			dir := t.TempDir()
			sub := cs / 32
			size := 8*cs + 4096
			base := filepath.Join(dir, "base.qcow2")
			create(t, base, size, fmt.Sprintf("cluster_size=%d", cs))
			newWorkload(t).write("", 0, size).run(base)

			for _, withBacking := range []bool{false, true} {
				p := filepath.Join(dir, fmt.Sprintf("x%v.qcow2", withBacking))
				if withBacking {
					create(t, p, 0, fmt.Sprintf("extended_l2=on,cluster_size=%d", cs), "-b", "base.qcow2", "-F", "qcow2")
				} else {
					create(t, p, size, fmt.Sprintf("extended_l2=on,cluster_size=%d", cs))
				}
				w := newWorkload(t)
				// Subcluster-sized and subcluster-aligned pieces.
				w.write("", sub, sub).write("", 3*sub, 2*sub).write("", 31*sub, 2*sub)
				// Unaligned write: qemu fills the rest of the subclusters.
				w.write("", cs+sub+100, 300)
				// A full cluster, then partial discards and zero writes.
				w.write("", 2*cs, cs).cmd("discard %d %d", 2*cs+4*sub, 3*sub).
					cmd("write -z %d %d", 2*cs+10*sub, 2*sub).cmd("write -z -u %d %d", 2*cs+20*sub, sub)
				// Zero subclusters in an unallocated cluster.
				w.cmd("write -z %d %d", 3*cs+5*sub, 4*sub)
				// Compressed cluster, then a subcluster write over it.
				w.write("-c", 4*cs, cs).write("-c", 5*cs, cs).write("", 5*cs+7*sub, sub)
				// Whole-cluster zero and discard.
				w.write("", 6*cs, cs).cmd("write -z -u %d %d", 6*cs, cs).cmd("discard %d %d", 6*cs+sub, sub)
				w.write("", 7*cs+2*sub, 5*sub).cmd("discard %d %d", 7*cs, cs)
				w.run(p)
				qemutest.Check(t, p)
				verify(t, p, nil)
			}
		})
	}
}

// chainLayer writes distinct data into one layer so that map depths and
// data from every layer show up in the top image.
func chainLayer(t *testing.T, path string, layer int, cs, size int64) {
	w := newWorkload(t)
	for c := int64(layer); c*cs < size; c += 4 {
		w.write("", c*cs+int64(layer)*512, min(cs+1024, size-c*cs-int64(layer)*512))
	}
	if layer > 0 {
		w.cmd("write -z %d %d", int64(layer+1)*cs, cs)
	}
	w.run(path)
}

func TestReadBackingChains(t *testing.T) {
	const cs = 4096
	t.Run("depth1", func(t *testing.T) {
		dir := t.TempDir()
		base := filepath.Join(dir, "base.qcow2")
		create(t, base, 64*cs, "cluster_size=4096")
		chainLayer(t, base, 0, cs, 64*cs)
		top := filepath.Join(dir, "top.qcow2")
		create(t, top, 0, "cluster_size=4096", "-b", "base.qcow2", "-F", "qcow2")
		chainLayer(t, top, 1, cs, 64*cs)
		newWorkload(t).write("-c", 11*cs, cs).cmd("discard %d %d", 13*cs, cs).run(top)
		img := verify(t, top, nil)
		if h := img.Header(); h.BackingFile != "base.qcow2" || h.BackingFormat != "qcow2" {
			t.Fatalf("backing %q format %q", h.BackingFile, h.BackingFormat)
		}
		// IgnoreBacking reads the top layer alone.
		one, err := qcow2.Open(top, chained(top, &qcow2.OpenOptions{Backing: image.IgnoreBacking}))
		if err != nil {
			t.Fatal(err)
		}
		defer one.Close()
		alone := filepath.Join(dir, "alone.qcow2")
		qemutest.Img(t, "rebase", "-u", "-b", "", "-f", "qcow2", topCopy(t, top, alone))
		want := qemutest.ToRaw(t, alone)
		got := make([]byte, len(want))
		if _, err := one.ReadAt(got, 0); err != nil {
			t.Fatal(err)
		}
		diff(t, top+" (IgnoreBacking)", 0, got, want)
		// RefuseBacking refuses it.
		if _, err := qcow2.Open(top, chained(top, &qcow2.OpenOptions{Backing: image.RefuseBacking})); !errors.Is(err, image.ErrBackingRefused) {
			t.Fatalf("RefuseBacking: %v", err)
		}
	})

	// A chain of depth 3 with relative names resolved against each
	// overlay's own directory, opened from an unrelated working directory:
	// a/top.qcow2 -> b/mid2.qcow2 (a/b) -> ../mid1.qcow2 (a) -> c/base (a/c).
	for _, rawBase := range []bool{false, true} {
		for _, withFormat := range []bool{true, false} {
			t.Run(fmt.Sprintf("depth3/raw=%v/format=%v", rawBase, withFormat), func(t *testing.T) {
				dir := t.TempDir()
				for _, d := range []string{"a/b", "a/c", "elsewhere"} {
					if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
						t.Fatal(err)
					}
				}
				size := int64(40 * cs)
				base, baseFmt := filepath.Join(dir, "a/c/base.qcow2"), "qcow2"
				if rawBase {
					base, baseFmt = filepath.Join(dir, "a/c/base.raw"), "raw"
					qemutest.Img(t, "create", "-q", "-f", "raw", base, fmt.Sprint(size))
					// Data in a few places only, so the file has holes.
					qemutest.Run(t, "qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 8k", "-c", "write -P 0x5b 64k 12k", base)
				} else {
					create(t, base, size, "cluster_size=4096")
					chainLayer(t, base, 0, cs, size)
				}
				mid1 := filepath.Join(dir, "a/mid1.qcow2")
				mid2 := filepath.Join(dir, "a/b/mid2.qcow2")
				top := filepath.Join(dir, "a/top.qcow2")
				create(t, mid1, 0, "cluster_size=4096", "-b", "c/"+filepath.Base(base), "-F", baseFmt)
				chainLayer(t, mid1, 1, cs, size)
				create(t, mid2, 0, "cluster_size=4096", "-b", "../mid1.qcow2", "-F", "qcow2")
				chainLayer(t, mid2, 2, cs, size)
				create(t, top, 0, "cluster_size=512", "-b", "b/mid2.qcow2", "-F", "qcow2")
				chainLayer(t, top, 3, cs, size)
				if !withFormat {
					// qemu-img 7.2 refuses to create or rebase onto a
					// backing file without a format, so the backing
					// format extensions are removed by rewriting headers
					// of the qemu-made images; qimg must then probe.
					for _, p := range []string{top, mid2, mid1} {
						rewriteExtensions(t, p, func(es []ext) []ext {
							return dropExt(es, 0xe2792aca)
						})
					}
					if out := qemutest.Img(t, "info", top); strings.Contains(out, "backing file format") {
						t.Fatalf("backing format still present:\n%s", out)
					}
				}
				t.Chdir(filepath.Join(dir, "elsewhere"))
				img := verify(t, "../a/top.qcow2", nil)
				if want := map[bool]string{true: "qcow2", false: ""}[withFormat]; img.Header().BackingFormat != want {
					t.Fatalf("backing format %q", img.Header().BackingFormat)
				}
			})
		}
	}

	// Overlays larger and smaller than their base: past the end of the
	// base, unallocated clusters read as zeros.
	for _, rawBase := range []bool{false, true} {
		for _, topSize := range []int64{100 * cs, 20*cs + 512} {
			t.Run(fmt.Sprintf("size/raw=%v/top=%d", rawBase, topSize), func(t *testing.T) {
				dir := t.TempDir()
				baseSize := int64(50*cs + 1024)
				var base, baseFmt string
				if rawBase {
					base, baseFmt = filepath.Join(dir, "base.img"), "raw"
					b := make([]byte, baseSize)
					for i := range b {
						b[i] = byte(i/512 + 1)
					}
					if err := os.WriteFile(base, b, 0o644); err != nil {
						t.Fatal(err)
					}
				} else {
					base, baseFmt = filepath.Join(dir, "base.qcow2"), "qcow2"
					create(t, base, baseSize, "cluster_size=4096")
					newWorkload(t).write("", 0, baseSize).run(base)
				}
				top := filepath.Join(dir, "top.qcow2")
				create(t, top, topSize, "cluster_size=65536", "-b", filepath.Base(base), "-F", baseFmt)
				newWorkload(t).write("", 3*cs, cs).write("", topSize-600, 600).run(top)
				verify(t, top, nil)
			})
		}
	}
}

// topCopy copies an image file to dst and returns dst.
func topCopy(t *testing.T, src, dst string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestReadDataFile(t *testing.T) {
	for _, c := range []struct{ rawData, extL2 bool }{{false, false}, {true, false}, {false, true}} {
		rawData := c.rawData
		t.Run(fmt.Sprintf("data_file_raw=%v/extended_l2=%v", c.rawData, c.extL2), func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "img"), 0o755); err != nil {
				t.Fatal(err)
			}
			cs := int64(4096)
			size := 32*cs + 512
			p := filepath.Join(dir, "img/x.qcow2")
			opts := "cluster_size=4096,data_file=x.data"
			if rawData {
				opts += ",data_file_raw=on"
			}
			if c.extL2 {
				opts = strings.Replace(opts, "4096", "65536", 1) + ",extended_l2=on"
			}
			t.Chdir(filepath.Join(dir, "img"))
			create(t, "x.qcow2", size, opts)
			w := newWorkload(t)
			if c.extL2 {
				// Subclusters of guest cluster 0, which the data file
				// holds at host offset 0.
				w.write("", 2048, 2048).cmd("write -z 8192 4096").write("", 30*2048, 1000)
			}
			w.write("", 0, 3*cs+100).write("", 5*cs, cs).cmd("write -z %d %d", 5*cs, cs)
			w.write("", 7*cs, cs).cmd("write -z -u %d %d", 7*cs, cs)
			w.write("", 9*cs, 2*cs).cmd("discard %d %d", 9*cs, cs)
			w.cmd("write -z %d %d", 12*cs, 2*cs).write("", size-512, 512)
			w.run("x.qcow2")
			// qemu 7.2 opens a relative data file name relative to its
			// working directory, qimg relative to the image (as for
			// backing files), so the oracle runs in the image's
			// directory and qimg also from elsewhere.
			want := qemutest.ToRaw(t, p)
			img := verify(t, p, nil)
			t.Chdir(dir)
			other, err := qcow2.Open("img/x.qcow2", chained("img/x.qcow2", nil))
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			got := make([]byte, len(want))
			if _, err := other.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			diff(t, "img/x.qcow2", 0, got, want)
			h := img.Header()
			if h.DataFile != "x.data" || (h.AutoclearFeatures&qcow2.AutoclearDataFileRaw != 0) != rawData {
				t.Fatalf("data file %q autoclear %#x", h.DataFile, h.AutoclearFeatures)
			}
			if _, err := qcow2.Open(p, chained(p, &qcow2.OpenOptions{Backing: image.RefuseBacking})); !errors.Is(err, image.ErrBackingRefused) {
				t.Fatalf("RefuseBacking with a data file: %v", err)
			}
		})
	}
}

type qemuSnapshot struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	VMStateSize uint64 `json:"vm-state-size"`
	DateSec     int64  `json:"date-sec"`
	DateNsec    int64  `json:"date-nsec"`
	VMClockSec  int64  `json:"vm-clock-sec"`
	VMClockNsec int64  `json:"vm-clock-nsec"`
	Icount      *int64 `json:"icount"`
}

func TestReadSnapshots(t *testing.T) {
	for _, compat := range []string{"0.10", "1.1"} {
		t.Run("compat="+compat, func(t *testing.T) {
			cs := int64(4096)
			size := 24*cs + 512
			p := filepath.Join(t.TempDir(), "s.qcow2")
			create(t, p, size, "cluster_size=4096,compat="+compat)
			w := newWorkload(t)
			standardWork(w, cs, 8, size)
			w.run(p)
			qemutest.Img(t, "snapshot", "-c", "s1", p)
			// Overwrite shared clusters (copy-on-write away from the
			// snapshot), zero and discard some, and add new ones.
			w.write("", 0, 5*cs).cmd("write -z %d %d", 4*cs, cs).cmd("discard %d %d", 6*cs, 2*cs).write("-c", 20*cs, cs)
			w.run(p)
			qemutest.Img(t, "snapshot", "-c", "second snapshot", p)
			w.write("", 2*cs+77*16, 4000).write("", 3*cs, cs)
			w.run(p)
			qemutest.Img(t, "snapshot", "-d", "s1", p)
			qemutest.Img(t, "snapshot", "-c", "s3", p)
			w.write("", 10*cs, 3*cs)
			w.run(p)
			if compat == "1.1" {
				// Give the last snapshot a large VM state size (in the
				// extra data) and a VM clock, as savevm would.
				patchSnapshot(t, p, "s3", 1<<33+5, 3*time.Second+7)
			}
			qemutest.Check(t, p)
			img := verify(t, p, nil)

			snaps, err := img.Snapshots()
			if err != nil {
				t.Fatal(err)
			}
			var info struct {
				Snapshots []qemuSnapshot `json:"snapshots"`
			}
			if err := json.Unmarshal([]byte(qemutest.Img(t, "info", "--output=json", p)), &info); err != nil {
				t.Fatal(err)
			}
			if len(snaps) != len(info.Snapshots) || len(snaps) != 2 {
				t.Fatalf("qimg lists %d snapshots, qemu-img info %d (want 2)", len(snaps), len(info.Snapshots))
			}
			list := qemutest.Img(t, "snapshot", "-l", p)
			for i, s := range snaps {
				q := info.Snapshots[i]
				got := qemuSnapshot{ID: s.ID, Name: s.Name, VMStateSize: s.VMStateSize,
					DateSec: s.Date.Unix(), DateNsec: int64(s.Date.Nanosecond()),
					VMClockSec: int64(s.VMClock / time.Second), VMClockNsec: int64(s.VMClock % time.Second)}
				qIcount := int64(-1)
				if q.Icount != nil {
					qIcount = *q.Icount
				}
				q.Icount = nil
				if fmt.Sprint(got) != fmt.Sprint(q) || qIcount != s.Icount {
					t.Errorf("snapshot %d: qimg %+v, qemu-img info %+v", i, got, q)
				}
				// qemu-img snapshot -l: "ID TAG VM-SIZE DATE VM-CLOCK ICOUNT".
				found := false
				for _, line := range strings.Split(list, "\n") {
					if f := strings.Fields(line); len(f) > 1 && f[0] == s.ID && strings.HasPrefix(strings.Join(f[1:], " "), s.Name+" ") {
						found = strings.Contains(line, s.Date.Local().Format("2006-01-02 15:04:05"))
					}
				}
				if !found {
					t.Errorf("snapshot %s %q (%v) not in qemu-img snapshot -l:\n%s", s.ID, s.Name, s.Date.Local(), list)
				}
			}
		})
	}
}

// patchSnapshot sets the VM state size (in the extra data, falling back to
// the 32-bit field) and VM clock of the named snapshot.
func patchSnapshot(t *testing.T, path, name string, vmState uint64, clock time.Duration) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdr := make([]byte, 72)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	n, off := be.Uint32(hdr[60:]), int64(be.Uint64(hdr[64:]))
	for range n {
		e := make([]byte, 40)
		if _, err := f.ReadAt(e, off); err != nil {
			t.Fatal(err)
		}
		idLen, nameLen, extra := int64(be.Uint16(e[12:])), int64(be.Uint16(e[14:])), int64(be.Uint32(e[36:]))
		rest := make([]byte, extra+idLen+nameLen)
		if _, err := f.ReadAt(rest, off+40); err != nil {
			t.Fatal(err)
		}
		if string(rest[extra+idLen:]) == name {
			if extra < 8 {
				t.Fatalf("snapshot %q has only %d bytes of extra data", name, extra)
			}
			be.PutUint64(e[24:], uint64(clock))
			be.PutUint32(e[32:], 0)
			be.PutUint64(rest, vmState)
			if _, err := f.WriteAt(append(e, rest...), off); err != nil {
				t.Fatal(err)
			}
			return
		}
		off += (40 + int64(len(rest)) + 7) &^ 7
	}
	t.Fatalf("no snapshot %q", name)
}

func TestReadEncrypted(t *testing.T) {
	secret := []string{"--object", "secret,id=sec0,data=123456"}
	for _, c := range []struct {
		name, opts string
		method     uint32
	}{
		{"luks", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10", qcow2.CryptLUKS},
		// qemu-img 7.2 still creates legacy AES images (it only refuses
		// to run them in the system emulator), so no header crafting.
		{"aes", "encrypt.format=aes,encrypt.key-secret=sec0", qcow2.CryptAES},
		{"aes-encryption=on", "encryption=on,encrypt.key-secret=sec0", qcow2.CryptAES},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "e.qcow2")
			args := append([]string{"create", "-q", "-f", "qcow2", "-o", c.opts + ",cluster_size=4096"}, secret...)
			qemutest.CreateEncrypted(t, append(args, p, "1M")...)
			imgOpt := "driver=qcow2,file.filename=" + p + ",encrypt.key-secret=sec0"
			qemutest.Run(t, "qemu-io", append(secret, "--image-opts", "-c", "write -P 7 0 8k", imgOpt)...)
			info := qemutest.Img(t, "info", p)
			if !strings.Contains(info, "encrypted: yes") {
				t.Fatalf("qemu-img info does not report encryption:\n%s", info)
			}
			img, err := qcow2.Open(p, chained(p, nil))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer img.Close()
			h := img.Header()
			if h.CryptMethod != c.method || h.EncryptionName() != strings.SplitN(c.name, "-", 2)[0] {
				t.Fatalf("crypt method %d (%s), want %d", h.CryptMethod, h.EncryptionName(), c.method)
			}
			if (c.method == qcow2.CryptLUKS) != (h.Crypto != nil) {
				t.Fatalf("crypto header extension %+v", h.Crypto)
			}
			buf := make([]byte, 4096)
			_, err = img.ReadAt(buf, 0)
			if !errors.Is(err, image.ErrEncrypted) || !strings.Contains(err.Error(), "encrypted") {
				t.Fatalf("ReadAt: %v, want an error wrapping image.ErrEncrypted", err)
			}
			if _, err := qcow2.Open(p, chained(p, &qcow2.OpenOptions{Writable: true})); !errors.Is(err, image.ErrEncrypted) {
				t.Fatalf("writable Open: %v, want image.ErrEncrypted", err)
			}
		})
	}
}

// ext is one header extension.
type ext struct {
	typ  uint32
	data []byte
}

func dropExt(es []ext, typ uint32) []ext {
	var out []ext
	for _, e := range es {
		if e.typ != typ {
			out = append(out, e)
		}
	}
	return out
}

// rewriteExtensions rewrites the header extension area of a v3 image made
// by qemu-img: it decodes the extensions, lets edit change them, and
// writes them back followed by the backing file name, updating the
// backing file offset.
func rewriteExtensions(t *testing.T, path string, edit func([]ext) []ext) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	be := binary.BigEndian
	hdr := make([]byte, 512)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		t.Fatal(err)
	}
	if be.Uint32(hdr[4:]) != 3 {
		t.Fatal("rewriteExtensions needs a version 3 image")
	}
	clusterSize := int64(1) << be.Uint32(hdr[20:])
	hdr = make([]byte, clusterSize)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		t.Fatal(err)
	}
	hlen := int64(be.Uint32(hdr[100:]))
	backOff, backLen := be.Uint64(hdr[8:]), be.Uint32(hdr[16:])
	backing := string(hdr[backOff : backOff+uint64(backLen)])
	var es []ext
	for off := hlen; ; {
		typ, l := be.Uint32(hdr[off:]), int64(be.Uint32(hdr[off+4:]))
		if typ == 0 {
			break
		}
		es = append(es, ext{typ, bytes.Clone(hdr[off+8 : off+8+l])})
		off += 8 + (l+7)&^7
	}
	es = edit(es)
	clear(hdr[hlen:])
	off := hlen
	for _, e := range es {
		be.PutUint32(hdr[off:], e.typ)
		be.PutUint32(hdr[off+4:], uint32(len(e.data)))
		copy(hdr[off+8:], e.data)
		off += 8 + (int64(len(e.data))+7)&^7
	}
	off += 8
	if backing != "" {
		copy(hdr[off:], backing)
		be.PutUint64(hdr[8:], uint64(off))
	}
	if _, err := f.WriteAt(hdr, 0); err != nil {
		t.Fatal(err)
	}
}

// patchU64 rewrites the big-endian 64-bit field at off.
func patchU64(t *testing.T, path string, off int64, fn func(uint64) uint64) {
	t.Helper()
	putU64(t, path, off, fn(u64At(t, path, off)))
}

func TestReadUnknownFeatures(t *testing.T) {
	cs := int64(4096)
	size := 12*cs + 512
	mk := func(t *testing.T, backing bool) string {
		dir := t.TempDir()
		p := filepath.Join(dir, "u.qcow2")
		if backing {
			base := filepath.Join(dir, "base.qcow2")
			create(t, base, size, "cluster_size=4096")
			newWorkload(t).write("", 0, size).run(base)
			create(t, p, 0, "cluster_size=4096", "-b", "base.qcow2", "-F", "qcow2")
		} else {
			create(t, p, size, "cluster_size=4096")
		}
		w := newWorkload(t)
		standardWork(w, cs, 10, size)
		w.run(p)
		return p
	}
	t.Run("extension", func(t *testing.T) {
		for _, backing := range []bool{false, true} {
			p := mk(t, backing)
			unknown := ext{0x7177e4a1, []byte("hello, qcow2")}
			rewriteExtensions(t, p, func(es []ext) []ext {
				return append([]ext{unknown}, append(es, ext{0x51a0f00d, nil})...)
			})
			img := verify(t, p, nil)
			h := img.Header()
			if len(h.Unknown) != 2 || h.Unknown[0].Type != unknown.typ || string(h.Unknown[0].Data) != string(unknown.data) || h.Unknown[1].Type != 0x51a0f00d {
				t.Fatalf("unknown extensions: %+v", h.Unknown)
			}
			if backing && (h.BackingFile != "base.qcow2" || h.BackingFormat != "qcow2") {
				t.Fatalf("backing %q format %q", h.BackingFile, h.BackingFormat)
			}
		}
	})
	t.Run("compatible+autoclear", func(t *testing.T) {
		p := mk(t, true)
		patchU64(t, p, 80, func(v uint64) uint64 { return v | 1<<5 | 1<<63 })
		patchU64(t, p, 88, func(v uint64) uint64 { return v | 1<<9 | 1<<62 })
		before := fileState(t, p)
		img := verify(t, p, nil)
		if h := img.Header(); h.CompatibleFeatures != 1<<5|1<<63 || h.AutoclearFeatures != 1<<9|1<<62 {
			t.Fatalf("compatible %#x autoclear %#x", h.CompatibleFeatures, h.AutoclearFeatures)
		}
		img.Close()
		if after := fileState(t, p); after != before {
			t.Fatalf("a read-only open changed the image (%s -> %s)", before, after)
		}
	})
	t.Run("incompatible", func(t *testing.T) {
		p := mk(t, false)
		patchU64(t, p, 72, func(v uint64) uint64 { return v | 1<<10 })
		if _, code, _ := qemutest.RunCode(t, "qemu-img", "info", p); code == 0 {
			t.Fatal("qemu-img opens an image with incompatible bit 10")
		}
		_, err := qcow2.Open(p, chained(p, nil))
		if !errors.Is(err, image.ErrUnsupported) || !strings.Contains(err.Error(), "bit 10") {
			t.Fatalf("Open: %v, want image.ErrUnsupported naming bit 10", err)
		}
		// With a name for the bit in the feature name table, the error
		// names it as well.
		// (qemu-img writes no feature name table with 4 KiB clusters.)
		rewriteExtensions(t, p, func(es []ext) []ext {
			var entry [48]byte
			entry[1] = 10
			copy(entry[2:], "frobnication")
			table := ext{typ: 0x6803f857}
			for _, e := range es {
				if e.typ == table.typ {
					table.data = e.data
				}
			}
			table.data = append(table.data, entry[:]...)
			return append(dropExt(es, table.typ), table)
		})
		_, err = qcow2.Open(p, chained(p, nil))
		if !errors.Is(err, image.ErrUnsupported) || !strings.Contains(err.Error(), "bit 10") || !strings.Contains(err.Error(), "frobnication") {
			t.Fatalf("Open: %v, want image.ErrUnsupported naming bit 10 and its name", err)
		}
	})
}

// fileState is a file's content hash, size and modification time.
func fileState(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x size %d mtime %v", sha256.Sum256(b), st.Size(), st.ModTime().UnixNano())
}

// TestReadLeavesFilesUntouched opens, reads, maps and closes a chain with
// a data file and snapshots, and checks that no file changed.
func TestReadLeavesFilesUntouched(t *testing.T) {
	dir := t.TempDir()
	cs := int64(4096)
	size := 16*cs + 512
	base := filepath.Join(dir, "base.qcow2")
	t.Chdir(dir) // qemu 7.2 resolves data file names against the working directory
	create(t, base, size, "cluster_size=4096,data_file=base.data")
	newWorkload(t).write("", 0, size).run(base)
	top := filepath.Join(dir, "top.qcow2")
	create(t, top, 0, "cluster_size=4096,lazy_refcounts=on", "-b", "base.qcow2", "-F", "qcow2")
	w := newWorkload(t)
	standardWork(w, cs, 8, size)
	w.run(top)
	qemutest.Img(t, "snapshot", "-c", "s1", top)
	w.write("", cs, cs).run(top)
	files := []string{base, filepath.Join(dir, "base.data"), top}
	// Give the files an old mtime, so that any write would show.
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	var before []string
	for _, f := range files {
		if err := os.Chtimes(f, old, old); err != nil {
			t.Fatal(err)
		}
		before = append(before, fileState(t, f))
	}
	want := qemutest.ToRaw(t, top)
	img, err := qcow2.Open(top, chained(top, nil))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := img.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	diff(t, top, 0, got, want)
	ourMap(t, img)
	if s, err := img.Snapshots(); err != nil || len(s) != 1 {
		t.Fatalf("Snapshots: %v, %v", s, err)
	}
	if _, err := img.WriteAt([]byte{1}, 0); !errors.Is(err, image.ErrReadOnly) {
		t.Fatalf("WriteAt on a read-only image: %v", err)
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		if after := fileState(t, f); after != before[i] {
			t.Errorf("%s changed by reading: %s -> %s", f, before[i], after)
		}
	}
}

// TestReadConcurrent reads one image (compressed, normal, zero and backing
// clusters) from several goroutines with a tiny cache, so that the L2 and
// decompressed-cluster caches evict all the time. Run with -race.
func TestReadConcurrent(t *testing.T) {
	dir := t.TempDir()
	cs := int64(4096)
	size := 48*cs + 512
	base := filepath.Join(dir, "base.qcow2")
	create(t, base, size, "cluster_size=4096")
	newWorkload(t).write("", 0, 24*cs).write("-c", 24*cs, cs*8).run(base)
	top := filepath.Join(dir, "top.qcow2")
	// 512-byte clusters: one L2 table covers 32 KiB, so the walk below
	// crosses many tables.
	create(t, top, 0, "cluster_size=512", "-b", "base.qcow2", "-F", "qcow2")
	w := newWorkload(t)
	for c := int64(0); c < 48; c += 3 {
		w.write("-c", c*cs, 512).write("", c*cs+4096, 1536).cmd("write -z %d 512", c*cs+8192)
	}
	w.run(top)
	want := qemutest.ToRaw(t, top)
	img, err := qcow2.Open(top, chained(top, &qcow2.OpenOptions{CacheBytes: 1}))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 99))
			for range 150 {
				off := rng.Int64N(size)
				n := rng.Int64N(min(size-off, 20000)) + 1
				buf := make([]byte, n)
				if _, err := img.ReadAt(buf, off); err != nil {
					errs <- fmt.Errorf("ReadAt(%d, %d): %v", n, off, err)
					return
				}
				if !bytes.Equal(buf, want[off:off+n]) {
					errs <- fmt.Errorf("ReadAt(%d, %d) differs from qemu-img", n, off)
					return
				}
				if _, err := img.Extent(off, n); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestReadNewReader reads qemu-made images held in memory: backing files
// come only from OpenBacking, never from the host file system.
func TestReadNewReader(t *testing.T) {
	dir := t.TempDir()
	cs := int64(4096)
	size := 12*cs + 512
	base := filepath.Join(dir, "base.qcow2")
	create(t, base, size, "cluster_size=4096")
	newWorkload(t).write("", 0, size).run(base)
	top := filepath.Join(dir, "top.qcow2")
	create(t, top, 0, "cluster_size=4096", "-b", "base.qcow2", "-F", "qcow2")
	w := newWorkload(t)
	standardWork(w, cs, 10, size)
	w.run(top)
	want := qemutest.ToRaw(t, top)
	b, err := os.ReadFile(top)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := qcow2.NewReader(bytes.NewReader(b), int64(len(b)), "mem", nil); !errors.Is(err, image.ErrBackingRefused) {
		t.Fatalf("NewReader without OpenBacking: %v, want image.ErrBackingRefused", err)
	}
	var asked []string
	img, err := qcow2.NewReader(bytes.NewReader(b), int64(len(b)), "mem", &qcow2.OpenOptions{
		OpenBacking: func(name, format string) (image.Image, error) {
			asked = append(asked, fmt.Sprintf("%s %s", name, format))
			return qcow2.Open(filepath.Join(dir, name), chained(filepath.Join(dir, name), nil))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if fmt.Sprint(asked) != "[base.qcow2 qcow2]" {
		t.Fatalf("OpenBacking calls: %q", asked)
	}
	got := make([]byte, len(want))
	if _, err := img.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	diff(t, "NewReader", 0, got, want)
	compareMap(t, img, top)
}

// TestReadInvalidSubclusterBitmap marks a subcluster both allocated and
// zero, which QEMU refuses to read (QCOW2_SUBCLUSTER_INVALID).
func TestReadInvalidSubclusterBitmap(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.qcow2")
	create(t, p, 256<<10, "extended_l2=on")
	newWorkload(t).write("", 0, 4096).run(p)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	var b [8]byte
	read := func(off int64) uint64 {
		if _, err := f.ReadAt(b[:], off); err != nil {
			t.Fatal(err)
		}
		return be.Uint64(b[:])
	}
	l2 := int64(read(int64(read(40))) & 0x00fffffffffffe00)
	bitmap := read(l2 + 8)
	if bitmap != 3 {
		t.Fatalf("subcluster bitmap %#x, want 0x3", bitmap)
	}
	be.PutUint64(b[:], bitmap|1<<33) // subcluster 1: allocated and zero
	if _, err := f.WriteAt(b[:], l2+8); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, _, stderr := qemutest.RunCode(t, "qemu-io", "-r", "-f", "qcow2", "-c", "read 0 2048", p); !strings.Contains(out+stderr, "read failed") {
		t.Fatalf("qemu-io reads the invalid cluster:\n%s%s", out, stderr)
	}
	img, err := qcow2.Open(p, chained(p, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if _, err := img.ReadAt(make([]byte, 2048), 0); !errors.Is(err, image.ErrCorrupt) {
		t.Fatalf("ReadAt: %v, want image.ErrCorrupt", err)
	}
	// Other clusters still read.
	if _, err := img.ReadAt(make([]byte, 2048), 65536); err != nil {
		t.Fatal(err)
	}
}

// TestReadPreallocation reads preallocated images. With
// preallocation=metadata every cluster is mapped but most are holes in the
// file, which qemu-img map reports as data that reads as zeros.
func TestReadPreallocation(t *testing.T) {
	for _, mode := range []string{"metadata", "falloc", "full"} {
		t.Run(mode, func(t *testing.T) {
			cs := int64(4096)
			size := 40*cs + 512
			p := filepath.Join(t.TempDir(), "p.qcow2")
			create(t, p, size, "cluster_size=4096,preallocation="+mode)
			w := newWorkload(t)
			w.write("", 3*cs, 2*cs+100).write("", 20*cs+512, 512).cmd("write -z %d %d", 30*cs, 2*cs)
			w.cmd("write -z -u %d %d", 33*cs, cs).cmd("discard %d %d", 35*cs, cs)
			w.run(p)
			verify(t, p, nil)
		})
	}
}

// TestReadSmallAndTail reads images of zero and sub-cluster size, and a
// compressed last cluster that is shorter than a cluster.
func TestReadSmallAndTail(t *testing.T) {
	for _, c := range []struct {
		size int64
		opts string
	}{
		{0, ""},
		{512, ""},
		{3*65536 + 1024, ""},
		{3*65536 + 1024, "compression_type=zstd"},
		{512, "cluster_size=2097152"},
	} {
		t.Run(fmt.Sprintf("%d/%s", c.size, c.opts), func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "t.qcow2")
			create(t, p, c.size, c.opts)
			if c.size > 0 {
				w := newWorkload(t)
				tail := c.size &^ 65535
				if tail == c.size {
					tail -= 65536
				}
				if c.size < 65536 {
					tail = 0
				}
				w.write("-c", tail, c.size-tail)
				if tail > 0 {
					w.write("-c", 0, 65536).write("-c", 65536, 65536).write("", 65536+4000, 100)
				}
				w.run(p)
			}
			verify(t, p, nil)
		})
	}
}

// chained returns opts (or the defaults) with the OpenBacking of package
// format, so that the image reads through its backing chain as
// format.Open would open it.
func chained(path string, opts *qcow2.OpenOptions) *qcow2.OpenOptions {
	o := qcow2.OpenOptions{}
	if opts != nil {
		o = *opts
	}
	if o.OpenBacking == nil {
		o.OpenBacking = format.BackingOpener(path)
	}
	return &o
}

// TestReadHeaderBeyond64KiB reads a 2 MiB-cluster image whose backing
// file name sits past the first 64 KiB of its header cluster: Open reads
// the usual 64 KiB first and must fetch the rest for such clusters.
func TestReadHeaderBeyond64KiB(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.raw")
	if err := os.WriteFile(base, bytes.Repeat([]byte{7}, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	top := filepath.Join(dir, "top.qcow2")
	create(t, top, 0, "cluster_size=2M", "-b", "base.raw", "-F", "raw")
	f, err := os.OpenFile(top, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	const nameAt = 100000
	name := []byte("base.raw")
	var field [12]byte
	binary.BigEndian.PutUint64(field[:8], nameAt)
	binary.BigEndian.PutUint32(field[8:], uint32(len(name)))
	if _, err := f.WriteAt(field[:], 8); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(name, nameAt); err != nil {
		t.Fatal(err)
	}
	f.Close()
	qemutest.Check(t, top)
	img := verify(t, top, nil)
	if h := img.Header(); h.BackingFile != "base.raw" || h.BackingFileOffset != nameAt {
		t.Fatalf("backing %q at %d", h.BackingFile, h.BackingFileOffset)
	}
}
