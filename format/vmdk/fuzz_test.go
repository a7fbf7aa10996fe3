package vmdk

// Fuzz targets for what qimg parses from a VMDK: a sparse or stream
// extent (FuzzNewReader) and a text descriptor (FuzzDescriptor). Every
// input may come from an attacker: parsing must never panic, hang or
// allocate much more than the input, and every error must wrap one of the
// image.Err* classes and name the file.
//
// The seed corpus lives in testdata/fuzz/<FuzzName>/. Files named qemu-*
// are made by qemu-img and qemu-io, then compacted (compactSparse) so
// they stay small; TestFuzzSeeds checks that qemu-img reads each one as
// we do. Regenerate them with `go test -run TestFuzzSeeds -genseeds
// ./convert/vmdk/`. Any other file is a crasher found by fuzzing, kept as
// a regression test.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

var genSeeds = flag.Bool("genseeds", false, "regenerate the qemu-made fuzz seeds in testdata/fuzz")

var errClasses = []error{
	image.ErrWrongFormat, image.ErrCorrupt, image.ErrUnsupported, image.ErrEncrypted,
	image.ErrLimit, image.ErrInvalidArgument, image.ErrReadOnly, image.ErrBackingRefused,
}

// checkErr fails unless err wraps an image error class and names the file.
func checkErr(t testing.TB, what, name string, err error) {
	t.Helper()
	ok := false
	for _, c := range errClasses {
		ok = ok || errors.Is(err, c)
	}
	if !ok {
		t.Fatalf("%s: error wraps no image.Err* class: %v", what, err)
	}
	if name != "" && !strings.Contains(err.Error(), name) {
		t.Fatalf("%s: error does not name %q: %v", what, name, err)
	}
}

const fuzzMaxRead = 16 << 20

var (
	fuzzMu  sync.Mutex
	fuzzBuf = make([]byte, 1<<20)
)

// exercise reads up to 16 MiB of an image in 1 MiB and odd-sized pieces
// and walks its extents, checking the answers are consistent.
func exercise(t *testing.T, img *Image, name string) {
	fuzzMu.Lock()
	defer fuzzMu.Unlock()
	limit := min(img.Size(), fuzzMaxRead)
	for off := int64(0); off < limit; off += 1 << 20 {
		n, err := img.ReadAt(fuzzBuf[:min(1<<20, limit-off)], off)
		if err != nil && err != io.EOF {
			checkErr(t, "ReadAt", name, err)
		} else if int64(n) != min(1<<20, limit-off) {
			t.Fatalf("ReadAt at %d: %d bytes, %v", off, n, err)
		}
	}
	if limit > 0 {
		if _, err := img.ReadAt(fuzzBuf[:777], limit/2); err != nil && err != io.EOF {
			checkErr(t, "ReadAt", name, err)
		}
	}
	next := int64(0)
	for e, err := range image.Extents(img, 0, limit) {
		if err != nil {
			checkErr(t, "Extent", name, err)
			break
		}
		if e.Start != next || e.Length <= 0 || e.End() > limit {
			t.Fatalf("extent %+v after %d (limit %d)", e, next, limit)
		}
		next = e.End()
	}
}

// watchdog crashes the fuzz worker if one input takes too long, so the
// fuzzer records it as a crasher instead of stalling silently.
func watchdog() (stop func()) {
	timer := time.AfterFunc(20*time.Second, func() { panic("one fuzz input took more than 20 s") })
	return func() { timer.Stop() }
}

func FuzzNewReader(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("KDMV"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz.vmdk"
		defer watchdog()()
		img, err := NewReader(bytes.NewReader(data), int64(len(data)), name)
		if err != nil {
			checkErr(t, "NewReader", name, err)
			return
		}
		defer img.Close()
		exercise(t, img, name)
		if _, err := img.Check(context.Background(), image.RepairNone); err != nil && !errors.Is(err, syscall.EINVAL) {
			checkErr(t, "Check", name, err)
		}
	})
}

func FuzzDescriptor(f *testing.F) {
	f.Add([]byte("version=1\ncreateType=\"monolithicFlat\"\nRW 10 FLAT \"a b.raw\" 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz-desc.vmdk"
		Detect(data)
		d, err := parseDescriptor(data, name, 0)
		if err != nil {
			checkErr(t, "parseDescriptor", name, err)
			return
		}
		if len(d.Extents) > DefaultMaxExtents {
			t.Fatalf("%d extents", len(d.Extents))
		}
		var total int64
		for _, e := range d.Extents {
			if e.Sectors <= 0 || e.Offset < 0 {
				t.Fatalf("bad extent %+v", e)
			}
			if e.Kind != kindZero && (e.File == "" || strings.Contains(e.File, `"`)) {
				t.Fatalf("bad file name in %+v", e)
			}
			total += e.Sectors
			if total > maxSectors || total < 0 {
				t.Fatalf("extents add up to %d sectors", total)
			}
		}
	})
}

