package qcow2_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/qimg/qimg/format"

	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

// The write path is judged by qemu-img: every image qimg writes must pass
// `qemu-img check`, read back through qemu-img exactly as qimg wrote it,
// and stay readable and writable by qemu-io.

func openRW(t *testing.T, p string) *qcow2.Image {
	t.Helper()
	img, err := qcow2.Open(p, chained(p, &qcow2.OpenOptions{Writable: true}))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func mustWrite(t *testing.T, img *qcow2.Image, p []byte, off int64) {
	t.Helper()
	if _, err := img.WriteAt(p, off); err != nil {
		t.Fatal(err)
	}
}

func pattern(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

// checkWritten checks the image with qemu-img and compares its content, as
// qemu-img reads it, with want.
func checkWritten(t *testing.T, p string, want []byte) {
	t.Helper()
	qemutest.Check(t, p)
	got := qemutest.ToRaw(t, p)
	if !bytes.Equal(got, want) {
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: qemu-img reads different data from offset %#x (len %d, want %d)", p, i, len(got), len(want))
	}
}

func TestCreateMatchesQemuInfo(t *testing.T) {
	for _, c := range []struct {
		opts qcow2.CreateOptions
		args string
	}{
		{qcow2.CreateOptions{}, ""},
		{qcow2.CreateOptions{Compat: "0.10"}, "compat=0.10"},
		{qcow2.CreateOptions{ClusterSize: 512, RefcountBits: 1}, "cluster_size=512,refcount_bits=1"},
		{qcow2.CreateOptions{LazyRefcounts: true, RefcountBits: 64}, "lazy_refcounts=on,refcount_bits=64"},
		{qcow2.CreateOptions{CompressionType: "zstd", ExtendedL2: true}, "compression_type=zstd,extended_l2=on"},
		{qcow2.CreateOptions{ClusterSize: 2 << 20, Preallocation: "metadata"}, "cluster_size=2M,preallocation=metadata"},
		{qcow2.CreateOptions{Preallocation: "falloc"}, "preallocation=falloc"},
		{qcow2.CreateOptions{Preallocation: "full", ClusterSize: 4096}, "preallocation=full,cluster_size=4096"},
	} {
		dir := t.TempDir()
		ours, theirs := filepath.Join(dir, "ours.qcow2"), filepath.Join(dir, "theirs.qcow2")
		c.opts.Size = 65537000 // not a sector multiple: both round it up
		if err := qcow2.Create(ours, c.opts); err != nil {
			t.Fatal(err)
		}
		args := []string{"create", "-q", "-f", "qcow2"}
		if c.args != "" {
			args = append(args, "-o", c.args)
		}
		qemutest.Img(t, append(args, theirs, "65537000")...)
		if a, b := infoData(t, ours), infoData(t, theirs); a != b {
			t.Errorf("%s: info differs:\nqimg:     %s\nqemu-img: %s", c.args, a, b)
		}
		checkWritten(t, ours, make([]byte, 65537024))
		img := openRW(t, ours)
		mustWrite(t, img, pattern(9, 300000), 5000)
		if err := img.Close(); err != nil {
			t.Fatal(err)
		}
		want := make([]byte, 65537024)
		copy(want[5000:], pattern(9, 300000))
		checkWritten(t, ours, want)
		if c.opts.Preallocation != "" && fileSize(t, ours) < 65537024 {
			t.Errorf("%s: preallocated file is only %d bytes", c.args, fileSize(t, ours))
		}
	}
}

// infoData is the part of qemu-img info --output=json that depends on
// the creation options, not on file placement.
func infoData(t *testing.T, p string) string {
	t.Helper()
	var info struct {
		VirtualSize    int64           `json:"virtual-size"`
		ClusterSize    int64           `json:"cluster-size"`
		FormatSpecific json.RawMessage `json:"format-specific"`
	}
	if err := json.Unmarshal([]byte(qemutest.Img(t, "info", "--output=json", p)), &info); err != nil {
		t.Fatal(err)
	}
	var fs bytes.Buffer
	json.Compact(&fs, info.FormatSpecific)
	return strings.Join([]string{itoa(info.VirtualSize), itoa(info.ClusterSize), fs.String()}, " ")
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestWriteOverBacking writes into an overlay whose base qemu made: partial
// cluster writes must copy the rest of the cluster from the base, zero
// writes must hide the base, and a raw base works like a qcow2 one.
func TestWriteOverBacking(t *testing.T) {
	for _, baseFmt := range []string{"qcow2", "raw"} {
		for _, compat := range []string{"1.1", "0.10"} {
			dir := t.TempDir()
			base := filepath.Join(dir, "base."+baseFmt)
			qemutest.Img(t, "create", "-q", "-f", baseFmt, base, "4M")
			qemutest.Run(t, "qemu-io", "-f", baseFmt, "-c", "write -P 0x61 0 4M", base)
			top := filepath.Join(dir, "top.qcow2")
			if err := qcow2.Create(top, qcow2.CreateOptions{Compat: compat, BackingFile: "base." + baseFmt, BackingFormat: baseFmt, OpenBacking: format.BackingOpener(top)}); err != nil {
				t.Fatal(err)
			}
			img := openRW(t, top)
			if img.Size() != 4<<20 {
				t.Fatalf("overlay size %d, want the base's 4 MiB", img.Size())
			}
			want := pattern(0x61, 4<<20)
			mustWrite(t, img, pattern(0x62, 100), 70000)
			copy(want[70000:], pattern(0x62, 100))
			if err := img.WriteZeroes(1<<20, 200000); err != nil {
				t.Fatal(err)
			}
			clear(want[1<<20 : 1<<20+200000])
			if err := img.Discard(2<<20, 1<<20); err != nil {
				t.Fatal(err)
			}
			clear(want[2<<20 : 3<<20])
			if err := img.Close(); err != nil {
				t.Fatal(err)
			}
			checkWritten(t, top, want)
		}
	}
}

// TestWriteAfterSnapshot writes into clusters and L2 tables shared with an
// internal snapshot (made by qemu-img): they must be copied, and the
// snapshot must still hold the old data.
func TestWriteAfterSnapshot(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "snap.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", p, "8M")
	// qemu-io cannot compress over an allocated cluster: compress first.
	qemutest.IO(t, p, "write -c -P 2 1M 4k", "write -P 1 0 1M", "write -P 1 1028k 7164k")
	qemutest.Img(t, "snapshot", "-c", "s1", p)
	before := qemutest.ToRaw(t, p)
	img := openRW(t, p)
	want := bytes.Clone(before)
	mustWrite(t, img, pattern(3, 5000), 100)
	copy(want[100:], pattern(3, 5000))
	mustWrite(t, img, pattern(4, 10), 1<<20+7) // COW from a compressed cluster
	copy(want[1<<20+7:], pattern(4, 10))
	if err := img.WriteZeroes(4<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	clear(want[4<<20 : 5<<20])
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	checkWritten(t, p, want)
	qemutest.Img(t, "snapshot", "-a", "s1", p)
	checkWritten(t, p, before)
}

// TestSubclusterWrites covers extended L2: writes, zeroes and discards
// smaller than a cluster, over a base so unwritten subclusters show it.
func TestSubclusterWrites(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", base, "2M")
	qemutest.IO(t, base, "write -P 0x41 0 2M")
	top := filepath.Join(dir, "top.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", "-o", "extended_l2=on", "-b", "base.qcow2", "-F", "qcow2", top)
	qemutest.IO(t, top, "write -P 0x42 2k 2k", "write -z 8k 4k", "discard 64k 64k", "write -P 0x43 130k 1k")
	want := qemutest.ToRaw(t, top)
	img := openRW(t, top)
	mustWrite(t, img, pattern(0x44, 3000), 6000)
	copy(want[6000:], pattern(0x44, 3000))
	mustWrite(t, img, pattern(0x45, 2048), 192<<10)
	copy(want[192<<10:], pattern(0x45, 2048))
	if err := img.WriteZeroes(300<<10, 2048); err != nil {
		t.Fatal(err)
	}
	clear(want[300<<10 : 300<<10+2048])
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	checkWritten(t, top, want)
}

// TestQemuIOAfterUs checks qemu-io can keep writing images qimg wrote,
// including compressed clusters, and qimg reads what it wrote.
func TestQemuIOAfterUs(t *testing.T) {
	for _, opts := range []qcow2.CreateOptions{{}, {CompressionType: "zstd"}, {ExtendedL2: true}, {Compat: "0.10", ClusterSize: 1024}} {
		p := filepath.Join(t.TempDir(), "x.qcow2")
		opts.Size = 4 << 20
		if err := qcow2.Create(p, opts); err != nil {
			t.Fatal(err)
		}
		img := openRW(t, p)
		rng := rand.New(rand.NewPCG(3, 4))
		data := make([]byte, 4<<20)
		for i := range data {
			data[i] = byte(rng.Uint32() % 7)
		}
		for off := int64(0); off < 4<<20; off += 256 << 10 {
			h := img.Header()
			c := h.ClusterSize()
			if err := img.WriteCompressed(data[off:off+c], off); err != nil {
				t.Fatal(err)
			}
		}
		mustWrite(t, img, data[1<<20:2<<20], 1<<20)
		if err := img.Close(); err != nil {
			t.Fatal(err)
		}
		want := qemutest.ToRaw(t, p)
		qemutest.IO(t, p, "write -P 0x77 100k 300k", "write -z 2M 64k", "discard 3M 128k")
		copy(want[100<<10:], pattern(0x77, 300<<10))
		clear(want[2<<20 : 2<<20+64<<10])
		clear(want[3<<20 : 3<<20+128<<10])
		checkWritten(t, p, want)
		ro, err := qcow2.Open(p, chained(p, nil))
		if err != nil {
			t.Fatal(err)
		}
		got := readAll(t, ro)
		ro.Close()
		if !bytes.Equal(got, want) {
			t.Fatalf("%+v: qimg reads something else than qemu-io wrote", opts)
		}
	}
}

func TestResize(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "r.qcow2")
	if err := qcow2.Create(p, qcow2.CreateOptions{Size: 1 << 20, ClusterSize: 512}); err != nil {
		t.Fatal(err)
	}
	img := openRW(t, p)
	mustWrite(t, img, pattern(5, 1<<20), 0)
	// 512-byte clusters map 32 KiB per L2 table: growing to 64 MiB needs
	// an L1 table of 2048 entries, 32 clusters.
	if err := img.Resize(64<<20, false); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, img, pattern(6, 4096), 60<<20)
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 64<<20)
	copy(want, pattern(5, 1<<20))
	copy(want[60<<20:], pattern(6, 4096))
	checkWritten(t, p, want)

	img = openRW(t, p)
	err := img.Resize(512<<10, false)
	if !errors.Is(err, image.ErrInvalidArgument) || !strings.Contains(err.Error(), "--shrink") {
		t.Fatalf("shrink without --shrink: got %v", err)
	}
	if err := img.Resize(512<<10, true); err != nil {
		t.Fatal(err)
	}
	if err := img.Resize(2<<20, false); err != nil { // the dropped tail must read as zeros
		t.Fatal(err)
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	want = make([]byte, 2<<20)
	copy(want, pattern(5, 512<<10))
	checkWritten(t, p, want)
	if err := openRW(t, p).Resize(1000, false); !errors.Is(err, image.ErrInvalidArgument) {
		t.Fatalf("unaligned size: got %v", err)
	}
}

// TestResizeOverLargerBase checks that growing an overlay over a larger
// base shows zeros, not the base, in the new area (as QEMU does).
func TestResizeOverLargerBase(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", base, "4M")
	qemutest.IO(t, base, "write -P 0x33 0 4M")
	top := filepath.Join(dir, "top.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top, "1M")
	img := openRW(t, top)
	if err := img.Resize(3<<20, false); err != nil {
		t.Fatal(err)
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 3<<20)
	copy(want, pattern(0x33, 1<<20))
	checkWritten(t, top, want)
}

// TestResizeWithSnapshots shrinks an image with an internal snapshot, as
// QEMU 7.2 does, then grows it (the L1 table grows too): the active layer
// loses what lay past the smaller size, the snapshot keeps all its
// content, and qemu-img check finds the image clean.
func TestResizeWithSnapshots(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", p, "64k")
	qemutest.IO(t, p, "write -P 9 0 64k")
	qemutest.Img(t, "snapshot", "-c", "s", p)
	img := openRW(t, p)
	if err := img.Resize(32<<10, true); err != nil {
		t.Fatalf("shrink with a snapshot: %v", err)
	}
	if err := img.Resize(8<<20, false); err != nil { // L1 grows from 4 to 256 entries
		t.Fatal(err)
	}
	mustWrite(t, img, pattern(1, 100), 10)
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	qemutest.Check(t, p)
	want := make([]byte, 8<<20)
	copy(want, pattern(9, 32<<10))
	copy(want[10:], pattern(1, 100))
	checkWritten(t, p, want)
	qemutest.Img(t, "snapshot", "-a", "s", p) // restores the snapshot's size too
	checkWritten(t, p, pattern(9, 64<<10))
}

// TestExternalDataFile writes through images whose data lives in a
// separate file, plain and raw.
func TestExternalDataFile(t *testing.T) {
	for _, rawData := range []bool{false, true} {
		dir := t.TempDir()
		p := filepath.Join(dir, "x.qcow2")
		// An absolute name: QEMU resolves a relative data file name against
		// its working directory, qimg against the image's directory.
		data := filepath.Join(dir, "x.data")
		if err := qcow2.Create(p, qcow2.CreateOptions{Size: 2 << 20, DataFile: data, DataFileRaw: rawData}); err != nil {
			t.Fatal(err)
		}
		img := openRW(t, p)
		mustWrite(t, img, pattern(8, 100000), 3000)
		if err := img.WriteZeroes(50000, 1000); err != nil {
			t.Fatal(err)
		}
		if err := img.Close(); err != nil {
			t.Fatal(err)
		}
		want := make([]byte, 2<<20)
		copy(want[3000:], pattern(8, 100000))
		clear(want[50000:51000])
		checkWritten(t, p, want)
		if rawData {
			got, _ := os.ReadFile(data)
			if !bytes.Equal(got, want) {
				t.Fatal("raw data file is not the guest disk")
			}
		}
	}
}

// TestWriteKeepsUnknownFeatures opens for writing an image with unknown
// compatible and autoclear bits and an unknown header extension: the
// compatible bit and the extension are kept, the autoclear bit is cleared
// (the spec's rule for writers that do not know it).
func TestWriteKeepsUnknownFeatures(t *testing.T) {
	p := filepath.Join(t.TempDir(), "u.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", p, "1M")
	img0, err := qcow2.Open(p, chained(p, nil))
	if err != nil {
		t.Fatal(err)
	}
	h := img0.Header()
	img0.Close()
	h.CompatibleFeatures |= 1 << 40
	h.AutoclearFeatures |= 1 << 33
	h.Unknown = append(h.Unknown, qcow2.RawExtension{Type: 0x12345678, Data: []byte("keep me")})
	buf, err := h.Encode()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(buf, 0)
	f.Close()

	img := openRW(t, p)
	mustWrite(t, img, pattern(1, 4096), 0)
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	img, err = qcow2.Open(p, chained(p, nil))
	if err != nil {
		t.Fatal(err)
	}
	got := img.Header()
	img.Close()
	if got.CompatibleFeatures&(1<<40) == 0 {
		t.Error("unknown compatible bit was dropped")
	}
	if got.AutoclearFeatures&(1<<33) != 0 {
		t.Error("unknown autoclear bit survived a write")
	}
	if len(got.Unknown) != 1 || got.Unknown[0].Type != 0x12345678 || string(got.Unknown[0].Data) != "keep me" {
		t.Errorf("unknown extension not kept: %+v", got.Unknown)
	}
	want := make([]byte, 1<<20)
	copy(want, pattern(1, 4096))
	checkWritten(t, p, want)
}

// TestWriteRefusesMetadataOverlap points an L2 entry of a damaged image at
// its own L1 table: a write through it must fail and leave the table
// intact, as QEMU's overlap check does.
func TestWriteRefusesMetadataOverlap(t *testing.T) {
	p := filepath.Join(t.TempDir(), "o.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", p, "1M")
	qemutest.IO(t, p, "write -P 1 0 64k")
	img, err := qcow2.Open(p, chained(p, nil))
	if err != nil {
		t.Fatal(err)
	}
	h := img.Header()
	img.Close()
	l2 := int64(u64At(t, p, int64(h.L1TableOffset)) & 0x00fffffffffffe00)
	// Cluster 0's entry: copied flag + the L1 table's offset.
	putU64(t, p, l2, 1<<63|h.L1TableOffset)
	l1Before := u64At(t, p, int64(h.L1TableOffset))
	rw := openRW(t, p)
	_, err = rw.WriteAt(pattern(2, 100), 0)
	rw.Close()
	if !errors.Is(err, image.ErrCorrupt) || !strings.Contains(err.Error(), "overlaps") {
		t.Fatalf("write through an entry aimed at the L1 table: got %v", err)
	}
	if u64At(t, p, int64(h.L1TableOffset)) != l1Before {
		t.Fatal("the L1 table was overwritten")
	}
}

// TestFreedClustersAreReused discards data and writes elsewhere, over
// several sessions: the file must not grow, as with QEMU, and qemu-img
// must read every byte as written. A second round frees a host cluster
// packed with compressed clusters, reuses it for plain data and then
// compresses again: the new compressed data must not be packed into the
// reused cluster.
func TestFreedClustersAreReused(t *testing.T) {
	const mib = 1 << 20
	p := filepath.Join(t.TempDir(), "reuse.qcow2")
	if err := qcow2.Create(p, qcow2.CreateOptions{Size: 64 * mib}); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 64*mib)
	session := func(edit func(img *qcow2.Image)) {
		t.Helper()
		img := openRW(t, p)
		edit(img)
		if err := img.Close(); err != nil {
			t.Fatal(err)
		}
	}
	write := func(img *qcow2.Image, b byte, off, n int) {
		t.Helper()
		mustWrite(t, img, pattern(b, n), int64(off))
		copy(want[off:], pattern(b, n))
	}
	discard := func(img *qcow2.Image, off, n int) {
		t.Helper()
		if err := img.Discard(int64(off), int64(n)); err != nil {
			t.Fatal(err)
		}
		clear(want[off : off+n])
	}
	session(func(img *qcow2.Image) { write(img, 1, 0, 16*mib) })
	full := fileSize(t, p)
	for round := range 6 {
		// Move 8 MiB of data between two guest ranges, each session
		// freeing what the previous one wrote.
		from, to := 8*mib*(round%2), 8*mib*(1-round%2)
		session(func(img *qcow2.Image) { discard(img, from, 8*mib) })
		session(func(img *qcow2.Image) { write(img, byte(round+2), to+16*mib, 8*mib) })
		session(func(img *qcow2.Image) { discard(img, to+16*mib, 8*mib); write(img, byte(round+10), from, 8*mib) })
		if got := fileSize(t, p); got > full {
			t.Fatalf("round %d: the file grew from %d to %d bytes", round, full, got)
		}
	}
	checkWritten(t, p, want)

	compressed := func(img *qcow2.Image, b byte, off int) {
		t.Helper()
		data := bytes.Repeat([]byte{b, b + 1, b + 2, 0}, 16384) // compresses to a few hundred bytes
		if err := img.WriteCompressed(data, int64(off)); err != nil {
			t.Fatal(err)
		}
		copy(want[off:], data)
	}
	session(func(img *qcow2.Image) { // one session: the packing cursor lives in memory
		for i := range 4 {
			compressed(img, byte(40+i), 40*mib+i*65536)
		}
		discard(img, 40*mib, 4*65536) // the packed host cluster is free again
		write(img, 50, 48*mib, 65536) // and holds plain data now
		for i := range 4 {
			compressed(img, byte(60+i), 56*mib+i*65536)
		}
	})
	checkWritten(t, p, want)
}

// TestWriteMarksBitmapsInUse writes into an image with two persistent
// bitmaps: qimg does not maintain them, so both must come out flagged
// in-use (inconsistent) rather than dropped, with qemu-img check clean
// (dropping them leaks their clusters), and QEMU must still write the
// image and remove the bitmaps. A directory that does not parse is dropped
// the old way, by clearing the autoclear bit.
func TestWriteMarksBitmapsInUse(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bm.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", p, "16M")
	qemutest.IO(t, p, "write -P 1 0 1M")
	qemutest.Img(t, "bitmap", "--add", p, "b0")
	qemutest.Img(t, "bitmap", "--add", p, "b1")
	want := append(pattern(1, 1<<20), make([]byte, 15<<20)...)
	img := openRW(t, p)
	mustWrite(t, img, pattern(2, 100000), 5<<20)
	copy(want[5<<20:], pattern(2, 100000))
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	checkWritten(t, p, want)
	var info struct {
		FormatSpecific struct {
			Data struct {
				Bitmaps []struct {
					Name  string   `json:"name"`
					Flags []string `json:"flags"`
				} `json:"bitmaps"`
			} `json:"data"`
		} `json:"format-specific"`
	}
	if err := json.Unmarshal([]byte(qemutest.Img(t, "info", "--output=json", p)), &info); err != nil {
		t.Fatal(err)
	}
	bitmaps := info.FormatSpecific.Data.Bitmaps
	if len(bitmaps) != 2 {
		t.Fatalf("bitmaps after the write: %+v, want b0 and b1", bitmaps)
	}
	for _, b := range bitmaps {
		if !slices.Contains(b.Flags, "in-use") {
			t.Errorf("bitmap %s has flags %v, want in-use", b.Name, b.Flags)
		}
	}
	qemutest.IO(t, p, "write -P 3 8M 64k")
	qemutest.Img(t, "bitmap", "--remove", p, "b0")
	qemutest.Check(t, p)

	// The directory pointed past the end of the file: the extension is
	// given up, as an old QEMU would.
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	h, err := qcow2.ParseHeader(raw)
	if err != nil || h.Bitmaps == nil {
		t.Fatalf("header: %v, bitmaps %v", err, h)
	}
	ext := bytes.Index(raw[:h.ClusterSize()], []byte{0x23, 0x85, 0x28, 0x75}) // the extension's magic
	if ext < 0 {
		t.Fatal("no bitmaps extension in the header")
	}
	binary.BigEndian.PutUint64(raw[ext+8+16:], uint64(len(raw))*2) // directory offset
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	img = openRW(t, p)
	if _, err := img.WriteAt(make([]byte, 512), 0); err != nil {
		t.Fatal(err)
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(p)
	if clear := binary.BigEndian.Uint64(raw[88:]); clear&qcow2.AutoclearBitmaps != 0 {
		t.Fatalf("autoclear features %#x: the bitmaps bit is still set", clear)
	}
}

// TestZeroesMapLikeQemu zeroes and discards clusters, allocated or not, in
// images with and without a backing file, with qimg and with qemu-io
// (write -z -u, discard): qemu-img map must describe both alike (host
// offsets aside).
func TestZeroesMapLikeQemu(t *testing.T) {
	for _, c := range []struct{ name, opts string }{
		{"v3", "compat=1.1"},
		{"v2", "compat=0.10"},
		{"v3-backing", "compat=1.1"},
		{"extended-l2", "compat=1.1,extended_l2=on"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := []string{"create", "-q", "-f", "qcow2", "-o", c.opts}
			if c.name == "v3-backing" {
				qemutest.Img(t, "create", "-q", "-f", "raw", filepath.Join(dir, "base.raw"), "4M")
				qemutest.Run(t, "qemu-io", "-f", "raw", "-c", "write -P 7 0 4M", filepath.Join(dir, "base.raw"))
				opts = append(opts, "-b", "base.raw", "-F", "raw")
			}
			ours, theirs := filepath.Join(dir, "ours.qcow2"), filepath.Join(dir, "theirs.qcow2")
			for _, p := range []string{ours, theirs} {
				qemutest.Img(t, append(opts, p, "4M")...)
				qemutest.IO(t, p, "write -P 1 0 256k", "write -P 2 1M 64k")
			}
			qemutest.IO(t, theirs, "write -z -u 64k 64k", "write -z -u 512k 128k", "discard 128k 64k", "discard 2M 128k", "discard 1M 64k")
			img := openRW(t, ours)
			for _, z := range [][2]int64{{64 << 10, 64 << 10}, {512 << 10, 128 << 10}} {
				if err := img.WriteZeroes(z[0], z[1]); err != nil {
					t.Fatal(err)
				}
			}
			for _, d := range [][2]int64{{128 << 10, 64 << 10}, {2 << 20, 128 << 10}, {1 << 20, 64 << 10}} {
				if err := img.Discard(d[0], d[1]); err != nil {
					t.Fatal(err)
				}
			}
			if err := img.Close(); err != nil {
				t.Fatal(err)
			}
			strip := func(p string) string {
				var m []map[string]any
				if err := json.Unmarshal([]byte(qemutest.Img(t, "map", "--output=json", p)), &m); err != nil {
					t.Fatal(err)
				}
				for _, e := range m {
					delete(e, "offset")
				}
				b, _ := json.Marshal(m)
				return string(b)
			}
			if a, b := strip(ours), strip(theirs); a != b {
				t.Fatalf("map after qimg:\n%s\nafter qemu-io:\n%s", a, b)
			}
			qemutest.Check(t, ours)
			if out := qemutest.Img(t, "compare", ours, theirs); !strings.Contains(out, "identical") {
				t.Fatal(out)
			}
		})
	}
}

// TestAllocationScanIsBounded points a refcount table of 1M entries at
// one refcount block saying every cluster is in use: two billion clusters
// claimed. Looking for a free cluster to reuse must give up after a
// bounded scan and allocate at the end, in bounded time.
func TestAllocationScanIsBounded(t *testing.T) {
	p := filepath.Join(t.TempDir(), "claims.qcow2")
	if err := qcow2.Create(p, qcow2.CreateOptions{Size: 1 << 20, ClusterSize: 4096}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	const entries = 1 << 20
	cs := int64(4096)
	end := (int64(len(b)) + cs - 1) &^ (cs - 1)
	b = append(b, make([]byte, end-int64(len(b)))...)
	block := end // a refcount block of 16-bit refcounts, all 1
	for i := 0; i < int(cs); i += 2 {
		b = append(b, 0, 1)
	}
	table := end + cs
	tab := make([]byte, entries*8)
	for i := range entries {
		be.PutUint64(tab[i*8:], uint64(block))
	}
	b = append(b, tab...)
	be.PutUint64(b[48:], uint64(table))             // refcount table offset
	be.PutUint32(b[56:], uint32(entries*8/int(cs))) // its size in clusters
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := qcow2.Open(p, chained(p, &qcow2.OpenOptions{Writable: true}))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer img.Close()
	start := time.Now()
	for i := range 4 {
		if _, err := img.WriteAt(pattern(byte(i+1), 4096), int64(i)*65536); err != nil {
			t.Logf("write %d: %v", i, err)
			break
		}
	}
	if d := time.Since(start); d > 10*time.Second { // a full scan takes about a minute
		t.Fatalf("four allocations took %v", d)
	}
}
