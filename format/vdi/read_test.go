package vdi_test

// The tests in this file build every image with qemu-img and qemu-io and
// hold the reader to what QEMU reads: the guest bytes of
// `qemu-img convert -O raw`, the virtual size of `qemu-img info`, and the
// data/hole status and host offsets of `qemu-img map`.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/format/vdi"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/imagetest"
	"github.com/qimg/qimg/internal/qemutest"
)

var le = binary.LittleEndian

// qemuIO runs qemu-io on a VDI image and fails on any reported error.
func qemuIO(t testing.TB, file string, cmds ...string) {
	t.Helper()
	qemutest.IOFormat(t, "vdi", file, cmds...)
}

type qemuInfo struct {
	VirtualSize int64 `json:"virtual-size"`
	ClusterSize int64 `json:"cluster-size"`
	Format      string
}

func info(t testing.TB, path string) qemuInfo {
	t.Helper()
	var i qemuInfo
	if err := json.Unmarshal([]byte(qemutest.Img(t, "info", "--output=json", "-f", "vdi", path)), &i); err != nil {
		t.Fatal(err)
	}
	return i
}

type mapEntry struct {
	Start, Length       int64
	Data, Zero, Present bool
	Offset              *int64
}

func qemuMap(t testing.TB, path string) []mapEntry {
	t.Helper()
	var m []mapEntry
	if err := json.Unmarshal([]byte(qemutest.Img(t, "map", "--output=json", "-f", "vdi", path)), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

type verified struct {
	img        *vdi.Image
	want       []byte
	data, hole int64
}

// verify opens path and checks it against QEMU: guest bytes, size, and
// for every byte the same data/hole status and host offset as qemu-img
// map. The image is closed when the test ends.
func verify(t *testing.T, path, subformat string) verified {
	t.Helper()
	img, err := vdi.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	if got := img.Subformat(); got != subformat {
		t.Errorf("%s: Subformat() = %q, want %q", path, got, subformat)
	}
	qi := info(t, path)
	if img.Size() != qi.VirtualSize || img.Params().BlockSize != qi.ClusterSize {
		t.Fatalf("%s: size %d, block size %d; qemu-img info says %d, %d", path, img.Size(), img.Params().BlockSize, qi.VirtualSize, qi.ClusterSize)
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
	var exts []image.Extent
	pos := int64(0)
	for e, err := range image.Extents(img, 0, img.Size()) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Start != pos || e.Length <= 0 || !e.Allocated || e.Data == e.Zero {
			t.Fatalf("%s: bad extent %+v at %d", path, e, pos)
		}
		if !e.Data && !bytes.Equal(want[e.Start:e.End()], make([]byte, e.Length)) {
			t.Fatalf("%s: extent %+v is a hole but QEMU reads data there", path, e)
		}
		if e.Data {
			v.data += e.Length
		} else {
			v.hole += e.Length
		}
		exts = append(exts, e)
		pos = e.End()
	}
	if pos != img.Size() {
		t.Fatalf("%s: extents end at %d, size %d", path, pos, img.Size())
	}
	// Same status as qemu-img map at every boundary of either map.
	qm := qemuMap(t, path)
	at := func(off int64) (image.Extent, mapEntry) {
		var e image.Extent
		var m mapEntry
		for _, x := range exts {
			if x.Start <= off && off < x.End() {
				e = x
			}
		}
		for _, x := range qm {
			if x.Start <= off && off < x.Start+x.Length {
				m = x
			}
		}
		return e, m
	}
	var points []int64
	for _, x := range exts {
		points = append(points, x.Start, x.End()-1)
	}
	for _, x := range qm {
		points = append(points, x.Start, x.Start+x.Length-1)
	}
	for _, off := range points {
		e, m := at(off)
		if e.Data != m.Data || !m.Present {
			t.Fatalf("%s: at %d extent %+v, qemu-img map %+v", path, off, e, m)
		}
		if m.Data && (m.Offset == nil || *m.Offset != e.HostOffset+(off-e.Start)-(off-m.Start)) {
			t.Fatalf("%s: at %d host offset %d, qemu-img map %+v", path, off, e.HostOffset+(off-e.Start), m)
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
	}{
		{5<<20 + 1536, "static=off", "dynamic"},
		{5<<20 + 1536, "static=on", "static"},
		{3<<20 + 7, "static=off", "dynamic"},
		{3<<20 + 7, "static=on", "static"},
		{6 << 20, "static=off", "dynamic"},
		{512, "static=off", "dynamic"},
	} {
		t.Run(fmt.Sprintf("%d-%s", tc.size, tc.opts), func(t *testing.T) {
			raw := imagetest.DiskRaw(t, dir, tc.size, 3)
			p := filepath.Join(t.TempDir(), "disk.vdi")
			qemutest.Img(t, "convert", "-f", "raw", "-O", "vdi", "-o", tc.opts, raw, p)
			v := verify(t, p, tc.subformat)
			if tc.subformat == "dynamic" && tc.size >= 5<<20 && v.hole < 2<<20 {
				t.Errorf("only %d bytes of zero runs for a disk with two zero blocks", v.hole)
			}
			if tc.subformat == "static" && v.hole != 0 {
				t.Errorf("static image with %d bytes of zero runs", v.hole)
			}
		})
	}
}

// TestReadQemuIO allocates blocks out of order with qemu-io, so the
// block map is not the identity: partial blocks, straddling writes, zero
// writes (stored as data by QEMU's VDI driver) and discards (ignored).
func TestReadQemuIO(t *testing.T) {
	for _, static := range []string{"off", "on"} {
		p := filepath.Join(t.TempDir(), "io.vdi")
		qemutest.Img(t, "create", "-f", "vdi", "-o", "static="+static, p, "6M")
		qemuIO(t, p,
			"write -P 0x11 5M 4k",
			"write -P 0x22 1M 512",
			"write -P 0x33 2560k 1M",
			"write -z 4M 64k",
			"discard 4M 4k",
			"write -P 0x44 6291200 256",
		)
		verify(t, p, map[string]string{"off": "dynamic", "on": "static"}[static])
	}
}

// patch rewrites an image file through fn.
func patch(t *testing.T, path string, fn func(d []byte) []byte) {
	t.Helper()
	d, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fn(d), 0o644); err != nil {
		t.Fatal(err)
	}
}

// bmapAt returns the bytes of block map entry b onwards.
func bmapAt(d []byte, b int) []byte { return d[int(le.Uint32(d[0x154:]))+4*b:] }

// TestReadDiscarded marks allocated blocks discarded (0xfffffffe), which
// VirtualBox writes on compaction and qemu-img never does: both read them
// as zeros, and qemu-img map calls them zero.
func TestReadDiscarded(t *testing.T) {
	p := filepath.Join(t.TempDir(), "disc.vdi")
	raw := filepath.Join(t.TempDir(), "in.raw")
	if err := os.WriteFile(raw, bytes.Repeat([]byte("discard?"), 4<<17), 0o644); err != nil {
		t.Fatal(err)
	}
	qemutest.Img(t, "convert", "-f", "raw", "-O", "vdi", raw, p)
	patch(t, p, func(d []byte) []byte {
		le.PutUint32(bmapAt(d, 1), 0xfffffffe)
		le.PutUint32(bmapAt(d, 2), 0xffffffff)
		return d
	})
	v := verify(t, p, "dynamic")
	if v.hole != 2<<20 || v.data != 2<<20 {
		t.Errorf("data %d, holes %d", v.data, v.hole)
	}
}

// TestReadTruncatedLastBlock cuts the file in the middle of its last
// block: the missing bytes read as zeros in QEMU and here.
func TestReadTruncatedLastBlock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "trunc.vdi")
	qemutest.Img(t, "convert", "-f", "raw", "-O", "vdi", imagetest.DiskRaw(t, t.TempDir(), 3<<20, 4), p)
	if err := os.Truncate(p, 1024+2<<20+12345); err != nil {
		t.Fatal(err)
	}
	verify(t, p, "dynamic")
}

