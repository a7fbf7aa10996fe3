package vhdx_test

// The tests in this file build every image with qemu-img and qemu-io and
// hold the reader to what QEMU reads: the guest bytes of
// `qemu-img convert -O raw`, the virtual size of `qemu-img info`, and the
// block status of `qemu-img map` (which for VHDX says "all data": QEMU
// has no block status for the format, so the stronger checks here are
// that every run Extent calls a hole reads as zeros in QEMU's output and
// that every stored run's host offset holds exactly the guest bytes).

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/format/vhdx"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/imagetest"
	"github.com/qimg/qimg/internal/qemutest"
)

// qemuIO runs qemu-io on a VHDX image and fails on any reported error
// qemuIO runs qemu-io on a VHDX image and fails on any reported error.
func qemuIO(t testing.TB, file string, cmds ...string) {
	t.Helper()
	qemutest.IOFormat(t, "vhdx", file, cmds...)
}

type qemuInfo struct {
	VirtualSize int64 `json:"virtual-size"`
	ClusterSize int64 `json:"cluster-size"`
	Format      string
}

func info(t testing.TB, path string) qemuInfo {
	t.Helper()
	var i qemuInfo
	if err := json.Unmarshal([]byte(qemutest.Img(t, "info", "--output=json", path)), &i); err != nil {
		t.Fatal(err)
	}
	return i
}

type mapEntry struct {
	Start, Length int64
	Data, Zero    bool
	Present       bool
}

func qemuMap(t testing.TB, path string) []mapEntry {
	t.Helper()
	var m []mapEntry
	if err := json.Unmarshal([]byte(qemutest.Img(t, "map", "--output=json", "-f", "vhdx", path)), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// verified is what verify learned about an image.
type verified struct {
	img        *vhdx.Image
	want       []byte // QEMU's guest bytes
	data, hole int64  // bytes Extent calls data and zero
}

// verify opens path and checks it against QEMU; the image is closed when
// the test ends.
func verify(t *testing.T, path, subformat string) verified {
	t.Helper()
	img, err := vhdx.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	if got := img.Subformat(); got != subformat {
		t.Errorf("%s: Subformat() = %q, want %q", path, got, subformat)
	}
	qi := info(t, path)
	if qi.Format != "vhdx" || img.Size() != qi.VirtualSize {
		t.Fatalf("%s: Size() = %d, qemu-img info says %s of %d bytes", path, img.Size(), qi.Format, qi.VirtualSize)
	}
	if img.Params().BlockSize != qi.ClusterSize {
		t.Errorf("%s: block size %d, qemu-img info cluster-size %d", path, img.Params().BlockSize, qi.ClusterSize)
	}
	want := qemutest.ToRaw(t, path)
	got := make([]byte, img.Size())
	if n, err := img.ReadAt(got, 0); n != len(got) || (err != nil && err != io.EOF) {
		t.Fatalf("%s: ReadAt = %d, %v", path, n, err)
	}
	if sha256.Sum256(got) != sha256.Sum256(want) {
		i := 0
		for i < len(got) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: guest bytes differ from qemu-img convert -O raw (first at %d)", path, i)
	}
	v := verified{img: img, want: want}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var exts []image.Extent
	pos := int64(0)
	for e, err := range image.Extents(img, 0, img.Size()) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Start != pos || e.Length <= 0 || !e.Allocated || e.Depth != 0 {
			t.Fatalf("%s: bad extent %+v at %d", path, e, pos)
		}
		pos = e.End()
		exts = append(exts, e)
		seg := want[e.Start:e.End()]
		if !e.Data {
			if !e.Zero || e.HostOffset != -1 || !bytes.Equal(seg, make([]byte, len(seg))) {
				t.Fatalf("%s: extent %+v is a hole but QEMU reads data there", path, e)
			}
			v.hole += e.Length
			continue
		}
		// A data run's host offset holds the guest bytes.
		host := make([]byte, e.Length)
		if _, err := f.ReadAt(host, e.HostOffset); err != nil {
			t.Fatalf("%s: extent %+v: reading host: %v", path, e, err)
		}
		if !bytes.Equal(host, seg) {
			t.Fatalf("%s: extent %+v: host bytes differ from guest bytes", path, e)
		}
		v.data += e.Length
	}
	if pos != img.Size() {
		t.Fatalf("%s: extents end at %d, size %d", path, pos, img.Size())
	}
	// Where QEMU says "no data", we must not claim data.
	for _, m := range qemuMap(t, path) {
		for _, e := range exts {
			if e.Data && e.Start < m.Start+m.Length && m.Start < e.End() && !m.Data {
				t.Fatalf("%s: extent %+v is data, qemu-img map says %+v", path, e, m)
			}
		}
	}
	return v
}

func TestReadConverted(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		size      int64
		opts      string
		subformat string
		holes     bool // the raw input has whole zero blocks Extent must report
	}{
		{5<<20 + 1536, "subformat=dynamic", "dynamic", false}, // one 8 MiB block (qemu's default here)
		{5<<20 + 1536, "subformat=dynamic,block_size=1M", "dynamic", true},
		{5<<20 + 1536, "subformat=fixed,block_size=1M", "fixed", true},
		{3<<20 + 7, "subformat=fixed", "fixed", false},
		{7<<20 + 512, "subformat=dynamic,block_size=2M,log_size=2M", "dynamic", false},
		{6 << 20, "subformat=fixed,block_size=1M,block_state_zero=off", "fixed", false},
		{4<<20 - 512, "subformat=dynamic,block_size=1M", "dynamic", false},
	} {
		t.Run(fmt.Sprintf("%d-%s", tc.size, tc.opts), func(t *testing.T) {
			raw := imagetest.DiskRaw(t, dir, tc.size, 3)
			p := filepath.Join(t.TempDir(), "disk.vhdx")
			qemutest.Img(t, "convert", "-f", "raw", "-O", "vhdx", "-o", tc.opts, raw, p)
			v := verify(t, p, tc.subformat)
			if tc.holes && v.hole == 0 {
				t.Errorf("no zero runs reported for a disk with zero blocks")
			}
			if v.data == 0 {
				t.Errorf("no data runs reported")
			}
		})
	}
}

