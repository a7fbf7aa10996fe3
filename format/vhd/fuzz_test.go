package vhd

// FuzzNewReader feeds arbitrary bytes to NewReader: parsing must never
// panic, hang or allocate more than a small multiple of the input, every
// error must name the file and wrap an image.Err* class, and every run the
// extent walk calls not data must read as zeros.
//
// The seed corpus lives in testdata/fuzz/FuzzNewReader/. Files named
// qemu-* are small images made by qemu-img (regenerate them with
// `go test -run TestFuzzSeeds -genseeds ./convert/vhd/`); qemu-img writes
// only 2 MiB blocks, so the dynamic seeds with data are qemu-img's image
// re-laid with 4 KiB blocks (which qemu-img reads back identically).
// Every other file is a crasher found by fuzzing, kept as a regression
// test.

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

var genSeeds = flag.Bool("genseeds", false, "regenerate the qemu-made fuzz seed corpus in testdata/fuzz")

// fzAllocLimit bounds what one fuzz input may make the reader allocate,
// on top of a multiple of its size.
const fzAllocLimit = 64 << 20

func FuzzNewReader(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("conectix"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz.vhd"
		before := totalAlloc()
		img, err := NewReader(bytes.NewReader(data), int64(len(data)), name)
		if err != nil {
			checkErr(t, "NewReader", name, err)
			return
		}
		defer img.Close()
		fzRead(t, img, name)
		if a := totalAlloc() - before; a > fzAllocLimit+8*uint64(len(data)) {
			t.Fatalf("opening and reading a %d-byte image allocated %d bytes", len(data), a)
		}
	})
}

// fzRead reads the first 16 MiB of img in pieces that cross blocks and
// walks all its extents.
func fzRead(t *testing.T, img *Image, name string) {
	const limit = 16 << 20
	n := min(img.Size(), limit)
	got := make([]byte, n)
	for off := int64(0); off < n; {
		end := min(off+1<<20+511, n)
		if _, err := img.ReadAt(got[off:end], off); err != nil && err != io.EOF {
			checkErr(t, "ReadAt", name, err)
			return
		}
		off = end
	}
	pos := int64(0)
	for e, err := range image.Extents(img, 0, img.Size()) {
		if err != nil {
			checkErr(t, "Extent", name, err)
			return
		}
		if e.Start != pos || e.Length <= 0 {
			t.Fatalf("extent %+v does not start at %d", e, pos)
		}
		if !e.Data && e.Start < n && !isZero(got[e.Start:min(e.End(), n)]) {
			t.Fatalf("extent %+v is not data but reads non-zero", e)
		}
		pos = e.End()
	}
	if pos != img.Size() {
		t.Fatalf("extents end at %d, size %d", pos, img.Size())
	}
}

// fzSeed is a seed image: its name and its bytes.
type fzSeed struct {
	name string
	data []byte
}

// reblock re-lays a qemu-made dynamic disk (one BAT sector, data in the
// first blocks) with 4 KiB blocks, holding guest[:nblocks*4096], so that
// a seed with data is a few KiB rather than 2 MiB. mixed clears some
// sector bits of the last block's bitmap.
func reblock(qemu, guest []byte, nblocks int, mixed bool) []byte {
	const bs = 4096
	be := binary.BigEndian
	size := int64(be.Uint64(qemu[48:])) // qemu-img: current_size = CHS size
	entries := (size + bs - 1) / bs
	out := bytes.Clone(qemu[:2048]) // footer, header, one BAT sector
	h := out[512:1536]
	be.PutUint32(h[28:], uint32(entries))
	be.PutUint32(h[32:], bs)
	resum(h, 36)
	for i := 1536; i < 2048; i++ {
		out[i] = 0xff
	}
	for i := range nblocks {
		// out grows below: index it afresh each time.
		be.PutUint32(out[1536+4*i:], uint32(len(out)/512))
		bm := bytes.Repeat([]byte{0xff}, 512)
		if mixed && i == nblocks-1 {
			bm[0] = 0x5a // sectors 0, 2, 5, 7 absent
		}
		out = append(out, bm...)
		out = append(out, guest[i*bs:(i+1)*bs]...)
	}
	return append(out, qemu[:512]...)
}

