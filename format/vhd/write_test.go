package vhd

// Writer tests: a raw source is written through Writer the way the
// conversion pipeline does it, and qemu-img judges the result against
// `qemu-img convert -O vpc` of the same source.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

// pipeWrite feeds src into w as convert does: 1 MiB units in order, each
// split into runs of 4 KiB blocks that are data (WriteAt) or zeros
// (WriteZeroes). The part of the disk past the source is left alone.
func pipeWrite(t testing.TB, w *Writer, src []byte) {
	t.Helper()
	const unit, blk = 1 << 20, 4096
	for off := 0; off < len(src); off += unit {
		u := src[off:min(off+unit, len(src))]
		for i := 0; i < len(u); {
			zero := isZero(u[i:min(i+blk, len(u))])
			j := i + blk
			for j < len(u) && isZero(u[j:min(j+blk, len(u))]) == zero {
				j += blk
			}
			j = min(j, len(u))
			var err error
			if zero {
				err = w.WriteZeroes(int64(off+i), int64(j-i))
			} else {
				_, err = w.WriteAt(u[i:j], int64(off+i))
			}
			if err != nil {
				t.Fatal(err)
			}
			i = j
		}
	}
}

// writeVHD writes src (padded to whole sectors, as raw images are) to a
// new VHD at p through Writer.
func writeVHD(t testing.TB, p string, src []byte, opts CreateOptions) *Writer {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := Create(f, p, int64(len(src)), opts)
	if err != nil {
		t.Fatal(err)
	}
	pipeWrite(t, w, src)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil { // idempotent
		t.Fatalf("second Close: %v", err)
	}
	return w
}

// headerFields are the footer and header fields qemu-img sets the same
// way every time (not the timestamp, UUID and checksums).
func headerFields(t testing.TB, b []byte) string {
	t.Helper()
	be := binary.BigEndian
	f := b[len(b)-footerSize:]
	s := fmt.Sprintf("features %#x version %#x data_offset %#x creator %q ver %#x os %q orig %d cur %d chs %d/%d/%d type %d saved %d",
		be.Uint32(f[8:]), be.Uint32(f[12:]), be.Uint64(f[16:]), f[28:32], be.Uint32(f[32:]), f[36:40],
		be.Uint64(f[40:]), be.Uint64(f[48:]), be.Uint16(f[56:]), f[58], f[59], be.Uint32(f[60:]), f[84])
	if !bytes.Equal(f[85:], make([]byte, footerSize-85)) {
		s += " reserved-not-zero"
	}
	if hasCookie(b) && len(b) > footerSize {
		if !bytes.Equal(b[:footerSize], f) {
			s += " footer-copies-differ"
		}
		h := b[512:1536]
		s += fmt.Sprintf(" | dyn next %#x bat %d version %#x entries %d block %d rest-zero %v",
			be.Uint64(h[8:]), be.Uint64(h[16:]), be.Uint32(h[24:]), be.Uint32(h[28:]), be.Uint32(h[32:]),
			bytes.Equal(h[40:], make([]byte, dynHeaderSize-40)))
		entries := int64(be.Uint32(h[28:]))
		bat := b[1536 : 1536+(entries*4+511)&^511]
		if !bytes.Equal(bat[entries*4:], bytes.Repeat([]byte{0xff}, len(bat)-int(entries*4))) {
			s += " bat-padding-not-ff"
		}
	}
	return s
}