// TestReadQemuIO builds images block by block with qemu-io: data written
// into NOT_PRESENT and ZERO blocks, partial blocks, zero writes (which
// QEMU stores as data), discards (ignored by QEMU's VHDX driver).
func TestReadQemuIO(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts string
	}{
		{"not-present", "block_size=1M,block_state_zero=off"},
		{"zero-state", "block_size=1M"},
		{"fixed", "subformat=fixed,block_size=1M"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "io.vhdx")
			qemutest.Img(t, "create", "-f", "vhdx", "-o", tc.opts, p, "6M")
			qemuIO(t, p,
				"write -P 0x11 1M 4k",
				"write -P 0x22 2097152 512",
				"write -P 0x33 2560k 1M", // straddles blocks 2 and 3
				"write -z 4M 64k",
				"discard 4M 4k",
				"write -P 0x44 6291200 256", // the last bytes
			)
			v := verify(t, p, map[bool]string{true: "fixed", false: "dynamic"}[strings.Contains(tc.opts, "fixed")])
			if v.hole == 0 {
				t.Errorf("no zero runs reported")
			}
		})
	}
}

// TestReadSectorBitmapInterleave writes past the first chunk (2^23
// sectors, 4 GiB), where BAT entries are interleaved with a sector
// bitmap entry, and checks each block's data against qemu-io's reads of
// the same patterns. (A full conversion of 5 GiB is too slow for a unit
// test.)
func TestReadSectorBitmapInterleave(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.vhdx")
	qemutest.Img(t, "create", "-f", "vhdx", "-o", "block_size=1M", p, "5G")
	type w struct {
		off int64
		pat byte
	}
	writes := []w{{0, 0x01}, {4095 << 20, 0x02}, {4096 << 20, 0x03}, {4097<<20 + 512, 0x04}, {5<<30 - 4096, 0x05}}
	var cmds, checks []string
	for _, x := range writes {
		cmds = append(cmds, fmt.Sprintf("write -P %d %d 4096", x.pat, x.off))
		checks = append(checks, fmt.Sprintf("read -P %d %d 4096", x.pat, x.off))
	}
	qemuIO(t, p, cmds...)
	qemuIO(t, p, checks...) // QEMU reads back what it wrote
	img, err := vhdx.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if img.Size() != info(t, p).VirtualSize {
		t.Fatalf("Size() = %d", img.Size())
	}
	var data int64
	for e, err := range image.Extents(img, 0, img.Size()) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Data {
			data += e.Length
		}
	}
	if data != int64(len(writes))<<20 {
		t.Errorf("%d bytes of data runs, want %d (one block per write)", data, len(writes)<<20)
	}
	buf := make([]byte, 8192)
	for _, x := range writes {
		if _, err := img.ReadAt(buf[:4096], x.off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:4096], bytes.Repeat([]byte{x.pat}, 4096)) {
			t.Errorf("at %d: not pattern %#x", x.off, x.pat)
		}
	}
	// Around the writes, the blocks read as zeros.
	for _, off := range []int64{4095<<20 + 8192, 4097 << 20, 4098 << 20} {
		if _, err := img.ReadAt(buf[:512], off); err != nil || !bytes.Equal(buf[:512], make([]byte, 512)) {
			t.Errorf("at %d: not zeros (%v)", off, err)
		}
	}
}