// TestReadOddDiskSize: VBoxManage can write disk sizes that are not whole
// sectors; QEMU rounds them up, and so does Size.
func TestReadOddDiskSize(t *testing.T) {
	p := filepath.Join(t.TempDir(), "odd.vdi")
	qemutest.Img(t, "convert", "-f", "raw", "-O", "vdi", imagetest.DiskRaw(t, t.TempDir(), 2<<20, 5), p)
	patch(t, p, func(d []byte) []byte {
		le.PutUint64(d[0x170:], 2<<20-700)
		return d
	})
	v := verify(t, p, "dynamic")
	if v.img.Size() != 2<<20-512 || v.img.Params().DiskSize != 2<<20-700 {
		t.Errorf("Size() = %d, DiskSize %d", v.img.Size(), v.img.Params().DiskSize)
	}
}

func TestReadConcurrent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.vdi")
	qemutest.Img(t, "convert", "-f", "raw", "-O", "vdi", imagetest.DiskRaw(t, t.TempDir(), 6<<20+1024, 7), p)
	v := verify(t, p, "dynamic")
	imagetest.ConcurrentReads(t, v.img, v.want, 2, 40, 3<<20)
}

func TestReadAtEdges(t *testing.T) {
	p := filepath.Join(t.TempDir(), "e.vdi")
	qemutest.Img(t, "convert", "-f", "raw", "-O", "vdi", imagetest.DiskRaw(t, t.TempDir(), 1<<20+512, 8), p)
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
	if _, err := v.img.Extent(-1, 10); !errors.Is(err, image.ErrInvalidArgument) {
		t.Errorf("Extent at -1: %v", err)
	}
	if e, err := v.img.Extent(10, 100); err != nil || e.Start != 10 || e.Length != 100 {
		t.Errorf("Extent(10, 100) = %+v, %v", e, err)
	}
}