// fzMakeSeeds makes the qemu-* seeds in dir and checks the re-laid ones
// against qemu-img.
func fzMakeSeeds(t *testing.T, dir string) []fzSeed {
	var seeds []fzSeed
	add := func(name, p string) { seeds = append(seeds, fzSeed{name, readFile(t, p)}) }
	p := filepath.Join(dir, "empty.vhd")
	qemutest.Img(t, "create", "-f", "vpc", p, "1M")
	add("qemu-dynamic-empty", p)
	p = filepath.Join(dir, "empty-force.vhd")
	qemutest.Img(t, "create", "-f", "vpc", "-o", "force_size=on", p, "3000k")
	add("qemu-dynamic-empty-force", p)

	src := makeDisk(t, dir, "seed.raw", 8192, 21, []diskRegion{{0, 1024, 'd'}, {4096, 100, 'd'}})
	p = filepath.Join(dir, "fixed.vhd")
	qemutest.Img(t, "convert", "-O", "vpc", "-o", "subformat=fixed,force_size=on", src, p)
	add("qemu-fixed-force", p)

	src = makeDisk(t, dir, "seed64k.raw", 64<<10, 22, []diskRegion{{0, 6000, 'd'}})
	p = filepath.Join(dir, "dyn.vhd")
	qemutest.Img(t, "convert", "-O", "vpc", src, p)
	guest := readFile(t, src)
	for _, mixed := range []bool{false, true} {
		b := reblock(readFile(t, p), guest, 2, mixed)
		name := "qemu-dynamic-4k"
		if mixed {
			name += "-bitmap"
		}
		q := writeFile(t, filepath.Join(dir, name+".vhd"), b)
		// qemu-img reads the re-laid image as the guest (it ignores
		// the bitmap); qimg too, except for the absent sectors.
		want := make([]byte, len(qemuRaw(t, q)))
		copy(want, guest)
		if !bytes.Equal(qemuRaw(t, q), want) {
			t.Fatalf("%s: qemu-img reads the re-laid image differently", name)
		}
		if mixed {
			for _, s := range []int{0, 2, 5, 7} {
				clear(want[4096+s*512 : 4096+(s+1)*512])
			}
		}
		img, err := NewReader(bytes.NewReader(b), int64(len(b)), name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(readAll(t, img), want) {
			t.Fatalf("%s: read differs", name)
		}
		seeds = append(seeds, fzSeed{name, b})
	}
	return seeds
}

// TestFuzzSeeds checks the committed corpus: every qemu-* seed is a valid
// image that reads without error. With -genseeds it first rewrites them.
func TestFuzzSeeds(t *testing.T) {
	corpus := filepath.Join("testdata", "fuzz", "FuzzNewReader")
	seeds := fzMakeSeeds(t, t.TempDir())
	if *genSeeds {
		if err := os.MkdirAll(corpus, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s.data)
			writeFile(t, filepath.Join(corpus, s.name), []byte(body))
		}
	}
	for _, s := range seeds {
		b := readFile(t, filepath.Join(corpus, s.name))
		var data []byte
		if _, err := fmt.Sscanf(string(bytes.TrimPrefix(b, []byte("go test fuzz v1\n"))), "[]byte(%q)", &data); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		img, err := NewReader(bytes.NewReader(data), int64(len(data)), s.name)
		if err != nil {
			t.Fatalf("committed seed %s: %v", s.name, err)
		}
		fzRead(t, img, s.name)
		if len(data) > 64<<10 {
			t.Errorf("seed %s is %d bytes: keep the corpus small", s.name, len(data))
		}
	}
}
