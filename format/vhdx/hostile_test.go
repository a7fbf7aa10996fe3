package vhdx_test

// Hostile images: each case patches a qemu-made image (fixing the CRCs
// it breaks, so the patch reaches the code under test) and checks that
// opening and reading it fails cleanly: an error that names the file and
// wraps the expected image.Err* class, quickly and within bounded memory.

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

	"github.com/qimg/qimg/format/vhdx"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

var le = binary.LittleEndian

// hsImage is a qemu-made image being patched.
type hsImage struct {
	d []byte
}

func (h *hsImage) headers(fn func(hd []byte)) {
	for _, off := range []int{64 << 10, 128 << 10} {
		fn(h.d[off : off+4096])
		setCRC(h.d, off, 4096)
	}
}

func (h *hsImage) current(fn func(hd []byte)) {
	off := currentHeader(h.d)
	fn(h.d[off : off+4096])
	setCRC(h.d, off, 4096)
}

// regions patches both region tables.
func (h *hsImage) regions(fn func(rt []byte)) {
	for _, off := range []int{192 << 10, 256 << 10} {
		fn(h.d[off : off+64<<10])
		setCRC(h.d, off, 64<<10)
	}
}

// region patches the region table entry whose GUID starts with guid, in
// both tables: fn gets the 32-byte entry.
func (h *hsImage) region(guid uint32, fn func(e []byte)) {
	h.regions(func(rt []byte) {
		for i := 0; i < int(le.Uint32(rt[8:])); i++ {
			if e := rt[16+32*i : 48+32*i]; le.Uint32(e) == guid {
				fn(e)
			}
		}
	})
}

func (h *hsImage) regionOff(guid uint32) int {
	var off int
	h.region(guid, func(e []byte) { off = int(le.Uint64(e[16:])) })
	return off
}

// item patches the metadata table entry whose GUID starts with guid: fn
// gets the entry and the item's bytes.
func (h *hsImage) item(guid uint32, fn func(e, val []byte)) {
	m := h.regionOff(guidMeta)
	for i := 0; i < int(le.Uint16(h.d[m+10:])); i++ {
		if e := h.d[m+32+32*i : m+64+32*i]; le.Uint32(e) == guid {
			o := m + int(le.Uint32(e[16:]))
			fn(e, h.d[o:o+int(le.Uint32(e[20:]))])
		}
	}
}

func (h *hsImage) bat(b int, fn func(uint64) uint64) {
	o := h.regionOff(guidBAT) + 8*b
	le.PutUint64(h.d[o:], fn(le.Uint64(h.d[o:])))
}

const (
	guidBAT     = 0x2DC27766
	guidMeta    = 0x8B7CA206
	guidParams  = 0xCAA16737
	guidSize    = 0x2FA54224
	guidLogical = 0x8141BF1D
)

