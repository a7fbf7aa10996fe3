package vdi_test

// Hostile images: each case patches a qemu-made image and checks that
// opening and reading it fails cleanly: an error naming the file and
// wrapping the expected image.Err* class, quickly and within bounded
// memory. Where qemu-img has a verdict on the same file, it must refuse
// it too (or, for the checks qimg adds, the case says why QEMU differs).

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/qimg/qimg/format/vdi"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

func TestHostile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "base.vdi")
	raw := filepath.Join(dir, "base.raw")
	if err := os.WriteFile(raw, bytes.Repeat([]byte("hostile "), 3<<17), 0o644); err != nil {
		t.Fatal(err)
	}
	qemutest.Img(t, "convert", "-f", "raw", "-O", "vdi", raw, p)
	base, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	u32 := func(off int, v uint32) func([]byte) []byte {
		return func(d []byte) []byte { le.PutUint32(d[off:], v); return d }
	}
	u64 := func(off int, v uint64) func([]byte) []byte {
		return func(d []byte) []byte { le.PutUint64(d[off:], v); return d }
	}
	for _, tc := range []struct {
		name  string
		patch func([]byte) []byte
		class error
		msg   string
		qemu  bool // qemu-img refuses it too
	}{
		{"empty", func([]byte) []byte { return nil }, image.ErrWrongFormat, "not a VDI", true},
		{"signature only", func(d []byte) []byte { return d[:0x44] }, image.ErrUnsupported, "version 0.0", true},
		{"header only", func(d []byte) []byte { return d[:512] }, image.ErrCorrupt, "block map", false},
		{"bad signature", u32(0x40, 0xbeda1080), image.ErrWrongFormat, "not a VDI", true},
		{"version 1.2", u32(0x44, 0x00010002), image.ErrUnsupported, "version 1.2", true},
		{"block size 0", u32(0x178, 0), image.ErrUnsupported, "block size 0", true},
		{"block size 3 MiB", u32(0x178, 3<<20), image.ErrUnsupported, "block size", true},
		{"block size 1 MiB + 1", u32(0x178, 1<<20+1), image.ErrUnsupported, "block size", true},
		{"sector size 4096", u32(0x168, 4096), image.ErrUnsupported, "sector size", true},
		{"unaligned block map", u32(0x154, 0x201), image.ErrUnsupported, "block map offset", true},
		{"unaligned data", u32(0x158, 0x401), image.ErrUnsupported, "data offset", true},
		{"disk size 2^63", u64(0x170, 1<<63), image.ErrLimit, "disk size", true},
		{"disk larger than its blocks", u64(0x170, 4<<20), image.ErrCorrupt, "larger than its 3 blocks", true},
		{"too many blocks", func(d []byte) []byte {
			le.PutUint32(d[0x180:], 0x40000000)
			return d
		}, image.ErrLimit, "blocks", true},
		{"huge block map past EOF", func(d []byte) []byte {
			le.PutUint32(d[0x180:], 0x3fffffff)
			le.PutUint64(d[0x170:], 0x3fffffff<<20)
			return d
		}, image.ErrCorrupt, "past the end of the file", false}, // QEMU allocates 4 GiB and reads zeros
		{"link UUID", func(d []byte) []byte { d[0x1a8] = 1; return d }, image.ErrUnsupported, "link UUID", true},
		{"parent UUID", func(d []byte) []byte { d[0x1c7] = 1; return d }, image.ErrUnsupported, "differencing", true},
		{"image type 4", u32(0x4c, 4), image.ErrUnsupported, "image type 4", false},
		{"block extra", u32(0x17c, 512), image.ErrUnsupported, "block extra", false},
		{"block map in header", u32(0x154, 0), image.ErrCorrupt, "overlaps the header", false},
		{"data over block map", u32(0x158, 0x200), image.ErrCorrupt, "overlaps the block map", false},
		{"block past EOF", func(d []byte) []byte { le.PutUint32(bmapAt(d, 1), 5); return d }, image.ErrCorrupt, "past the end of the file", false},
		{"block index 0xfffffffd", func(d []byte) []byte { le.PutUint32(bmapAt(d, 0), 0xfffffffd); return d }, image.ErrCorrupt, "past the end", false},
		{"truncated", func(d []byte) []byte { return d[:1024+2<<20] }, image.ErrCorrupt, "truncated", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.patch(bytes.Clone(base))
			const name = "hostile.vdi"
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			before := ms.TotalAlloc
			start := time.Now()
			img, err := vdi.NewReader(bytes.NewReader(d), int64(len(d)), name)
			if err == nil {
				buf := make([]byte, 1<<20)
				for off := int64(0); off < img.Size() && err == nil; off += int64(len(buf)) {
					if _, err = img.ReadAt(buf, off); err == io.EOF {
						err = nil
					}
				}
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, tc.class) || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q: want class %q naming the file and saying %q", err, tc.class, tc.msg)
			}
			runtime.ReadMemStats(&ms)
			if a := ms.TotalAlloc - before; a > 64<<20 {
				t.Errorf("allocated %d bytes", a)
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("took %v", el)
			}
			if tc.qemu {
				f := filepath.Join(t.TempDir(), "h.vdi")
				if err := os.WriteFile(f, d, 0o644); err != nil {
					t.Fatal(err)
				}
				if out, code, _ := qemutest.RunCode(t, "qemu-img", "info", "-f", "vdi", f); code == 0 {
					t.Errorf("qemu-img info accepts it:\n%s", out)
				}
			}
		})
	}
}