// TestNewReader reads an image held in memory; Detect tells VDI from the
// other formats qemu-img writes; Params shows the header.
func TestNewReader(t *testing.T) {
	dir := t.TempDir()
	raw := imagetest.DiskRaw(t, dir, 2<<20, 9)
	p := filepath.Join(dir, "m.vdi")
	qemutest.Img(t, "convert", "-f", "raw", "-O", "vdi", raw, p)
	d, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	img, err := vdi.NewReader(bytes.NewReader(d), int64(len(d)), "memory")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, img.Size())
	if _, err := img.ReadAt(got, 0); err != nil || !bytes.Equal(got, qemutest.ToRaw(t, p)) {
		t.Fatalf("in-memory read differs: %v", err)
	}
	ps := img.Params()
	if ps.Text != "<<< QEMU VM Virtual Disk Image >>>" || ps.BlocksInImage != 2 || ps.ImageType != 1 || len(ps.UUID) != 36 {
		t.Errorf("params %+v", ps)
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 4096)
	copy(head, d)
	if !vdi.Detect(head) {
		t.Error("Detect(vdi) = false")
	}
	for _, f := range []string{"qcow2", "vhdx", "vpc", "vmdk", "raw"} {
		q := filepath.Join(dir, "x."+f)
		qemutest.Img(t, "convert", "-f", "raw", "-O", f, raw, q)
		b, err := os.ReadFile(q)
		if err != nil {
			t.Fatal(err)
		}
		clear(head)
		copy(head, b)
		if vdi.Detect(head) {
			t.Errorf("Detect(%s) = true", f)
		}
		if _, err := vdi.Open(q); !errors.Is(err, image.ErrWrongFormat) || !strings.Contains(err.Error(), q) {
			t.Errorf("Open(%s): %v", f, err)
		}
	}
}