// compactSparse rewrites a sparse extent made by QEMU so that nothing is
// padded: QEMU puts grains at 64 KiB, which would make every seed 256 KiB
// of escaped zeros. The header, descriptor, grain directories, the
// allocated grain tables and grains are packed one after another; with
// stream set, the result uses VMware's stream layout instead (grains,
// then each table and the directory behind markers, footer, end marker).
func compactSparse(t testing.TB, b []byte, stream bool) []byte {
	t.Helper()
	h := parseHeader(b)
	le := binary.LittleEndian
	sec := func(n int) int { return (n + 511) / 512 }
	desc := b[h.DescriptorOffset*512 : (h.DescriptorOffset+h.DescriptorSize)*512]
	if i := bytes.IndexByte(desc, 0); i >= 0 {
		desc = desc[:i]
	}
	gdn := int(h.gdEntries())
	gtBytes := int(h.NumGTEsPerGT) * 4
	gd := make([]uint32, gdn)
	for i := range gd {
		gd[i] = le.Uint32(b[int(h.GDOffset)*512+4*i:])
	}
	var out []byte
	pad := func() { out = append(out, make([]byte, (512-len(out)%512)%512)...) }
	out = append(out, make([]byte, 512)...) // header, filled at the end
	nh := h
	nh.DescriptorOffset, nh.DescriptorSize = 1, uint64(max(sec(len(desc)), 1))
	out = append(out, desc...)
	pad()
	if len(desc) == 0 {
		out = append(out, make([]byte, 512)...)
	}
	newGD := make([]uint32, gdn)
	tables := make([][]uint32, gdn)
	gdSectors := sec(gdn * 4)
	var gdAt, rgdAt, firstTable int
	if !stream {
		if h.Flags&flagRGD != 0 {
			rgdAt = len(out) / 512
			out = append(out, make([]byte, gdSectors*512)...)
		}
		gdAt = len(out) / 512
		out = append(out, make([]byte, gdSectors*512)...)
		firstTable = len(out) / 512
		for i, s := range gd {
			if s != 0 {
				newGD[i] = uint32(len(out) / 512)
				out = append(out, make([]byte, sec(gtBytes)*512)...)
			}
		}
	}
	nh.OverHead = uint64(len(out) / 512)
	for i, s := range gd {
		if s == 0 {
			continue
		}
		tables[i] = make([]uint32, h.NumGTEsPerGT)
		for j := range tables[i] {
			v := le.Uint32(b[int(s)*512+4*j:])
			if v == 0 || v == gteZeroed && h.Flags&flagZeroGrain != 0 {
				tables[i][j] = v
				continue
			}
			off, n := int(v)*512, int(h.GrainSize)*512
			if h.compressed() {
				n = 12 + int(le.Uint32(b[off+8:]))
			}
			tables[i][j] = uint32(len(out) / 512)
			out = append(out, b[off:off+n]...)
			pad()
		}
	}
	putTable := func(at int, t []uint32) {
		for j, v := range t {
			le.PutUint32(out[at*512+4*j:], v)
		}
	}
	if !stream {
		for i := range gd {
			if tables[i] != nil {
				putTable(int(newGD[i]), tables[i])
			}
		}
		putTable(gdAt, newGD)
		if rgdAt != 0 {
			putTable(rgdAt, newGD)
			nh.RGDOffset = uint64(rgdAt)
		}
		nh.GDOffset = uint64(gdAt)
		_ = firstTable
		copy(out, nh.encode())
		return out
	}
	for i := range gd {
		if tables[i] == nil {
			continue
		}
		out = append(out, encodeMarker(uint64(sec(gtBytes)), markerGT)...)
		newGD[i] = uint32(len(out) / 512)
		out = append(out, make([]byte, sec(gtBytes)*512)...)
		putTable(int(newGD[i]), tables[i])
	}
	out = append(out, encodeMarker(uint64(gdSectors), markerGD)...)
	nh.GDOffset = uint64(len(out) / 512)
	out = append(out, make([]byte, gdSectors*512)...)
	putTable(int(nh.GDOffset), newGD)
	nh.Flags &^= flagRGD
	nh.RGDOffset = 0
	out = append(out, encodeMarker(1, markerFooter)...)
	out = append(out, nh.encode()...)
	out = append(out, make([]byte, 512)...)
	nh.GDOffset = gdAtEnd
	copy(out, nh.encode())
	return out
}

