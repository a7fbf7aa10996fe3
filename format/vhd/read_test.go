package vhd

// Read tests: every image is made by qemu-img at test time, and what qimg
// reads must equal what qemu-img reads, byte for byte, with the same
// virtual size and the same map.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/imagetest"
	"github.com/qimg/qimg/internal/qemutest"
)

// vhdVariants are the qemu-img -o settings the read tests cover.
var vhdVariants = []struct{ subformat, force string }{
	{"dynamic", "off"}, {"dynamic", "on"}, {"fixed", "off"}, {"fixed", "on"},
}

func TestReadQemuImages(t *testing.T) {
	dir := t.TempDir()
	for _, shape := range diskShapes {
		src := makeDisk(t, dir, shape.name+".raw", shape.size, 1, shape.regions)
		for _, v := range vhdVariants {
			name := fmt.Sprintf("%s-%s-force-%s", shape.name, v.subformat, v.force)
			t.Run(name, func(t *testing.T) {
				p := filepath.Join(dir, name+".vhd")
				qemutest.Img(t, "convert", "-f", "raw", "-O", "vpc", "-o",
					"subformat="+v.subformat+",force_size="+v.force, src, p)
				want := qemuRaw(t, p)
				img, err := Open(p)
				if err != nil {
					t.Fatal(err)
				}
				defer img.Close()
				if img.Subformat() != v.subformat {
					t.Errorf("Subformat() = %q, want %q", img.Subformat(), v.subformat)
				}
				if got, q := img.Size(), qemuVirtualSize(t, p, "vpc"); got != q {
					t.Fatalf("Size() = %d, qemu-img info says %d", got, q)
				}
				if got := readAll(t, img); sum(got) != sum(want) {
					t.Fatalf("read differs from qemu-img convert -O raw (%d vs %d bytes)", len(got), len(want))
				}
				if got, q := ourMap(t, img), qemuMap(t, p); !reflect.DeepEqual(got, q) {
					t.Fatalf("map differs from qemu-img map:\n got %+v\nwant %+v", got, q)
				}
				// The same through NewReader, which knows nothing of
				// file holes: a fixed disk is then all data.
				b := readFile(t, p)
				r, err := NewReader(bytes.NewReader(b), int64(len(b)), p)
				if err != nil {
					t.Fatal(err)
				}
				if r.Size() != img.Size() || sum(readAll(t, r)) != sum(want) {
					t.Fatal("NewReader reads differently from Open")
				}
				ourMap(t, r)
				if v.subformat == "dynamic" && r.BlockSize() != 2<<20 {
					t.Errorf("BlockSize() = %d, want 2 MiB", r.BlockSize())
				}
			})
		}
	}
}

// TestDetect: qemu-img probes only offset 0, so a dynamic VHD is detected
// and a fixed one is raw, to qemu-img and to Detect.
func TestDetect(t *testing.T) {
	dir := t.TempDir()
	src := makeDisk(t, dir, "d.raw", 1<<20, 2, []diskRegion{{0, 4096, 'd'}})
	for _, sf := range []string{"dynamic", "fixed"} {
		p := filepath.Join(dir, sf+".vhd")
		qemutest.Img(t, "convert", "-O", "vpc", "-o", "subformat="+sf, src, p)
		var info struct {
			Format string `json:"format"`
		}
		if err := json.Unmarshal([]byte(qemutest.Img(t, "info", "--output=json", p)), &info); err != nil {
			t.Fatal(err)
		}
		b := readFile(t, p)
		got := Detect(b[:4096])
		if want := info.Format == "vpc"; got != want {
			t.Errorf("%s: Detect = %v, qemu-img probes %q", sf, got, info.Format)
		}
		if got != (sf == "dynamic") {
			t.Errorf("%s: Detect = %v", sf, got)
		}
	}
	if Detect(nil) || Detect([]byte("conecti")) {
		t.Error("Detect accepts a short head")
	}
}

