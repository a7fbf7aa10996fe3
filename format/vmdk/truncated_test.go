package vmdk

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

// TestTruncatedSparse cuts qemu-img's streamOptimized and monolithicSparse
// images in the middle of their grains: reading the lost grains must fail
// with image.ErrCorrupt naming the file, never return zeros (QEMU pads a
// truncated monolithicSparse file with zeros), while block status still
// lists the grains as qemu-img map does.
func TestTruncatedSparse(t *testing.T) {
	for _, sub := range []string{"streamOptimized", "monolithicSparse"} {
		t.Run(sub, func(t *testing.T) {
			dir := t.TempDir()
			src, data := diskLike(t, dir, 4<<20, 7)
			p := filepath.Join(dir, "t.vmdk")
			qemutest.Img(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat="+sub, src, p)
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(p, st.Size()/2); err != nil {
				t.Fatal(err)
			}
			img, err := Open(p, nil)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer img.Close()
			for _, err := range image.Extents(img, 0, img.Size()) {
				if err != nil {
					t.Fatalf("block status of a truncated image: %v", err)
				}
			}
			buf := make([]byte, img.Size())
			_, err = img.ReadAt(buf, 0)
			if !errors.Is(err, image.ErrCorrupt) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "past end of file") {
				t.Fatalf("ReadAt of a truncated image: %v, want image.ErrCorrupt naming %s", err, p)
			}
			// Grain by grain: each read either returns the source's bytes
			// or fails; none returns zeros where data was.
			failed := 0
			for off := int64(0); off < img.Size(); off += 64 << 10 {
				g := buf[:64<<10]
				if _, err := img.ReadAt(g, off); err != nil {
					failed++
					continue
				}
				if string(g) != string(data[off:off+64<<10]) {
					t.Fatalf("grain at %d reads other bytes than the source", off)
				}
			}
			if failed == 0 {
				t.Fatal("no read failed on a file cut in half")
			}
		})
	}
}