// patchBAT rewrites payload BAT entries of a qemu-made image (BAT region
// found through the region table). Entries past the first chunk are not
// touched by these tests, so payload entry b is BAT entry b.
func patchBAT(t *testing.T, path string, fn func(b int, e uint64) uint64) {
	t.Helper()
	d, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bat := regionOffset(t, d, "2DC27766")
	for b := 0; b < 64; b++ {
		o := bat + 8*b
		binary.LittleEndian.PutUint64(d[o:], fn(b, binary.LittleEndian.Uint64(d[o:])))
	}
	if err := os.WriteFile(path, d, 0o644); err != nil {
		t.Fatal(err)
	}
}

// regionOffset finds a region in the first region table by the first
// group of its GUID.
func regionOffset(t testing.TB, d []byte, guid string) int {
	t.Helper()
	le := binary.LittleEndian
	for i := 0; i < int(le.Uint32(d[192<<10+8:])); i++ {
		e := d[192<<10+16+32*i:]
		if fmt.Sprintf("%08X", le.Uint32(e)) == guid {
			return int(le.Uint64(e[16:]))
		}
	}
	t.Fatalf("region %s not found", guid)
	return 0
}

// TestReadBlockStates gives blocks every zero-reading state, including
// UNDEFINED, UNMAPPED and draft 0.95's UNMAPPED, with stale offsets left
// in the entries, and checks that QEMU and qimg both read zeros there.
func TestReadBlockStates(t *testing.T) {
	p := filepath.Join(t.TempDir(), "states.vhdx")
	raw := imagetest.DiskRaw(t, t.TempDir(), 6<<20, 1)
	if err := os.WriteFile(raw, bytes.Repeat([]byte("abcdefgh"), 6<<17), 0o644); err != nil {
		t.Fatal(err)
	}
	qemutest.Img(t, "convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M", raw, p)
	states := []uint64{6, 1, 3, 5, 2, 0}
	patchBAT(t, p, func(b int, e uint64) uint64 {
		if b >= len(states) || states[b] == 6 {
			return e
		}
		return e&^7 | states[b] // the stale offset stays
	})
	v := verify(t, p, "dynamic")
	if v.data != 1<<20 || v.hole != 5<<20 {
		t.Errorf("data %d, holes %d; want one data block", v.data, v.hole)
	}
}

// TestReadBadStates: states 4 and 7 (PARTIALLY_PRESENT) make QEMU fail
// the read; the image opens, and reading or mapping that block fails
// with image.ErrCorrupt while other blocks still read.
func TestReadBadStates(t *testing.T) {
	for _, st := range []uint64{4, 7} {
		p := filepath.Join(t.TempDir(), "bad.vhdx")
		raw := imagetest.DiskRaw(t, t.TempDir(), 3<<20, 1)
		qemutest.Img(t, "convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M", raw, p)
		patchBAT(t, p, func(b int, e uint64) uint64 {
			if b == 1 {
				return e&^7 | st
			}
			return e
		})
		if _, code, _ := qemutest.RunCode(t, "qemu-img", "convert", "-O", "raw", p, filepath.Join(t.TempDir(), "x.raw")); code == 0 {
			t.Fatalf("state %d: qemu-img convert succeeded", st)
		}
		img, err := vhdx.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		if _, err := img.ReadAt(buf, 0); err != nil {
			t.Errorf("state %d: block 0: %v", st, err)
		}
		if _, err := img.ReadAt(buf, 1<<20+512); !errors.Is(err, image.ErrCorrupt) || !strings.Contains(err.Error(), p) {
			t.Errorf("state %d: ReadAt of block 1: %v", st, err)
		}
		if _, err := img.Extent(1<<20, 4096); !errors.Is(err, image.ErrCorrupt) {
			t.Errorf("state %d: Extent of block 1: %v", st, err)
		}
		if e, err := img.Extent(0, img.Size()); err != nil || e.End() != 1<<20 {
			t.Errorf("state %d: Extent(0) = %+v, %v: must stop before the bad block", st, e, err)
		}
		img.Close()
	}
}

