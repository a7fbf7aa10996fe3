package vhdx_test

// FuzzNewReader feeds hostile files to NewReader, reads up to 16 MiB of
// the disk and walks its extents: nothing may panic, hang or allocate
// much more than the file's size, and every error must name the file and
// wrap one of the image.Err* classes.
//
// A VHDX file is at least a few MiB, almost all zeros (the header
// section alone is 1 MiB), and every structure that matters is behind a
// CRC-32C. So an input is either the file itself, or, if it starts with
// "qimgsprs", a sparse description of one (see fzExpand) whose headers and
// region tables get their CRCs recomputed when the flag byte asks for it:
// that keeps the committed seeds small and lets mutations reach the
// parsing behind the checksums.
//
// Seeds in testdata/fuzz/FuzzNewReader named qemu-* are images made by
// qemu-img and qemu-io in sparse form (regenerate them with
// `go test -run TestFuzzSeeds -genseeds ./convert/vhdx/`); full-size
// qemu-made images are added at run time only; any other file there is a
// crasher found by fuzzing, kept as a regression test.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/qimg/qimg/format/vhdx"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/imagetest"
	"github.com/qimg/qimg/internal/qemutest"
)

var genSeeds = flag.Bool("genseeds", false, "regenerate the qemu-made fuzz seeds in testdata/fuzz")

const (
	fzMagic   = "qimgsprs"
	fzMaxFile = 16 << 20 // largest file a sparse input describes
	fzMemMax  = 256 << 20
)

// sparseFile is an io.ReaderAt over a file that is mostly zeros: 4 KiB
// pages that were written, zeros elsewhere.
type sparseFile struct {
	size  int64
	pages map[int64][]byte
}

const fzPage = 4096

func (s *sparseFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= s.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), s.size-off))
	for done := 0; done < n; {
		pos := off + int64(done)
		pg, in := pos/fzPage, int(pos%fzPage)
		k := min(n-done, fzPage-in)
		if b := s.pages[pg]; b != nil {
			copy(p[done:done+k], b[in:])
		} else {
			clear(p[done : done+k])
		}
		done += k
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (s *sparseFile) WriteAt(p []byte, off int64) {
	p = p[:max(0, min(int64(len(p)), s.size-off))]
	for done := 0; done < len(p); {
		pos := off + int64(done)
		pg, in := pos/fzPage, int(pos%fzPage)
		b := s.pages[pg]
		if b == nil {
			b = make([]byte, fzPage)
			s.pages[pg] = b
		}
		done += copy(b[in:], p[done:])
	}
}

// fzExpand turns an input into a file. A sparse input is
//
//	"qimgsprs" flags:u8 size:u32le { offset:u32le length:u16le bytes }...
//
// describing a file of size bytes (at most fzMaxFile) that is zero except
// for the records; flags bit 0 recomputes the CRC-32C of both headers and
// both region tables. Anything else is the file itself.
func fzExpand(data []byte) (io.ReaderAt, int64) {
	if !bytes.HasPrefix(data, []byte(fzMagic)) || len(data) < len(fzMagic)+5 {
		return bytes.NewReader(data), int64(len(data))
	}
	le := binary.LittleEndian
	flags := data[8]
	s := &sparseFile{size: int64(le.Uint32(data[9:])) % (fzMaxFile + 1), pages: map[int64][]byte{}}
	for rest := data[13:]; len(rest) >= 6; {
		off, n := int64(le.Uint32(rest)), int(le.Uint16(rest[4:]))
		rest = rest[6:]
		n = min(n, len(rest))
		s.WriteAt(rest[:n], off)
		rest = rest[n:]
	}
	if flags&1 != 0 {
		for _, st := range [][2]int64{{64 << 10, 4096}, {128 << 10, 4096}, {192 << 10, 64 << 10}, {256 << 10, 64 << 10}} {
			if st[0]+st[1] > s.size {
				continue
			}
			b := make([]byte, st[1])
			s.ReadAt(b, st[0])
			clear(b[4:8])
			le.PutUint32(b[4:], crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
			s.WriteAt(b[4:8], st[0]+4)
		}
	}
	return s, s.size
}

// fzSparse encodes a file as a sparse input: runs of non-zero bytes
// separated by at least 16 zero bytes become records.
func fzSparse(file []byte) []byte {
	var b bytes.Buffer
	b.WriteString(fzMagic)
	b.WriteByte(1)
	b.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(file))))
	zero := make([]byte, 16)
	for i := 0; i < len(file); {
		if file[i] == 0 {
			i++
			continue
		}
		j := i
		for j < len(file) && j-i < 65535-16 && !(j+16 <= len(file) && bytes.Equal(file[j:j+16], zero)) {
			j++
		}
		j = min(j, len(file))
		b.Write(binary.LittleEndian.AppendUint32(nil, uint32(i)))
		b.Write(binary.LittleEndian.AppendUint16(nil, uint16(j-i)))
		b.Write(file[i:j])
		i = j
	}
	return b.Bytes()
}