func TestWriter(t *testing.T) {
	dir := t.TempDir()
	// qemu-img check does not know vpc (exit 63). Asserted so that the
	// tests notice when it does and can use it.
	{
		p := filepath.Join(dir, "check.vhd")
		qemutest.Img(t, "create", "-f", "vpc", p, "1M")
		if out, code, stderr := qemutest.RunCode(t, "qemu-img", "check", p); code != 63 {
			t.Fatalf("qemu-img check on vpc: exit %d (want 63: not supported)\n%s%s", code, out, stderr)
		}
	}
	for _, shape := range diskShapes {
		srcPath := makeDisk(t, dir, shape.name+".raw", shape.size, 7, shape.regions)
		src := readFile(t, srcPath)
		// A raw image is whole sectors to QEMU.
		src = append(src, make([]byte, (int64(len(src))+511)&^511-int64(len(src)))...)
		for _, v := range vhdVariants {
			name := fmt.Sprintf("%s-%s-force-%s", shape.name, v.subformat, v.force)
			t.Run(name, func(t *testing.T) {
				ours := filepath.Join(dir, name+".ours.vhd")
				theirs := filepath.Join(dir, name+".qemu.vhd")
				w := writeVHD(t, ours, src, CreateOptions{Subformat: v.subformat, ForceSize: v.force == "on"})
				qemutest.Img(t, "convert", "-f", "raw", "-O", "vpc", "-o",
					"subformat="+v.subformat+",force_size="+v.force, srcPath, theirs)

				want := qemuVirtualSize(t, theirs, "vpc")
				if got := qemuVirtualSize(t, ours, "vpc"); got != want || w.Size() != want {
					t.Fatalf("virtual size: qemu-img info says %d, Writer.Size() %d; qemu-img convert gives %d", got, w.Size(), want)
				}
				if vs, err := VirtualSize(int64(len(src)), v.force == "on"); err != nil || vs != want {
					t.Fatalf("VirtualSize = %d, %v; want %d", vs, err, want)
				}
				out, code, stderr := qemutest.RunCode(t, "qemu-img", "compare", "-f", "raw", "-F", "vpc", srcPath, ours)
				if code != 0 {
					t.Fatalf("qemu-img compare: exit %d\n%s%s", code, out, stderr)
				}
				// qemu-img compare checks that the VHD's tail beyond the
				// source reads as zeros; check the bytes too.
				raw := qemuRaw(t, ours)
				if !bytes.Equal(raw[:len(src)], src) || !isZero(raw[len(src):]) {
					t.Fatal("qemu-img reads different data")
				}
				img, err := Open(ours)
				if err != nil {
					t.Fatal(err)
				}
				if got := readAll(t, img); sum(got) != sum(raw) {
					t.Fatal("our reader reads our image differently from qemu-img")
				}
				img.Close()

				// Same layout and fields as qemu-img's image.
				ob, qb := readFile(t, ours), readFile(t, theirs)
				if a, b := headerFields(t, ob), headerFields(t, qb); a != b {
					t.Fatalf("header fields differ:\n ours %s\nqemu %s", a, b)
				}
				if !reflect.DeepEqual(qemuMap(t, ours), qemuMap(t, theirs)) {
					t.Fatalf("qemu-img map differs:\n ours %+v\nqemu %+v", qemuMap(t, ours), qemuMap(t, theirs))
				}
				slack := int64(len(qb))/100 + 2<<20 + 512
				if d := int64(len(ob)) - int64(len(qb)); d > slack || -d > slack {
					t.Fatalf("file size %d, qemu-img's %d", len(ob), len(qb))
				}
				t.Logf("ours %d bytes (%d KiB on disk), qemu-img's %d bytes (%d KiB)", len(ob), du(t, ours), len(qb), du(t, theirs))
			})
		}
	}
}

// du is the space a file takes on disk, in KiB.
func du(t testing.TB, p string) int64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return statBlocks(st) / 2
}