// TestCreatorSizes: which size QEMU believes, current_size or the CHS
// geometry, depends on the creator application. Each creator is written
// into a qemu-made image whose current_size differs from its geometry,
// and qimg must report qemu-img info's virtual size.
func TestCreatorSizes(t *testing.T) {
	dir := t.TempDir()
	src := makeDisk(t, dir, "d.raw", 3<<20+512, 3, []diskRegion{{0, 8192, 'd'}, {3 << 20, 512, 'd'}})
	creators := []string{"vpc ", "win ", "d2v ", "qemu", "qem2", "tap\x00", "CTXS", "xxxx", "\x00\x00\x00\x00"}
	for _, sf := range []string{"dynamic", "fixed"} {
		base := filepath.Join(dir, sf+".vhd")
		qemutest.Img(t, "convert", "-O", "vpc", "-o", "subformat="+sf, src, base)
		orig := readFile(t, base)
		oracle := map[string][32]byte{}
		geo := int64(binary.BigEndian.Uint16(orig[len(orig)-512+56:])) * int64(orig[len(orig)-512+58]) * int64(orig[len(orig)-512+59]) * 512
		// Smaller and larger than the geometry, and not whole sectors.
		for _, cur := range []int64{geo - 3*512 - 100, geo + 512} {
			for _, c := range creators {
				b := patchFooters(orig, func(f []byte) {
					copy(f[28:32], c)
					binary.BigEndian.PutUint64(f[48:], uint64(cur))
				})
				p := writeFile(t, filepath.Join(dir, "creator.vhd"), b)
				img, err := Open(p)
				if err != nil {
					t.Fatalf("%s %q: %v", sf, c, err)
				}
				if got, want := img.Size(), qemuVirtualSize(t, p, "vpc"); got != want {
					t.Errorf("%s creator %q current_size %d: Size() = %d, qemu-img says %d", sf, c, cur, got, want)
				}
				// What qemu-img reads, including what a fixed disk shows
				// past its data (the footer, which names the creator).
				// Otherwise it depends only on the size, so qemu-img
				// reads each size once.
				key := fmt.Sprint(img.Size())
				if img.Size() > geo {
					key += c
				}
				if _, ok := oracle[key]; !ok {
					oracle[key] = sum(qemuRaw(t, p))
				}
				if got := readAll(t, img); sum(got) != oracle[key] {
					t.Errorf("%s creator %q current_size %d: read differs from qemu-img", sf, c, cur)
				}
				img.Close()
			}
		}
	}
}

// TestConcurrentReads reads one image from many goroutines at random
// offsets and lengths (run it with -race).
func TestConcurrentReads(t *testing.T) {
	dir := t.TempDir()
	shape := diskShapes[0]
	src := makeDisk(t, dir, "c.raw", shape.size, 4, shape.regions)
	for _, sf := range []string{"dynamic", "fixed", "bitmap"} {
		p := filepath.Join(dir, sf+".vhd")
		if sf == "bitmap" {
			sf = "dynamic"
		}
		qemutest.Img(t, "convert", "-O", "vpc", "-o", "subformat="+sf, src, p)
		want := qemuRaw(t, p)
		if strings.HasSuffix(p, "bitmap.vhd") {
			// Clear bits in block 0's bitmap: the per-sector path and
			// the bitmap cache are read concurrently too.
			b := readFile(t, p)
			bm := int64(binary.BigEndian.Uint32(b[1536:])) * 512
			for i := int64(0); i < 512; i += 3 {
				b[bm+i] = byte(i) // bits for sectors 8i..8i+7
				for s := range int64(8) {
					if byte(i)&(0x80>>s) == 0 {
						clear(want[(8*i+s)*512 : (8*i+s+1)*512])
					}
				}
			}
			writeFile(t, p, b)
		}
		img, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(p), func(t *testing.T) { imagetest.ConcurrentReads(t, img, want, 9, 60, 300<<10) })
		img.Close()
	}
}

