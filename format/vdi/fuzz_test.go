package vdi_test

// FuzzNewReader feeds hostile files to NewReader, reads up to 16 MiB of
// the disk and walks its extents: nothing may panic, hang or allocate
// much more than the file's size, and every error must name the file and
// wrap one of the image.Err* classes.
//
// Seeds in testdata/fuzz/FuzzNewReader named qemu-* are images made by
// qemu-img and qemu-io, with the zeros at the end of the file cut off (the
// last block then ends past the end of the file and its missing bytes
// read as zeros, in QEMU as here), which keeps them a few KiB. Regenerate
// them with `go test -run TestFuzzSeeds -genseeds ./convert/vdi/`. Any
// other file there is a crasher found by fuzzing, kept as a regression
// test.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/qimg/qimg/format/vdi"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/imagetest"
	"github.com/qimg/qimg/internal/qemutest"
)

var genSeeds = flag.Bool("genseeds", false, "regenerate the qemu-made fuzz seeds in testdata/fuzz")

const fzMemMax = 256 << 20

// fzSeeds are images made by qemu-img and qemu-io. A block takes 1 MiB
// of file however little of it is written, so only images with one
// allocated block are committed; the others (big) are added at run time.
var fzSeeds = []struct {
	name   string
	big    bool
	create func(t testing.TB, dir, p string)
}{
	{"dynamic-one-block", false, func(t testing.TB, dir, p string) {
		qemutest.Img(t, "create", "-f", "vdi", p, "5M")
		qemuIO(t, p, "write -P 0x11 3M 512", "write -P 0x22 3146240 100")
	}},
	{"static-one-block", false, func(t testing.TB, dir, p string) {
		qemutest.Img(t, "create", "-f", "vdi", "-o", "static=on", p, "1000000")
		qemuIO(t, p, "write -P 0x44 0 512")
	}},
	{"empty-odd", false, func(t testing.TB, dir, p string) {
		qemutest.Img(t, "create", "-f", "vdi", p, "3000")
	}},
	{"dynamic-io", true, func(t testing.TB, dir, p string) {
		qemutest.Img(t, "create", "-f", "vdi", p, "5M")
		qemuIO(t, p, "write -P 0x11 3M 512", "write -P 0x22 1M 1024", "write -P 0x33 4M 100")
	}},
	{"static", true, func(t testing.TB, dir, p string) {
		qemutest.Img(t, "create", "-f", "vdi", "-o", "static=on", p, "2M")
		qemuIO(t, p, "write -P 0x44 0 512", "write -P 0x55 1M 100")
	}},
	{"converted", true, func(t testing.TB, dir, p string) {
		raw := filepath.Join(dir, "in.raw")
		b := make([]byte, 3<<20)
		copy(b[2<<20:], "qimg fuzz seed: text at the start of the third block")
		copy(b, "and at the start of the first")
		if err := os.WriteFile(raw, b, 0o644); err != nil {
			t.Fatal(err)
		}
		qemutest.Img(t, "convert", "-f", "raw", "-O", "vdi", raw, p)
	}},
}

// fzMake makes a seed image and cuts the zeros off its end.
func fzMake(t testing.TB, name string, create func(t testing.TB, dir, p string)) []byte {
	t.Helper()
	dir, err := os.MkdirTemp("", "qimg-vdi-seed-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, name+".vdi")
	create(t, dir, p)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimRight(b, "\x00")
}

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

// TestFuzzSeeds checks that each committed qemu-made seed reads exactly
// as qemu-img reads it. With -genseeds it first rewrites them.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzNewReader")
	if *genSeeds {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, s := range fzSeeds {
			if s.big {
				continue
			}
			enc := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", fzMake(t, s.name, s.create))
			if err := os.WriteFile(filepath.Join(dir, "qemu-"+s.name), []byte(enc), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	seeds, err := filepath.Glob(filepath.Join(dir, "qemu-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(seeds) != 3 {
		t.Fatalf("%d qemu-made seeds in %s, want 3", len(seeds), dir)
	}
	for _, p := range seeds {
		tmp := filepath.Join(t.TempDir(), "seed.vdi")
		if err := os.WriteFile(tmp, fzReadCorpus(t, p), 0o644); err != nil {
			t.Fatal(err)
		}
		verify(t, tmp, map[bool]string{true: "static", false: "dynamic"}[strings.Contains(p, "static")])
	}
}

// fzCheckErr is stricter than imagetest.CheckError: a VDI reader has no
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
	f.Add([]byte{})
	for _, s := range fzSeeds {
		if s.big {
			f.Add(fzMake(f, s.name, s.create))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz.vdi"
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		fzCheck(t, data, name)
		img, err := vdi.NewReader(bytes.NewReader(data), int64(len(data)), name)
		if err != nil {
			fzCheckErr(t, "NewReader", name, err)
			return
		}
		defer img.Close()
		if s := img.Subformat(); s != "static" && s != "dynamic" {
			t.Fatalf("Subformat() = %q", s)
		}
		imagetest.Exercise(t, img, name, fzCheckErr)
		// A VDI run is either data or zeros, never both or neither.
		for e, err := range image.Extents(img, 0, img.Size()) {
			if err != nil {
				break // Exercise checked the error
			}
			if e.Data == e.Zero {
				t.Fatalf("extent %+v is both or neither data and zeros", e)
			}
		}
		runtime.ReadMemStats(&ms)
		if a := ms.TotalAlloc - before; a > fzMemMax+8*uint64(len(data)) {
			t.Fatalf("a %d-byte file made the reader allocate %d bytes", len(data), a)
		}
	})
}

// fzCheck checks a hostile image as qemu-img check opens it: Check must
// not panic and must classify its errors, with one message a corruption.
func fzCheck(t *testing.T, data []byte, name string) {
	img, err := vdi.NewCheckReader(bytes.NewReader(data), int64(len(data)), name)
	if err != nil {
		fzCheckErr(t, "NewCheckReader", name, err)
		return
	}
	defer img.Close()
	res, err := img.Check(context.Background(), image.RepairNone)
	if err != nil {
		fzCheckErr(t, "Check", name, err)
		return
	}
	if res.Corruptions != int64(len(res.Messages)) {
		t.Fatalf("%d corruptions but %d messages", res.Corruptions, len(res.Messages))
	}
}