// TestWriterOrder: the Writer is a sequential target; anything out of
// order, overlapping or past the end is refused.
func TestWriterOrder(t *testing.T) {
	dir := t.TempDir()
	for _, sf := range []string{"dynamic", "fixed"} {
		p := filepath.Join(dir, sf+".vhd")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		w, err := Create(f, p, 4<<20, CreateOptions{Subformat: sf})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteAt([]byte("abc"), 1000); err != nil {
			t.Fatal(err)
		}
		bad := []struct {
			what string
			err  error
		}{
			{"WriteAt before the previous end", func() error { _, err := w.WriteAt([]byte("x"), 1002); return err }()},
			{"WriteZeroes before the previous end", w.WriteZeroes(0, 512)},
			{"negative WriteZeroes", w.WriteZeroes(2000, -1)},
			{"WriteAt past the end", func() error { _, err := w.WriteAt([]byte("x"), w.Size()); return err }()},
			{"WriteZeroes past the end", w.WriteZeroes(w.Size()-512, 1024)},
		}
		for _, b := range bad {
			if !errors.Is(b.err, image.ErrInvalidArgument) || !strings.Contains(b.err.Error(), p) {
				t.Errorf("%s %s: %v, want ErrInvalidArgument naming the file", sf, b.what, b.err)
			}
		}
		// Refused calls do not move the position.
		if err := w.WriteZeroes(1003, 5); err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteAt([]byte("def"), 3<<20); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteAt([]byte("x"), 4<<20-1); !errors.Is(err, image.ErrInvalidArgument) {
			t.Errorf("%s: WriteAt after Close: %v", sf, err)
		}
		raw := qemuRaw(t, p)
		want := make([]byte, w.Size())
		copy(want[1000:], "abc")
		copy(want[3<<20:], "def")
		if !bytes.Equal(raw, want) {
			t.Fatalf("%s: qemu-img reads different data", sf)
		}
	}
	if _, err := Create(nil, "x.vhd", 1<<20, CreateOptions{Subformat: "sparse"}); !errors.Is(err, image.ErrInvalidArgument) {
		t.Errorf("unknown subformat: %v", err)
	}
	if _, err := Create(nil, "x.vhd", -1, CreateOptions{}); !errors.Is(err, image.ErrInvalidArgument) {
		t.Errorf("negative size: %v", err)
	}
}

// TestWriterZeroBlocks: a dynamic disk allocates a block only for
// non-zero data, even when zeros arrive through WriteAt (qemu-img -S 0).
func TestWriterZeroBlocks(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "z.vhd")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := Create(f, p, 8<<20, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Zeros as data in block 0, one byte in block 1 after zeros, a zero
	// run, then data straddling blocks 2 and 3.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = w.WriteAt(make([]byte, 2<<20+100), 0)
	must(err)
	_, err = w.WriteAt([]byte{7}, 2<<20+100)
	must(err)
	must(w.WriteZeroes(2<<20+101, 1<<20))
	_, err = w.WriteAt(bytes.Repeat([]byte{9}, 4096), 6<<20-2048)
	must(err)
	must(w.Close())
	var m []status
	for _, s := range qemuMap(t, p) {
		m = append(m, status{Start: s.Start, Length: s.Length, Data: s.Data})
	}
	want := []status{{0, 2 << 20, false, false, false}, {2 << 20, 6 << 20, false, false, true},
		{8 << 20, w.Size() - 8<<20, false, false, false}}
	if m = mergeRuns(m); !reflect.DeepEqual(m, want) {
		t.Fatalf("allocated blocks:\n got %+v\nwant %+v", m, want)
	}
	if n := len(readFile(t, p)); n != 2048+3*(512+2<<20)+512 {
		t.Fatalf("file is %d bytes, want three blocks", n)
	}
}