// TestSectorBitmap: a sector whose bitmap bit is clear is not present and
// reads as zeros, as the VHD specification says and Hyper-V does. QEMU
// 7.2 ignores the bitmaps and reads whatever the block holds there; the
// test records that difference, so that it notices if QEMU changes.
func TestSectorBitmap(t *testing.T) {
	dir := t.TempDir()
	src := makeDisk(t, dir, "b.raw", 4<<20, 5, []diskRegion{{0, 4 << 20, 'd'}})
	p := filepath.Join(dir, "b.vhd")
	qemutest.Img(t, "convert", "-O", "vpc", src, p)
	b := readFile(t, p)
	bat := int64(binary.BigEndian.Uint64(b[512+16:]))
	bm := int64(binary.BigEndian.Uint32(b[bat:])) * 512 // block 0's bitmap
	// Clear sectors 0-7 (byte 0), sector 9 (bit 6 of byte 1) and the
	// last 16 sectors of block 0.
	b[bm] = 0
	b[bm+1] = 0xff &^ 0x40
	b[bm+510], b[bm+511] = 0, 0
	p = writeFile(t, filepath.Join(dir, "holes.vhd"), b)
	qemu := qemuRaw(t, p)
	want := make([]byte, len(qemu)) // the source, padded to the CHS size
	copy(want, readFile(t, src))
	if !bytes.Equal(qemu, want) {
		t.Fatal("qemu-img no longer ignores the sector bitmap: revisit this test and the package doc")
	}
	clear(want[0 : 8*512])
	clear(want[9*512 : 10*512])
	clear(want[(4096-16)*512 : 4096*512])
	img, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if got := readAll(t, img); !bytes.Equal(got, want) {
		t.Fatal("sectors with clear bitmap bits do not read as zeros")
	}
	// Unaligned reads across the run boundaries.
	for _, r := range [][2]int64{{100, 4000}, {8*512 - 7, 1030}, {9*512 + 1, 10}, {(4096-16)*512 - 3, 4096}} {
		buf := make([]byte, r[1])
		if _, err := img.ReadAt(buf, r[0]); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, want[r[0]:r[0]+r[1]]) {
			t.Fatalf("read of %d bytes at %d differs", r[1], r[0])
		}
	}
	m := ourMap(t, img)
	wantMap := []status{
		{0, 8 * 512, true, true, false},
		{8 * 512, 512, true, false, true},
		{9 * 512, 512, true, true, false},
		{10 * 512, (4096 - 16 - 10) * 512, true, false, true},
		{(4096 - 16) * 512, 16 * 512, true, true, false},
		{2 << 20, 2 << 20, true, false, true},
		{4 << 20, int64(len(want)) - 4<<20, true, true, false}, // the CHS tail: unallocated
	}
	if !reflect.DeepEqual(m, wantMap) {
		t.Fatalf("map:\n got %+v\nwant %+v", m, wantMap)
	}
}

// TestDifferencing: qemu-img cannot make a differencing VHD, so one is
// made from a qemu-made dynamic disk by setting its type and parent name.
// QEMU 7.2 opens it as a dynamic disk without its parent (silently
// reading wrong data); qimg refuses it and names the parent.
func TestDifferencing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "child.vhd")
	qemutest.Img(t, "create", "-f", "vpc", p, "4M")
	b := patchFooters(readFile(t, p), func(f []byte) { binary.BigEndian.PutUint32(f[60:], typeDifferencing) })
	b = patchHeader(b, func(h []byte) {
		for i, u := range utf16.Encode([]rune("C:\\VMs\\parent.vhd")) {
			binary.BigEndian.PutUint16(h[64+2*i:], u)
		}
	})
	writeFile(t, p, b)
	qemutest.Img(t, "info", "-f", "vpc", p) // QEMU accepts it
	_, err := Open(p)
	if !errors.Is(err, image.ErrUnsupported) || !strings.Contains(err.Error(), `C:\\VMs\\parent.vhd`) {
		t.Fatalf("Open = %v, want ErrUnsupported naming the parent", err)
	}
	checkErr(t, "differencing", p, err)
}
