package vhd

// Hostile images: each case patches an image made by qemu-img and checks
// that opening and reading it fails cleanly (a classified error naming the
// file and the problem), quickly and within bounded memory. qemu-img info
// gives its verdict on the same bytes: where QEMU accepts what qimg
// refuses, the case says so.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

// hsMemLimit bounds what opening and reading one hostile image may
// allocate in total.
const hsMemLimit = 64 << 20

func totalAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// openAndRead opens b (as a file at p, or through NewReader) and reads
// and maps all of it, as a conversion would.
func openAndRead(p string, b []byte, viaReader bool) error {
	var img *Image
	var err error
	if viaReader {
		img, err = NewReader(bytes.NewReader(b), int64(len(b)), p)
	} else {
		img, err = Open(p)
	}
	if err != nil {
		return err
	}
	defer img.Close()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < min(img.Size(), 64<<20); off += int64(len(buf)) {
		if _, err := img.ReadAt(buf, off); err != nil && err != io.EOF {
			return err
		}
	}
	for e, err := range image.Extents(img, 0, img.Size()) {
		if err != nil {
			return err
		}
		_ = e
	}
	return nil
}

func TestHostile(t *testing.T) {
	dir := t.TempDir()
	src := makeDisk(t, dir, "h.raw", 4<<20, 11, []diskRegion{{0, 4096, 'd'}})
	dynPath, fixPath := filepath.Join(dir, "base-dyn.vhd"), filepath.Join(dir, "base-fixed.vhd")
	qemutest.Img(t, "convert", "-O", "vpc", src, dynPath)
	qemutest.Img(t, "convert", "-O", "vpc", "-o", "subformat=fixed", src, fixPath)
	dyn, fixed := readFile(t, dynPath), readFile(t, fixPath)
	be := binary.BigEndian
	hdr := func(off int, v uint32) []byte {
		return patchHeader(dyn, func(h []byte) { be.PutUint32(h[off:], v) })
	}
	hdr64 := func(off int, v uint64) []byte {
		return patchHeader(dyn, func(h []byte) { be.PutUint64(h[off:], v) })
	}
	flip := func(b []byte, off int) []byte { b = bytes.Clone(b); b[off] ^= 0x40; return b }
	bat := func(i int, v uint32) []byte { b := bytes.Clone(dyn); be.PutUint32(b[1536+4*i:], v); return b }

	cases := []struct {
		name  string
		data  []byte
		class error
		msg   string // a word the message must contain
		// qemuOK means qemu-img info accepts the image (qimg is stricter).
		qemuOK bool
	}{
		{"BAT past EOF", hdr64(16, uint64(len(dyn))+512), image.ErrCorrupt, "BAT", false},
		{"BAT straddling EOF", hdr64(16, uint64(len(dyn))-4), image.ErrCorrupt, "BAT", false},
		{"BAT offset 2^63", hdr64(16, 1<<63), image.ErrCorrupt, "BAT", false},
		{"huge max table entries", hdr(28, 0xFFFFFFFF), image.ErrLimit, "entries", false},
		{"max table entries past EOF", hdr(28, 1<<28), image.ErrCorrupt, "BAT", false},
		{"max table entries too few", hdr(28, 1), image.ErrCorrupt, "cover", false},
		{"block size 0", hdr(32, 0), image.ErrCorrupt, "block size", false},
		{"block size 256", hdr(32, 256), image.ErrCorrupt, "block size", false},
		{"block size not a power of two", hdr(32, 3<<20), image.ErrCorrupt, "block size", false},
		{"block size 2 GiB", hdr(32, 1<<31), image.ErrCorrupt, "past the end", false},
		{"block past EOF", bat(1, 0x7FFFFFFF), image.ErrCorrupt, "block 1", false},
		{"block straddling EOF", bat(1, uint32(len(dyn)/512-100)), image.ErrCorrupt, "block 1", false},
		{"footer checksum", flip(dyn, 100), image.ErrCorrupt, "checksum", false},
		{"truncated after the footer", dyn[:300], image.ErrCorrupt, "header", false},
		{"empty file", nil, image.ErrWrongFormat, "too small", false},
		{"dynamic header checksum", flip(dyn, 512+900), image.ErrCorrupt, "checksum", true},
		{"dynamic header cookie", flip(dyn, 512), image.ErrCorrupt, "cxsparse", false},
		{"dynamic header past EOF", patchFooters(dyn, func(f []byte) { be.PutUint64(f[16:], 1<<62) }), image.ErrCorrupt, "header", false},
		{"truncated dynamic disk", dyn[:len(dyn)-1536], image.ErrCorrupt, "past the end", false},
		{"first footer copy zeroed", append(make([]byte, 512), dyn[512:]...), image.ErrCorrupt, "offset 0", false},
		{"fixed footer checksum", flip(fixed, len(fixed)-400), image.ErrCorrupt, "checksum", false},
		{"fixed footer truncated", fixed[:len(fixed)-500], image.ErrCorrupt, "checksum", false},
		{"fixed footer gone", fixed[:len(fixed)-512], image.ErrWrongFormat, "footer", false},
		{"size over 2040 GiB", patchFooters(fixed, func(f []byte) { copy(f[28:], "win "); be.PutUint64(f[48:], 2041<<30) }), image.ErrLimit, "2040", false},
		{"unknown disk type", patchFooters(dyn, func(f []byte) { be.PutUint32(f[60:], 7) }), image.ErrUnsupported, "type 7", true},
		{"fixed type at offset 0", patchFooters(dyn, func(f []byte) { be.PutUint32(f[60:], typeFixed) }), image.ErrCorrupt, "fixed", true},
		{"no footer at all", make([]byte, 4096), image.ErrWrongFormat, "conectix", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, filepath.Join(t.TempDir(), "hostile.vhd"), c.data)
			_, code, _ := qemutest.RunCode(t, "qemu-img", "info", "-f", "vpc", p)
			if (code == 0) != c.qemuOK {
				t.Errorf("qemu-img info exits %d; the case says QEMU accepts it: %v", code, c.qemuOK)
			}
			for _, viaReader := range []bool{false, true} {
				before := totalAlloc()
				done := make(chan error, 1)
				go func() { done <- openAndRead(p, c.data, viaReader) }()
				var err error
				select {
				case err = <-done:
				case <-time.After(10 * time.Second):
					t.Fatalf("NewReader %v: still running after 10 s", viaReader)
				}
				if a := totalAlloc() - before; a > hsMemLimit {
					t.Errorf("NewReader %v: allocated %d MiB", viaReader, a>>20)
				}
				if err == nil {
					t.Fatalf("NewReader %v: opened and read without error", viaReader)
				}
				checkErr(t, c.name, p, err)
				if !errors.Is(err, c.class) || !strings.Contains(err.Error(), c.msg) {
					t.Fatalf("NewReader %v: %v; want %v mentioning %q", viaReader, err, c.class, c.msg)
				}
			}
			if got := readFile(t, p); !bytes.Equal(got, c.data) {
				t.Fatal("the file changed")
			}
		})
	}
	// QEMU pads a file to whole sectors: a fixed disk whose footer lost
	// its zero tail still opens, to both.
	p := writeFile(t, filepath.Join(dir, "short.vhd"), fixed[:len(fixed)-100])
	qemutest.Img(t, "info", "-f", "vpc", p)
	if err := openAndRead(p, nil, false); err != nil {
		t.Errorf("fixed disk missing the footer's last 100 (zero) bytes: %v", err)
	}
	// A negative size is the caller's error.
	if _, err := NewReader(bytes.NewReader(nil), -1, "neg.vhd"); !errors.Is(err, image.ErrInvalidArgument) {
		t.Errorf("negative size: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "missing.vhd")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
