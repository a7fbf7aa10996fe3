package vmdk

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

// diskLike writes a raw file of size bytes that looks like a disk: text,
// random (incompressible) data, runs of written zeros and holes, and data
// crossing grain boundaries. It returns the path and the content.
func diskLike(t testing.TB, dir string, size int64, seed uint64) (string, []byte) {
	t.Helper()
	b := make([]byte, size)
	rng := rand.New(rand.NewPCG(seed, 42))
	text := []byte("qimg vmdk test: the quick brown fox jumps over the lazy dog 0123456789\n")
	for off := int64(0); off < size; {
		n := min(size-off, int64(4096+rng.IntN(200<<10)))
		switch rng.IntN(5) {
		case 0: // text
			for i := off; i < off+n; i++ {
				b[i] = text[(i+int64(seed))%int64(len(text))]
			}
		case 1: // random
			for i := off; i < off+n; i++ {
				b[i] = byte(rng.Uint32())
			}
		case 2: // a small record in zeros
			copy(b[off+n/2:off+n], fmt.Sprintf("record at %d", off))
		default: // zeros (holes in the file)
		}
		off += n
	}
	p := filepath.Join(dir, "disk.raw")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Write only the non-zero 4 KiB blocks so the zeros are holes.
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off := int64(0); off < size; off += 4096 {
		blk := b[off:min(off+4096, size)]
		if !bytes.Equal(blk, make([]byte, len(blk))) {
			if _, err := f.WriteAt(blk, off); err != nil {
				t.Fatal(err)
			}
		}
	}
	return p, b
}

// padSector pads b with zeros to whole sectors, as QEMU sees a raw file.
func padSector(b []byte) []byte {
	return append(b, make([]byte, (512-len(b)%512)%512)...)
}

// readAll reads the whole image in 1 MiB units.
func readAll(t testing.TB, img image.Image) []byte {
	t.Helper()
	out := make([]byte, img.Size())
	for off := int64(0); off < img.Size(); off += 1 << 20 {
		end := min(off+1<<20, img.Size())
		n, err := img.ReadAt(out[off:end], off)
		if err != nil && !(errors.Is(err, io.EOF) && end == img.Size()) {
			t.Fatalf("ReadAt(%d): %v", off, err)
		}
		if n != int(end-off) {
			t.Fatalf("ReadAt(%d) = %d bytes", off, n)
		}
	}
	return out
}

type mapEntry struct {
	Start  int64 `json:"start"`
	Length int64 `json:"length"`
	Data   bool  `json:"data"`
	Zero   bool  `json:"zero"`
}

// runs merges adjacent entries with the same data flag.
func runs(in []mapEntry) []mapEntry {
	var out []mapEntry
	for _, e := range in {
		e.Zero = false
		if n := len(out); n > 0 && out[n-1].Data == e.Data && out[n-1].Start+out[n-1].Length == e.Start {
			out[n-1].Length += e.Length
			continue
		}
		out = append(out, e)
	}
	return out
}

// checkMap compares our Extent walk with qemu-img map on data vs hole.
func checkMap(t *testing.T, img *Image, path string) {
	t.Helper()
	var want []mapEntry
	if err := json.Unmarshal([]byte(qemutest.Img(t, "map", "--output=json", "-f", "vmdk", path)), &want); err != nil {
		t.Fatal(err)
	}
	var got []mapEntry
	for e, err := range image.Extents(img, 0, img.Size()) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, mapEntry{Start: e.Start, Length: e.Length, Data: e.Data})
	}
	w, g := runs(want), runs(got)
	if fmt.Sprint(w) != fmt.Sprint(g) {
		t.Fatalf("map differs from qemu-img:\n got %v\nwant %v", g, w)
	}
}

var subformats = []struct {
	name string
	opts string
}{
	{"monolithicSparse", "subformat=monolithicSparse"},
	{"streamOptimized", "subformat=streamOptimized"},
	{"monolithicFlat", "subformat=monolithicFlat"},
	{"twoGbMaxExtentSparse", "subformat=twoGbMaxExtentSparse"},
	{"twoGbMaxExtentFlat", "subformat=twoGbMaxExtentFlat"},
	{"compat6-lsilogic", "subformat=monolithicSparse,compat6=on,adapter_type=lsilogic"},
	{"zeroed-grain", "subformat=monolithicSparse,zeroed_grain=on,adapter_type=buslogic"},
	{"stream-legacyESX", "subformat=streamOptimized,adapter_type=legacyESX,hwversion=7"},
}