func TestHostile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "base.vhdx")
	raw := filepath.Join(dir, "base.raw")
	if err := os.WriteFile(raw, bytes.Repeat([]byte("hostile "), 3<<17), 0o644); err != nil {
		t.Fatal(err)
	}
	qemutest.Img(t, "convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M", raw, p)
	base, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	const (
		opens = iota // Open succeeds, reading fails
		fails
	)
	for _, tc := range []struct {
		name  string
		patch func(h *hsImage)
		class error
		msg   string
	}{
		{"empty file", func(h *hsImage) { h.d = nil }, image.ErrWrongFormat, "signature"},
		{"signature only", func(h *hsImage) { h.d = h.d[:8] }, image.ErrCorrupt, "no valid VHDX header"},
		{"header section only", func(h *hsImage) { h.d = h.d[:1<<20] }, image.ErrCorrupt, "past the end of the file"},
		{"both header CRCs bad", func(h *hsImage) { h.d[64<<10+200]++; h.d[128<<10+200]++ }, image.ErrCorrupt, "bad CRC-32C"},
		{"header version 2", func(h *hsImage) { h.headers(func(hd []byte) { le.PutUint16(hd[66:], 2) }) }, image.ErrCorrupt, "version 2"},
		{"same sequence, different headers", func(h *hsImage) {
			h.headers(func(hd []byte) { le.PutUint64(hd[8:], 7) })
			h.current(func(hd []byte) { hd[20]++ })
		}, image.ErrCorrupt, "sequence number 7"},
		{"log version 1", func(h *hsImage) { h.current(func(hd []byte) { le.PutUint16(hd[64:], 1) }) }, image.ErrUnsupported, "log version"},
		{"log offset unaligned", func(h *hsImage) { h.current(func(hd []byte) { le.PutUint64(hd[72:], 1<<20+512) }) }, image.ErrCorrupt, "log offset"},
		{"log past EOF", func(h *hsImage) { h.current(func(hd []byte) { le.PutUint32(hd[68:], 0xfff00000) }) }, image.ErrCorrupt, "log"},
		{"both region tables bad", func(h *hsImage) { h.d[192<<10+100]++; h.d[256<<10+100]++ }, image.ErrCorrupt, "no valid region table"},
		{"region count 5000", func(h *hsImage) { h.regions(func(rt []byte) { le.PutUint32(rt[8:], 5000) }) }, image.ErrCorrupt, "5000 entries"},
		{"no BAT region", func(h *hsImage) { h.region(guidBAT, func(e []byte) { e[0]++ }) }, image.ErrCorrupt, "lacks the BAT"},
		{"two BAT regions", func(h *hsImage) {
			var g []byte
			h.region(guidBAT, func(e []byte) { g = bytes.Clone(e[:16]) })
			h.region(guidMeta, func(e []byte) { copy(e, g) })
		}, image.ErrCorrupt, "two BAT"},
		{"unknown required region", func(h *hsImage) {
			h.regions(func(rt []byte) {
				n := le.Uint32(rt[8:])
				e := rt[16+32*n:]
				copy(e, "some region guid")
				le.PutUint64(e[16:], 100<<20)
				le.PutUint32(e[24:], 1<<20)
				le.PutUint32(e[28:], 1)
				le.PutUint32(rt[8:], n+1)
			})
		}, image.ErrUnsupported, "required region"},
		{"metadata overlaps BAT", func(h *hsImage) {
			b := h.regionOff(guidBAT)
			h.region(guidMeta, func(e []byte) { le.PutUint64(e[16:], uint64(b)+4096) })
		}, image.ErrCorrupt, "overlaps"},
		{"BAT in header section", func(h *hsImage) { h.region(guidBAT, func(e []byte) { le.PutUint64(e[16:], 0) }) }, image.ErrCorrupt, "overlaps the header section"},
		{"BAT overlaps log", func(h *hsImage) { h.region(guidBAT, func(e []byte) { le.PutUint64(e[16:], 1<<20) }) }, image.ErrCorrupt, "overlaps the log"},
		{"BAT past EOF", func(h *hsImage) {
			h.region(guidBAT, func(e []byte) { le.PutUint64(e[16:], uint64(len(h.d))+1<<20) })
		}, image.ErrCorrupt, "BAT"},
		{"BAT region too small", func(h *hsImage) { h.region(guidBAT, func(e []byte) { le.PutUint32(e[24:], 8) }) }, image.ErrCorrupt, "too small"},
		{"region offset 2^64-1", func(h *hsImage) { h.region(guidBAT, func(e []byte) { le.PutUint64(e[16:], ^uint64(0)) }) }, image.ErrCorrupt, "past any file"},
		{"metadata past EOF", func(h *hsImage) {
			h.region(guidMeta, func(e []byte) { le.PutUint64(e[16:], 1<<40) })
		}, image.ErrCorrupt, "metadata region"},
		{"metadata signature", func(h *hsImage) { h.d[h.regionOff(guidMeta)]++ }, image.ErrCorrupt, "signature"},
		{"metadata count 3000", func(h *hsImage) { le.PutUint16(h.d[h.regionOff(guidMeta)+10:], 3000) }, image.ErrCorrupt, "3000 entries"},
		{"item outside region", func(h *hsImage) {
			h.item(guidSize, func(e, _ []byte) { le.PutUint32(e[16:], 0xfffffff0) })
		}, image.ErrCorrupt, "outside the metadata region"},
		{"item too short", func(h *hsImage) { h.item(guidSize, func(e, _ []byte) { le.PutUint32(e[20:], 4) }) }, image.ErrCorrupt, "needs 8"},
		{"item missing", func(h *hsImage) { h.item(guidSize, func(e, _ []byte) { e[0]++; e[24] &^= 4 }) }, image.ErrCorrupt, "lacks the virtual disk size"},
		{"duplicate item", func(h *hsImage) {
			var g []byte
			h.item(guidSize, func(e, _ []byte) { g = bytes.Clone(e[:16]) })
			h.item(guidLogical, func(e, _ []byte) { copy(e, g) })
		}, image.ErrCorrupt, "twice"},
		{"unknown required item", func(h *hsImage) {
			h.item(guidSize, func(e, _ []byte) { e[0]++; le.PutUint32(e[24:], 4) })
		}, image.ErrUnsupported, "required metadata item"},
		{"has parent", func(h *hsImage) { h.item(guidParams, func(_, v []byte) { le.PutUint32(v[4:], 2) }) }, image.ErrUnsupported, "differencing"},
		{"block size 0", func(h *hsImage) { h.item(guidParams, func(_, v []byte) { le.PutUint32(v, 0) }) }, image.ErrCorrupt, "block size 0"},
		{"block size 3 MiB", func(h *hsImage) { h.item(guidParams, func(_, v []byte) { le.PutUint32(v, 3<<20) }) }, image.ErrCorrupt, "power of two"},
		{"block size 512 MiB", func(h *hsImage) { h.item(guidParams, func(_, v []byte) { le.PutUint32(v, 512<<20) }) }, image.ErrCorrupt, "power of two"},
		{"block size 512 KiB", func(h *hsImage) { h.item(guidParams, func(_, v []byte) { le.PutUint32(v, 512<<10) }) }, image.ErrCorrupt, "power of two"},
		{"logical sector 1000", func(h *hsImage) { h.item(guidLogical, func(_, v []byte) { le.PutUint32(v, 1000) }) }, image.ErrCorrupt, "logical sector size"},
		{"size 64 TiB, BAT region 1 MiB", func(h *hsImage) { h.item(guidSize, func(_, v []byte) { le.PutUint64(v, 64<<40) }) }, image.ErrCorrupt, "too small"},
		{"size 2^63", func(h *hsImage) { h.item(guidSize, func(_, v []byte) { le.PutUint64(v, 1<<63) }) }, image.ErrLimit, "64 TiB"},
		{"huge BAT past EOF", func(h *hsImage) {
			h.item(guidSize, func(_, v []byte) { le.PutUint64(v, 60<<40) })
			h.region(guidBAT, func(e []byte) { le.PutUint32(e[24:], 0xfff00000) })
			h.region(guidMeta, func(e []byte) { le.PutUint64(e[16:], 5000<<20) }) // out of the BAT's way
		}, image.ErrCorrupt, ""},
		{"block in header section", func(h *hsImage) { h.bat(0, func(uint64) uint64 { return 6 }) }, image.ErrCorrupt, "overlaps the header section"},
		{"block on metadata", func(h *hsImage) {
			m := uint64(h.regionOff(guidMeta))
			h.bat(0, func(uint64) uint64 { return m | 6 })
		}, image.ErrCorrupt, "overlaps the metadata"},
		{"block past EOF", func(h *hsImage) { h.bat(2, func(uint64) uint64 { return 1<<63 | 6 }) }, image.ErrCorrupt, "past the end of the file"},
		{"truncated last block", func(h *hsImage) { h.d = h.d[:len(h.d)-4096] }, image.ErrCorrupt, "truncated"},
		{"dirty log", func(h *hsImage) { h.current(func(hd []byte) { hd[50] = 1 }) }, image.ErrUnsupported, "VHDX log is dirty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &hsImage{d: bytes.Clone(base)}
			tc.patch(h)
			const name = "hostile.vhdx"
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			before := ms.TotalAlloc
			start := time.Now()
			img, err := vhdx.NewReader(bytes.NewReader(h.d), int64(len(h.d)), name)
			if err == nil {
				buf := make([]byte, 1<<20)
				for off := int64(0); off < img.Size() && err == nil; off += int64(len(buf)) {
					_, err = img.ReadAt(buf, off)
					if err == io.EOF {
						err = nil
					}
				}
			}
			if err == nil {
				t.Fatalf("no error")
			}
			if !errors.Is(err, tc.class) || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q: want class %q naming the file and saying %q", err, tc.class, tc.msg)
			}
			runtime.ReadMemStats(&ms)
			if a := ms.TotalAlloc - before; a > 64<<20 {
				t.Errorf("allocated %d bytes", a)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}