// setCRC recomputes the CRC-32C of a structure of n bytes at off.
func setCRC(d []byte, off, n int) {
	binary.LittleEndian.PutUint32(d[off+4:], 0)
	binary.LittleEndian.PutUint32(d[off+4:], crc32.Checksum(d[off:off+n], crc32.MakeTable(crc32.Castagnoli)))
}

// currentHeader returns the offset of the header with the higher
// sequence number.
func currentHeader(d []byte) int {
	if binary.LittleEndian.Uint64(d[128<<10+8:]) > binary.LittleEndian.Uint64(d[64<<10+8:]) {
		return 128 << 10
	}
	return 64 << 10
}

// TestReadDirtyLog sets the log GUID in the current header of a qemu-made
// image (as a crash in the middle of a metadata update leaves it): Open
// must refuse rather than read a possibly stale BAT.
func TestReadDirtyLog(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dirty.vhdx")
	qemutest.Img(t, "convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M", imagetest.DiskRaw(t, t.TempDir(), 2<<20, 2), p)
	d, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	cur := currentHeader(d)
	other := 192<<10 - cur
	// A log GUID in the old header only does not matter.
	old := bytes.Clone(d)
	copy(old[other+48:], "0123456789abcdef")
	setCRC(old, other, 4096)
	if err := os.WriteFile(p, old, 0o644); err != nil {
		t.Fatal(err)
	}
	verify(t, p, "dynamic")

	copy(d[cur+48:], "0123456789abcdef")
	setCRC(d, cur, 4096)
	if err := os.WriteFile(p, d, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = vhdx.Open(p)
	if !errors.Is(err, image.ErrUnsupported) || !strings.Contains(err.Error(), "VHDX log is dirty: replay it by opening the image once in Hyper-V or qemu, qimg does not replay logs") ||
		!strings.Contains(err.Error(), p) {
		t.Fatalf("Open of a dirty-log image: %v", err)
	}
}

// TestReadOneBadHeader: a torn header update leaves one header with a bad
// checksum; the other must be used (QEMU does the same).
func TestReadOneBadHeader(t *testing.T) {
	for _, which := range []int{64 << 10, 128 << 10} {
		p := filepath.Join(t.TempDir(), "torn.vhdx")
		qemutest.Img(t, "convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M", imagetest.DiskRaw(t, t.TempDir(), 3<<20, 4), p)
		d, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		d[which+100] ^= 0xff // inside the CRC-covered 4 KiB
		if err := os.WriteFile(p, d, 0o644); err != nil {
			t.Fatal(err)
		}
		v := verify(t, p, "dynamic")
		if got, want := v.img.Params().CurrentHeader, map[int]int{64 << 10: 2, 128 << 10: 1}[which]; got != want {
			t.Errorf("current header %d, want %d", got, want)
		}
	}
}

// TestReadSecondRegionTable: with the first region table damaged, the
// second copy is used. (QEMU 7.2 reads only the first copy and fails,
// so the oracle is the undamaged image.)
func TestReadSecondRegionTable(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rt.vhdx")
	qemutest.Img(t, "convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M", imagetest.DiskRaw(t, t.TempDir(), 3<<20, 5), p)
	want := qemutest.ToRaw(t, p)
	d, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	d[192<<10+40] ^= 1
	if err := os.WriteFile(p, d, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := vhdx.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	got := make([]byte, img.Size())
	if _, err := img.ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read through the second region table: %v, equal %v", err, bytes.Equal(got, want))
	}
}

// TestRead4KSectors: qemu-img cannot make 4096-byte logical sectors, and
// QEMU 7.2 misreads them (it counts 512-byte sectors), so the oracle is
// the same image with 512-byte sectors: with fewer blocks than the chunk
// ratio, the sector size changes nothing else in the layout.
func TestRead4KSectors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "4k.vhdx")
	qemutest.Img(t, "convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M", imagetest.DiskRaw(t, t.TempDir(), 5<<20, 6), p)
	want := qemutest.ToRaw(t, p)
	d, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	meta := regionOffset(t, d, "8B7CA206")
	le := binary.LittleEndian
	patched := false
	for i := 0; i < int(le.Uint16(d[meta+10:])); i++ {
		e := d[meta+32+32*i:]
		if le.Uint32(e) == 0x8141BF1D || le.Uint32(e) == 0xCDA348C7 { // logical, physical sector size
			le.PutUint32(d[meta+int(le.Uint32(e[16:])):], 4096)
			patched = true
		}
	}
	if !patched {
		t.Fatal("no sector size items")
	}
	if err := os.WriteFile(p, d, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := vhdx.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if ps := img.Params(); ps.LogicalSectorSize != 4096 || ps.PhysicalSectorSize != 4096 {
		t.Fatalf("params %+v", ps)
	}
	got := make([]byte, img.Size())
	if _, err := img.ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("4K-sector read differs: %v", err)
	}
}