// fzSeeds are small images made by qemu-img and qemu-io.
var fzSeeds = []struct {
	name   string
	create func(t testing.TB, dir, p string)
}{
	{"dynamic-io", func(t testing.TB, dir, p string) {
		qemutest.Img(t, "create", "-f", "vhdx", "-o", "block_size=1M,block_state_zero=off,log_size=1M", p, "3M")
		qemuIO(t, p, "write -P 0x11 1M 512", "write -P 0x22 2621440 1024")
	}},
	{"zero-states", func(t testing.TB, dir, p string) {
		raw := filepath.Join(dir, "in.raw")
		b := make([]byte, 4<<20)
		copy(b[3<<20+1000:], "qimg fuzz seed: a block of text in a zero block")
		if err := os.WriteFile(raw, b, 0o644); err != nil {
			t.Fatal(err)
		}
		qemutest.Img(t, "convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M,log_size=1M", raw, p)
	}},
	{"fixed", func(t testing.TB, dir, p string) {
		qemutest.Img(t, "create", "-f", "vhdx", "-o", "subformat=fixed,block_size=1M,block_state_zero=off,log_size=1M", p, "2M")
		qemuIO(t, p, "write -P 0x33 4096 512")
	}},
	{"block-8M-odd", func(t testing.TB, dir, p string) {
		qemutest.Img(t, "create", "-f", "vhdx", "-o", "block_size=8M,log_size=1M", p, "1536")
		qemuIO(t, p, "write -P 0x44 512 512")
	}},
}

func fzMake(t testing.TB, name string, create func(t testing.TB, dir, p string)) []byte {
	t.Helper()
	dir, err := os.MkdirTemp("", "qimg-vhdx-seed-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, name+".vhdx")
	create(t, dir, p)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fzReadCorpus decodes a one-value []byte corpus file.
func fzReadCorpus(t testing.TB, p string) []byte {
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

// TestFuzzSeeds checks the committed qemu-made seeds: each expands to an
// image that qimg reads exactly as qemu-img does. With -genseeds it first
// rewrites them.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzNewReader")
	if *genSeeds {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, s := range fzSeeds {
			enc := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", fzSparse(fzMake(t, s.name, s.create)))
			if err := os.WriteFile(filepath.Join(dir, "qemu-"+s.name), []byte(enc), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	seeds, err := filepath.Glob(filepath.Join(dir, "qemu-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(seeds) != len(fzSeeds) {
		t.Fatalf("%d qemu-made seeds in %s, want %d", len(seeds), dir, len(fzSeeds))
	}
	for _, p := range seeds {
		r, size := fzExpand(fzReadCorpus(t, p))
		file := make([]byte, size)
		if _, err := r.ReadAt(file, 0); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		tmp := filepath.Join(t.TempDir(), "seed.vhdx")
		if err := os.WriteFile(tmp, file, 0o644); err != nil {
			t.Fatal(err)
		}
		v := verify(t, tmp, map[bool]string{true: "fixed", false: "dynamic"}[strings.Contains(p, "fixed")])
		if v.data == 0 {
			t.Errorf("%s: seed has no data blocks", p)
		}
	}
}

// fzCheckErr is stricter than imagetest.CheckError: a VHDX reader has no
// use for the encryption, read-only or backing classes.
func fzCheckErr(t testing.TB, what, name string, err error) {
	t.Helper()
	for _, c := range []error{image.ErrWrongFormat, image.ErrCorrupt, image.ErrUnsupported, image.ErrLimit, image.ErrInvalidArgument} {
		if errors.Is(err, c) {
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("%s: error does not name the file %q: %v", what, name, err)
			}
			return
		}
	}
	t.Fatalf("%s: error wraps no image.Err* class: %v", what, err)
}

func FuzzNewReader(f *testing.F) {
	f.Add([]byte("vhdxfile"))
	// Full-size qemu-made images, too big to commit.
	for _, s := range fzSeeds {
		f.Add(fzMake(f, s.name, s.create))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz.vhdx"
		r, size := fzExpand(data)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		fzCheck(t, r, size, name)
		img, err := vhdx.NewReader(r, size, name)
		if err != nil {
			fzCheckErr(t, "NewReader", name, err)
			return
		}
		defer img.Close()
		if s := img.Subformat(); s != "fixed" && s != "dynamic" {
			t.Fatalf("Subformat() = %q", s)
		}
		imagetest.Exercise(t, img, name, fzCheckErr)
		// A VHDX run is either data or zeros, never both or neither.
		for e, err := range image.Extents(img, 0, img.Size()) {
			if err != nil {
				break // Exercise checked the error
			}
			if e.Data == e.Zero {
				t.Fatalf("extent %+v is both or neither data and zeros", e)
			}
		}
		runtime.ReadMemStats(&ms)
		if a := ms.TotalAlloc - before; a > fzMemMax+2*uint64(size) {
			t.Fatalf("a %d-byte file made the reader allocate %d bytes", size, a)
		}
	})
}

// fzCheck checks a hostile image as qemu-img check opens it: Check must
// not panic and must classify its errors, with one report a corruption.
func fzCheck(t *testing.T, r io.ReaderAt, size int64, name string) {
	img, err := vhdx.NewCheckReader(r, size, name)
	if err != nil {
		fzCheckErr(t, "NewCheckReader", name, err)
		return
	}
	defer img.Close()
	res, err := img.Check(context.Background(), image.RepairAll)
	if err != nil {
		fzCheckErr(t, "Check", name, err)
		return
	}
	if res.Corruptions != int64(len(res.Reports)) {
		t.Fatalf("%d corruptions but %d reports", res.Corruptions, len(res.Reports))
	}
}