// TestReadQemuImages converts disk-like raw files of several sizes (odd
// ones too) with qemu-img into every subformat and reads them back.
func TestReadQemuImages(t *testing.T) {
	for _, size := range []int64{3<<20 + 1000, 5 << 20, 700} {
		dir := t.TempDir()
		src, content := diskLike(t, dir, size, uint64(size))
		want := padSector(content)
		for _, sf := range subformats {
			t.Run(fmt.Sprintf("%s-%d", sf.name, size), func(t *testing.T) {
				p := filepath.Join(dir, sf.name+".vmdk")
				qemutest.Img(t, "convert", "-f", "raw", "-O", "vmdk", "-o", sf.opts, src, p)
				img, err := Open(p, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer img.Close()
				if img.Size() != int64(len(want)) {
					t.Fatalf("size %d, want %d", img.Size(), len(want))
				}
				wantSub := strings.TrimPrefix(strings.Split(sf.opts, ",")[0], "subformat=")
				if img.Subformat() != wantSub {
					t.Errorf("subformat %q, want %q", img.Subformat(), wantSub)
				}
				got := readAll(t, img)
				if !bytes.Equal(got, want) {
					t.Fatalf("read differs from the source")
				}
				if sha256.Sum256(got) != sha256.Sum256(qemutest.ToRaw(t, p)) {
					t.Fatalf("read differs from qemu-img convert -O raw")
				}
				checkMap(t, img, p)
			})
		}
	}
}

// TestSmallReads reads a compressed image in 4 KiB and odd-sized pieces,
// which go through the grain cache.
func TestSmallReads(t *testing.T) {
	dir := t.TempDir()
	src, content := diskLike(t, dir, 2<<20+512, 7)
	p := filepath.Join(dir, "s.vmdk")
	qemutest.Img(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", src, p)
	img, err := Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	for _, step := range []int64{4096, 1000, 65536 + 512} {
		buf := make([]byte, step)
		for off := int64(0); off < img.Size(); off += step {
			n, err := img.ReadAt(buf, off)
			if err != nil && !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			if !bytes.Equal(buf[:n], content[off:off+int64(n)]) {
				t.Fatalf("step %d: read at %d differs", step, off)
			}
		}
	}
	// Past the end.
	if n, err := img.ReadAt(make([]byte, 10), img.Size()); n != 0 || err != io.EOF {
		t.Fatalf("read past end: %d, %v", n, err)
	}
}

// TestConcurrentReads runs ReadAt from many goroutines on every sparse
// kind (run it with -race).
func TestConcurrentReads(t *testing.T) {
	dir := t.TempDir()
	src, content := diskLike(t, dir, 4<<20, 11)
	for _, sf := range []string{"streamOptimized", "monolithicSparse", "twoGbMaxExtentFlat"} {
		p := filepath.Join(dir, sf+".vmdk")
		qemutest.Img(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat="+sf, src, p)
		img, err := Open(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), 1))
				for range 60 {
					n := []int64{4096, 1 << 20, 777, 65536}[rng.IntN(4)]
					off := rng.Int64N(img.Size() - n)
					buf := make([]byte, n)
					if _, err := img.ReadAt(buf, off); err != nil {
						errs <- err
						return
					}
					if !bytes.Equal(buf, content[off:off+n]) {
						errs <- fmt.Errorf("%s: read of %d at %d differs", sf, n, off)
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
			t.Fatal(err)
		}
		img.Close()
	}
}

func qemuIO(t testing.TB, p string, cmds ...string) {
	t.Helper()
	qemutest.IOFormat(t, "vmdk", p, cmds...)
}

// TestZeroedGrains reads grains that qemu-io zeroed in an image with the
// zeroed-grain flag: grain table entry 1, allocated zeros.
func TestZeroedGrains(t *testing.T) {
	p := filepath.Join(t.TempDir(), "z.vmdk")
	qemutest.Img(t, "create", "-f", "vmdk", "-o", "zeroed_grain=on", p, "1M")
	qemuIO(t, p, "write -P 0x61 0 256k", "write -z 64k 128k", "write -z 512k 64k")
	img, err := Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	got := readAll(t, img)
	if !bytes.Equal(got, qemutest.ToRaw(t, p)) {
		t.Fatal("read differs from qemu-img")
	}
	e, err := img.Extent(64<<10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if e.Data || !e.Zero || !e.Allocated || e.Length != 128<<10 {
		t.Fatalf("zeroed grains: %+v", e)
	}
	checkMap(t, img, p)
}

// TestMultipleExtents reads disks of more than 2 GiB in the split
// subformats, where data crosses from one extent file to the next. Only
// the written ranges are compared (the disks are mostly holes).
func TestMultipleExtents(t *testing.T) {
	for _, sf := range []string{"twoGbMaxExtentSparse", "twoGbMaxExtentFlat"} {
		t.Run(sf, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "big.vmdk")
			qemutest.Img(t, "create", "-f", "vmdk", "-o", "subformat="+sf, p, "4200M")
			const edge = 2 << 30
			qemuIO(t, p, "write -P 0x5a 2147418112 131072", "write -P 0x33 4294967296 4096", "write -P 0x44 1000000 5000")
			img, err := Open(p, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			if n := len(img.Info().Extents); n != 3 {
				t.Fatalf("%d extents", n)
			}
			if img.Size() != 4200<<20 {
				t.Fatalf("size %d", img.Size())
			}
			for _, r := range []struct {
				off, n int64
				val    byte
			}{{edge - 65536, 131072, 0x5a}, {4 << 30, 4096, 0x33}, {1000000 - 512, 512, 0}, {1000000, 5000, 0x44}, {edge + 65536, 4096, 0}} {
				buf := make([]byte, r.n)
				if _, err := img.ReadAt(buf, r.off); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(buf, bytes.Repeat([]byte{r.val}, int(r.n))) {
					t.Fatalf("read at %d differs", r.off)
				}
			}
			checkMap(t, img, p)
		})
	}
}