// TestCreateSizes: for sizes across the CHS algorithm's branches, an empty
// disk from Create has the virtual size, geometry and layout of
// `qemu-img create -f vpc`, and sizes qemu-img refuses are refused.
func TestCreateSizes(t *testing.T) {
	dir := t.TempDir()
	sizes := []int64{0, 1, 511, 513, 1 << 20, 100<<20 + 7, 32 << 30, 127<<30 + 5000, 200 << 30, 2040 << 30}
	for _, size := range sizes {
		for _, force := range []bool{false, true} {
			for _, sf := range []string{"dynamic", "fixed"} {
				if sf == "fixed" && size > 1<<30 {
					continue // a sparse file, but keep the test's files small
				}
				name := fmt.Sprintf("%d-%s-%v", size, sf, force)
				ours, theirs := filepath.Join(dir, "ours.vhd"), filepath.Join(dir, "qemu.vhd")
				f, err := os.Create(ours)
				if err != nil {
					t.Fatal(err)
				}
				w, err := Create(f, ours, size, CreateOptions{Subformat: sf, ForceSize: force})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				qemutest.Img(t, "create", "-f", "vpc", "-o", fmt.Sprintf("subformat=%s,force_size=%v", sf, force), theirs, fmt.Sprint(size))
				if size == 0 && sf == "fixed" {
					// The footer alone: QEMU 7.2 sees the cookie at offset
					// 0, takes it for a dynamic disk and cannot open it.
					// qimg opens it as an empty fixed disk.
					if _, code, _ := qemutest.RunCode(t, "qemu-img", "info", "-f", "vpc", theirs); code == 0 {
						t.Error("qemu-img now opens an empty fixed VHD: compare it again")
					}
					for _, p := range []string{ours, theirs} {
						img, err := Open(p)
						if err != nil || img.Size() != 0 || img.Subformat() != "fixed" {
							t.Fatalf("%s: empty fixed disk: %v", name, err)
						}
						img.Close()
					}
					if a, b := headerFields(t, readFile(t, ours)), headerFields(t, readFile(t, theirs)); a != b {
						t.Errorf("%s: header fields differ:\n ours %s\nqemu %s", name, a, b)
					}
					continue
				}
				want := qemuVirtualSize(t, theirs, "vpc")
				if got := qemuVirtualSize(t, ours, "vpc"); got != want || w.Size() != want {
					t.Errorf("%s: qemu-img info says %d, Size() %d; qemu-img create gives %d", name, got, w.Size(), want)
				}
				if a, b := headerFields(t, readFile(t, ours)), headerFields(t, readFile(t, theirs)); a != b {
					t.Errorf("%s: header fields differ:\n ours %s\nqemu %s", name, a, b)
				}
			}
		}
	}
	for _, force := range []bool{false, true} {
		size := int64(2040<<30 + 512)
		p := filepath.Join(dir, "big.vhd")
		if _, code, _ := qemutest.RunCode(t, "qemu-img", "create", "-f", "vpc", "-o", fmt.Sprintf("force_size=%v", force), p, fmt.Sprint(size)); code == 0 {
			t.Errorf("qemu-img create accepts %d bytes", size)
		}
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Create(f, p, size, CreateOptions{ForceSize: force}); !errors.Is(err, image.ErrInvalidArgument) || !strings.Contains(err.Error(), "2040 GiB") {
			t.Errorf("Create(%d bytes, force %v) = %v", size, force, err)
		}
		f.Close()
	}
}

// TestWriterFlush: after Flush the file is a complete VHD of what has been
// written, and writing on afterwards still gives the right image.
func TestWriterFlush(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.vhd")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := Create(f, p, 6<<20, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, w.Size())
	copy(want[100:], "first block")
	copy(want[5<<20:], "third block")
	if _, err := w.WriteAt(want[:4096], 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	mid := make([]byte, len(want))
	copy(mid, want[:4096])
	if got := qemuRaw(t, writeFile(t, filepath.Join(dir, "mid.vhd"), readFile(t, p))); !bytes.Equal(got, mid) {
		t.Fatal("after Flush, qemu-img reads different data")
	}
	if _, err := w.WriteAt(want[5<<20:5<<20+4096], 5<<20); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := qemuRaw(t, p); !bytes.Equal(got, want) {
		t.Fatal("after Close, qemu-img reads different data")
	}
	if err := w.Flush(); !errors.Is(err, image.ErrInvalidArgument) {
		t.Errorf("Flush after Close: %v", err)
	}
}