// TestReadConcurrent reads random ranges from many goroutines (run the
// tests with -race) and compares them with QEMU's bytes.
func TestReadConcurrent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.vhdx")
	qemutest.Img(t, "convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M", imagetest.DiskRaw(t, t.TempDir(), 6<<20+1024, 7), p)
	v := verify(t, p, "dynamic")
	imagetest.ConcurrentReads(t, v.img, v.want, 1, 40, 3<<20)
}

// TestReadAtEdges checks io.ReaderAt's contract at the end of the disk.
func TestReadAtEdges(t *testing.T) {
	p := filepath.Join(t.TempDir(), "e.vhdx")
	qemutest.Img(t, "convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M", imagetest.DiskRaw(t, t.TempDir(), 1<<20+512, 8), p)
	v := verify(t, p, "dynamic")
	buf := make([]byte, 1024)
	n, err := v.img.ReadAt(buf, v.img.Size()-512)
	if n != 512 || err != io.EOF || !bytes.Equal(buf[:512], v.want[len(v.want)-512:]) {
		t.Errorf("read across the end = %d, %v", n, err)
	}
	if n, err := v.img.ReadAt(buf, v.img.Size()); n != 0 || err != io.EOF {
		t.Errorf("read at the end = %d, %v", n, err)
	}
	if _, err := v.img.ReadAt(buf, -1); !errors.Is(err, image.ErrInvalidArgument) {
		t.Errorf("read at -1: %v", err)
	}
	if _, err := v.img.Extent(v.img.Size(), 1); !errors.Is(err, image.ErrInvalidArgument) {
		t.Errorf("Extent at the end: %v", err)
	}
}

// TestNewReader reads an image held in memory, and Detect tells VHDX
// from the other formats qemu-img writes.
func TestNewReader(t *testing.T) {
	dir := t.TempDir()
	raw := imagetest.DiskRaw(t, dir, 2<<20, 9)
	p := filepath.Join(dir, "m.vhdx")
	qemutest.Img(t, "convert", "-f", "raw", "-O", "vhdx", raw, p)
	d, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	img, err := vhdx.NewReader(bytes.NewReader(d), int64(len(d)), "memory")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, img.Size())
	if _, err := img.ReadAt(got, 0); err != nil || !bytes.Equal(got, qemutest.ToRaw(t, p)) {
		t.Fatalf("in-memory read differs: %v", err)
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 4096)
	copy(head, d)
	if !vhdx.Detect(head) {
		t.Error("Detect(vhdx) = false")
	}
	for _, f := range []string{"qcow2", "vdi", "vpc", "vmdk", "raw"} {
		q := filepath.Join(dir, "x."+f)
		qemutest.Img(t, "convert", "-f", "raw", "-O", f, raw, q)
		b, err := os.ReadFile(q)
		if err != nil {
			t.Fatal(err)
		}
		clear(head)
		copy(head, b)
		if vhdx.Detect(head) {
			t.Errorf("Detect(%s) = true", f)
		}
		if _, err := vhdx.Open(q); !errors.Is(err, image.ErrWrongFormat) || !strings.Contains(err.Error(), q) {
			t.Errorf("Open(%s): %v", f, err)
		}
	}
}
