package raw_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/qimg/qimg/format/raw"
)

// TestPartialSector checks that a raw file whose size is not a multiple of
// 512 looks like QEMU sees it: one whole last sector, zero-padded.
func TestPartialSector(t *testing.T) {
	p := filepath.Join(t.TempDir(), "odd.raw")
	if err := os.WriteFile(p, bytes.Repeat([]byte{7}, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := raw.Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if img.Size() != 1024 {
		t.Fatalf("size %d, want 1024", img.Size())
	}
	buf := make([]byte, 2000)
	n, err := img.ReadAt(buf, 0)
	if n != 1024 || err != io.EOF {
		t.Fatalf("ReadAt = %d, %v; want 1024, EOF", n, err)
	}
	want := append(bytes.Repeat([]byte{7}, 1000), make([]byte, 24)...)
	if !bytes.Equal(buf[:n], want) {
		t.Fatal("the padding of the last sector is not zeros")
	}
	e, err := img.Extent(1000, 100)
	if err != nil || e.Data || !e.Zero || e.Length != 24 {
		t.Fatalf("tail extent %+v, %v", e, err)
	}
}

// TestExtentsInAnyOrder asks a read-only image (which remembers the last
// run it found) about every 4 KiB of a file with holes, in random order,
// and compares with a writable one (which asks the file system each
// time); a write into a hole of the writable one shows at once.
func TestExtentsInAnyOrder(t *testing.T) {
	p := filepath.Join(t.TempDir(), "holes.raw")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{1}, 64<<10)
	for _, off := range []int64{0, 1 << 20, 3 << 20} {
		if _, err := f.WriteAt(data, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(4<<20 + 100); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ro, err := raw.Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rw, err := raw.Open(p, &raw.OpenOptions{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	for _, i := range rand.Perm(int(ro.Size() / 4096)) {
		off := int64(i) * 4096
		got, err1 := ro.Extent(off, 1<<30)
		want, err2 := rw.Extent(off, 1<<30)
		if err1 != nil || err2 != nil || got != want {
			t.Fatalf("extent at %#x: read-only %+v %v, writable %+v %v", off, got, err1, want, err2)
		}
	}
	if e, _ := rw.Extent(2<<20, 4096); e.Data {
		t.Fatal("the temporary directory's file system reports no holes: the test needs SEEK_HOLE")
	}
	if _, err := rw.WriteAt(data, 2<<20); err != nil {
		t.Fatal(err)
	}
	if e, err := rw.Extent(2<<20, 4096); err != nil || !e.Data {
		t.Fatalf("after a write into a hole: %+v, %v", e, err)
	}
}

// TestResize grows a raw image with a hole, refuses to shrink it without
// shrink set or when it is read-only, and shrinks it with shrink.
func TestResize(t *testing.T) {
	p := filepath.Join(t.TempDir(), "r.raw")
	if err := os.WriteFile(p, bytes.Repeat([]byte{3}, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	ro, err := raw.Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ro.Resize(8192, false); err == nil {
		t.Error("a read-only image resized")
	}
	ro.Close()
	img, err := raw.Open(p, &raw.OpenOptions{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if err := img.Resize(1<<20+100, false); err != nil || img.Size() != 1<<20+512 {
		t.Fatalf("grow: %v, size %d", err, img.Size())
	}
	if e, err := img.Extent(8192, 4096); err != nil || e.Data {
		t.Fatalf("grown space %+v, %v: want a hole", e, err)
	}
	if err := img.Resize(2048, false); err == nil {
		t.Error("shrank without shrink set")
	}
	if err := img.Resize(2048, true); err != nil || img.Size() != 2048 {
		t.Fatalf("shrink: %v, size %d", err, img.Size())
	}
	if st, _ := os.Stat(p); st.Size() != 2048 {
		t.Fatalf("file size %d after shrinking to 2048", st.Size())
	}
}
