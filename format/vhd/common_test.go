package vhd

// Helpers shared by the tests: disk-like source files and what qemu-img
// says about images.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

// diskRegion is a piece of a source disk: random data, written zeros or a
// hole.
type diskRegion struct {
	off, n int64
	kind   byte // 'd' data, 'z' written zeros, 'h' hole
}

// makeDisk writes a raw file of size bytes laid out by regions (the rest
// is holes) and returns its path. Data is pseudo-random from seed, so a
// test is reproducible.
func makeDisk(t testing.TB, dir, name string, size int64, seed uint64, regions []diskRegion) string {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, r := range regions {
		if r.kind == 'h' {
			continue
		}
		b := make([]byte, r.n)
		if r.kind == 'd' {
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
		}
		if _, err := f.WriteAt(b, r.off); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// diskShapes are the sources the read and write tests use: a few MiB with
// data, written zeros and holes, at block-aligned, sector-aligned and odd
// sizes.
var diskShapes = []struct {
	name    string
	size    int64
	regions []diskRegion
}{
	{"mixed-odd", 5<<20 + 3*512 + 100, []diskRegion{
		{0, 100000, 'd'}, {200000, 300000, 'z'}, {3<<20 + 4096, 5000, 'd'},
		{5<<20 + 512, 700, 'd'}, {5<<20 + 3*512, 100, 'd'}}},
	{"sparse-9m", 9<<20 + 512, []diskRegion{
		{0, 1000, 'd'}, {2 << 20, 1 << 20, 'z'}, {7 << 20, 1000, 'd'}, {9 << 20, 512, 'd'}}},
	{"dense-3m", 3 << 20, []diskRegion{{0, 3 << 20, 'd'}}},
	{"zeros-2m", 2<<20 + 4096, []diskRegion{{0, 2<<20 + 4096, 'z'}}},
}

// qemuVirtualSize is qemu-img info's virtual-size.
func qemuVirtualSize(t testing.TB, path, format string) int64 {
	t.Helper()
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	out := qemutest.Img(t, "info", "-f", format, "--output=json", path)
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("qemu-img info %s: %v\n%s", path, err, out)
	}
	return info.VirtualSize
}

// qemuRaw is the guest data as qemu-img convert -f vpc -O raw reads it.
// (qemutest.ToRaw probes the format, which turns a fixed VHD into raw.)
func qemuRaw(t testing.TB, path string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "oracle.raw")
	qemutest.Img(t, "convert", "-f", "vpc", "-O", "raw", path, out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// status is one run of a block-status map, as qemu-img map --output=json
// describes it.
type status struct {
	Start   int64 `json:"start"`
	Length  int64 `json:"length"`
	Present bool  `json:"present"`
	Zero    bool  `json:"zero"`
	Data    bool  `json:"data"`
}

// mergeRuns joins neighbouring runs of equal status, so that maps cut at
// different places compare equal.
func mergeRuns(in []status) []status {
	var out []status
	for _, s := range in {
		if n := len(out); n > 0 && out[n-1].Present == s.Present && out[n-1].Zero == s.Zero &&
			out[n-1].Data == s.Data && out[n-1].Start+out[n-1].Length == s.Start {
			out[n-1].Length += s.Length
			continue
		}
		out = append(out, s)
	}
	return out
}

func qemuMap(t testing.TB, path string) []status {
	t.Helper()
	var m []status
	out := qemutest.Img(t, "map", "-f", "vpc", "--output=json", path)
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("qemu-img map %s: %v\n%s", path, err, out)
	}
	return mergeRuns(m)
}

// ourMap walks img's extents and checks that every run that is not data
// reads as zeros.
func ourMap(t testing.TB, img *Image) []status {
	t.Helper()
	var m []status
	for e, err := range image.Extents(img, 0, img.Size()) {
		if err != nil {
			t.Fatal(err)
		}
		m = append(m, status{Start: e.Start, Length: e.Length, Present: e.Allocated, Zero: e.Zero, Data: e.Data})
		if !e.Data {
			b := make([]byte, e.Length)
			if _, err := img.ReadAt(b, e.Start); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			if !isZero(b) {
				t.Fatalf("extent %+v is not data but does not read as zeros", e)
			}
		}
	}
	return mergeRuns(m)
}

// readAll reads the whole image in 1 MiB pieces.
func readAll(t testing.TB, img *Image) []byte {
	t.Helper()
	out := make([]byte, img.Size())
	for off := int64(0); off < img.Size(); off += 1 << 20 {
		end := min(off+1<<20, img.Size())
		if n, err := img.ReadAt(out[off:end], off); err != nil || int64(n) != end-off {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", end-off, off, n, err)
		}
	}
	return out
}

func sum(b []byte) [32]byte { return sha256.Sum256(b) }

// patchFooters rewrites both footer copies of a VHD file image (the one at
// offset 0, if any, and the one at the end) with fix and recomputes their
// checksums.
func patchFooters(b []byte, fix func(f []byte)) []byte {
	b = bytes.Clone(b)
	offs := []int{len(b) - footerSize}
	if hasCookie(b) {
		offs = append(offs, 0)
	}
	for _, off := range offs {
		f := b[off : off+footerSize]
		fix(f)
		resum(f, 64)
	}
	return b
}

// resum recomputes the checksum at byte sumAt of a footer or header.
func resum(h []byte, sumAt int) {
	clear(h[sumAt : sumAt+4])
	binary.BigEndian.PutUint32(h[sumAt:], checksum(h))
}

// patchHeader rewrites the dynamic disk header of a dynamic VHD with fix
// and recomputes its checksum.
func patchHeader(b []byte, fix func(h []byte)) []byte {
	b = bytes.Clone(b)
	off := binary.BigEndian.Uint64(b[16:])
	h := b[off : off+dynHeaderSize]
	fix(h)
	resum(h, 36)
	return b
}

// errClasses are the classes every error of the package must wrap.
var errClasses = []error{
	image.ErrWrongFormat, image.ErrCorrupt, image.ErrUnsupported, image.ErrEncrypted,
	image.ErrLimit, image.ErrInvalidArgument, image.ErrReadOnly, image.ErrBackingRefused,
}

// checkErr fails unless err wraps an image.Err* class and names the file.
func checkErr(t testing.TB, what, name string, err error) {
	t.Helper()
	ok := false
	for _, c := range errClasses {
		ok = ok || errors.Is(err, c)
	}
	if !ok {
		t.Fatalf("%s: error wraps no image.Err* class: %v", what, err)
	}
	if !strings.Contains(err.Error(), name) {
		t.Fatalf("%s: error does not name the file %q: %v", what, name, err)
	}
}

func writeFile(t testing.TB, p string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// statBlocks is the number of 512-byte blocks a file occupies.
func statBlocks(st os.FileInfo) int64 { return st.Sys().(*syscall.Stat_t).Blocks }
