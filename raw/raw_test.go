package raw_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/qimg/qimg/raw"
)

// TestPartialSector checks that a raw file whose size is not a multiple of
// 512 looks like QEMU sees it: one whole last sector, zero-padded.
func TestPartialSector(t *testing.T) {
	p := filepath.Join(t.TempDir(), "odd.raw")
	if err := os.WriteFile(p, bytes.Repeat([]byte{7}, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := raw.Open(p, false)
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