// seedImages are the qemu-made images behind the FuzzNewReader seeds.
var seedImages = []struct {
	name   string
	stream bool // compact into the stream layout
	create func(t testing.TB, dir, p string)
}{
	{"sparse", false, func(t testing.TB, dir, p string) {
		// One grain of letters: uncompressed grains are 64 KiB each.
		raw := filepath.Join(dir, "one.raw")
		b := make([]byte, 100<<10)
		for i := range 65536 {
			b[i] = "qimg vmdk seed "[i%15]
		}
		if err := os.WriteFile(raw, b, 0o644); err != nil {
			t.Fatal(err)
		}
		qemutest.Img(t, "convert", "-f", "raw", "-O", "vmdk", raw, p)
	}},
	{"stream", false, func(t testing.TB, dir, p string) {
		qemutest.Img(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", seedRaw(t, dir), p)
	}},
	{"stream-gd-at-end", true, func(t testing.TB, dir, p string) {
		qemutest.Img(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", seedRaw(t, dir), p)
	}},
	{"zeroed-grain", false, func(t testing.TB, dir, p string) {
		qemutest.Img(t, "create", "-f", "vmdk", "-o", "zeroed_grain=on", p, "300k")
		qemuIO(t, p, "write -z 0 64k", "write -z 128k 64k")
	}},
}

// seedRaw is a 200 KiB + 512 disk: a grain of letters, a hole, a grain
// with a short record, and a partial last grain of letters.
func seedRaw(t testing.TB, dir string) string {
	b := make([]byte, 200<<10+512)
	for i := range 65536 {
		b[i] = "qimg vmdk seed "[i%15]
	}
	copy(b[131072+1000:], "a record in the third grain")
	for i := 196608; i < len(b); i++ {
		b[i] = 'a' + byte(i%26)
	}
	p := filepath.Join(dir, "seed.raw")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func corpusFile(b []byte) []byte {
	return []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b))
}

func readCorpus(t testing.TB, p string) []byte {
	t.Helper()
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimPrefix(string(raw), "go test fuzz v1\n[]byte(")
	s = s[:strings.LastIndex(s, ")")]
	var b []byte
	if _, err := fmt.Sscanf(s, "%q", &b); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return b
}

func writeSeed(t testing.TB, fuzzName, file string, b []byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", fuzzName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), corpusFile(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFuzzSeeds checks the committed qemu-made seeds: qemu-img must read
// each image as we do. With -genseeds it first rewrites them.
func TestFuzzSeeds(t *testing.T) {
	if *genSeeds {
		for _, s := range seedImages {
			dir := t.TempDir()
			p := filepath.Join(dir, "seed.vmdk")
			s.create(t, dir, p)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			writeSeed(t, "FuzzNewReader", "qemu-"+s.name, compactSparse(t, b, s.stream))
		}
		for _, sf := range []string{"monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat"} {
			dir := t.TempDir()
			p := filepath.Join(dir, "d.vmdk")
			qemutest.Img(t, "create", "-f", "vmdk", "-o", "subformat="+sf+",adapter_type=lsilogic", p, "5G")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			writeSeed(t, "FuzzDescriptor", "qemu-"+sf, b)
		}
		dir := t.TempDir()
		p := filepath.Join(dir, "e.vmdk")
		qemutest.Img(t, "create", "-f", "vmdk", p, "1M")
		writeSeed(t, "FuzzDescriptor", "qemu-embedded", []byte(embedded(t, p)))
	}
	seeds, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzNewReader", "qemu-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(seeds) < len(seedImages) {
		t.Fatalf("only %d qemu-made seeds", len(seeds))
	}
	for _, s := range seeds {
		b := readCorpus(t, s)
		if len(b) > 80<<10 {
			t.Errorf("%s: %d bytes, keep seeds small", s, len(b))
		}
		p := filepath.Join(t.TempDir(), "seed.vmdk")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		want := qemutest.ToRaw(t, p)
		img, err := NewReader(bytes.NewReader(b), int64(len(b)), s)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, img); !bytes.Equal(got, want) {
			t.Fatalf("%s: we read different data from qemu-img", s)
		}
		checkMap(t, img, p)
	}
	descs, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDescriptor", "qemu-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(descs) < 4 {
		t.Fatalf("only %d descriptor seeds", len(descs))
	}
	for _, s := range descs {
		d, err := parseDescriptor(readCorpus(t, s), s, 0)
		if err != nil || d.CreateType == "" || len(d.Extents) == 0 {
			t.Fatalf("%s: %+v, %v", s, d, err)
		}
	}
}
