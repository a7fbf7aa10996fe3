package image_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/qimg/qimg/format/raw"
	"github.com/qimg/qimg/image"
)

// A section reads, maps and writes only its own window of the image.
func TestSection(t *testing.T) {
	p := filepath.Join(t.TempDir(), "disk.raw")
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := raw.Open(p, &raw.OpenOptions{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if _, err := image.NewSection(img, 60<<10, 8<<10); !errors.Is(err, image.ErrCorrupt) {
		t.Fatalf("a window past the end: %v", err)
	}
	sec, err := image.NewSection(img, 4096, 8192)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, err := sec.ReadAt(buf, 8192-50)
	if n != 50 || !errors.Is(err, io.EOF) || !bytes.Equal(buf[:50], data[4096+8192-50:4096+8192]) {
		t.Fatalf("read across the end: %d %v", n, err)
	}
	e, err := sec.Extent(0, 1<<20)
	if err != nil || e.Start != 0 || e.Length != 8192 || !e.Data {
		t.Fatalf("extent %+v %v", e, err)
	}
	w := sec.(image.WritableImage)
	if _, err := w.WriteAt(make([]byte, 10), 8190); !errors.Is(err, image.ErrInvalidArgument) {
		t.Fatalf("write across the end: %v", err)
	}
	if _, err := w.WriteAt([]byte("XY"), 0); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if string(got[4096:4098]) != "XY" || !bytes.Equal(got[:4096], data[:4096]) || !bytes.Equal(got[4098:], data[4098:]) {
		t.Fatal("the write landed outside its place")
	}
}
