package image_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/qimg/qimg/image"
)

func writeFile(t *testing.T, dir, name string, b []byte) *os.File {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestCopyFileRange gives CopyFileRange a p that differs from the source
// file, so the result shows which bytes the kernel copied (0xab, from
// the file) and which were written from memory (0x11, from p).
func TestCopyFileRange(t *testing.T) {
	shm, err := os.MkdirTemp("/dev/shm", "qimg-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	p := bytes.Repeat([]byte{0x11}, 300000)
	for _, c := range []struct {
		name   string
		srcDir string
		srcLen int // the source file ends early: the rest comes from p
		copied int // bytes that come from the file
	}{
		{"same-fs", "", 400000, 300000},
		{"short-source", "", 100000 + 5000, 100000},
		{"other-fs", shm, 400000, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.srcDir == "" {
				c.srcDir = dir
			}
			src := writeFile(t, c.srcDir, "src", bytes.Repeat([]byte{0xab}, c.srcLen))
			dst := writeFile(t, dir, "dst", nil)
			n, err := image.CopyFileRange(dst, 4096, p, src, 5000)
			if err != nil || n != len(p) {
				t.Fatalf("copied %d of %d: %v", n, len(p), err)
			}
			want := append(make([]byte, 4096), bytes.Repeat([]byte{0xab}, c.copied)...)
			want = append(want, p[c.copied:]...)
			got, err := os.ReadFile(dst.Name())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, want %d; from the file up to %d", len(got), len(want), bytes.IndexByte(got[4096:], 0x11))
			}
		})
	}
}

// TestCopyFileData copies 3 MiB (more than the fallback's buffer) of a
// source that ends early: by the kernel on one file system, read and
// written across file systems, zeros past the source's end either way.
// KernelCopies tells the two apart beforehand.
func TestCopyFileData(t *testing.T) {
	shm, err := os.MkdirTemp("/dev/shm", "qimg-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	const n, srcLen, srcOff = 3 << 20, 2<<20 + 5000, 5000
	source := make([]byte, srcLen)
	for i := range source {
		source[i] = byte(i / 4096)
	}
	for name, srcDir := range map[string]string{"same-fs": "", "other-fs": shm} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if srcDir == "" {
				srcDir = dir
			}
			src := writeFile(t, srcDir, "src", source)
			dst := writeFile(t, dir, "dst", nil)
			if kernel := image.KernelCopies(dst, src); kernel != (name == "same-fs") {
				t.Errorf("KernelCopies %v on %s", kernel, name)
			}
			if err := image.CopyFileData(dst, 512, src, srcOff, n); err != nil {
				t.Fatal(err)
			}
			want := append(make([]byte, 512), source[srcOff:]...)
			want = append(want, make([]byte, 512+n-len(want))...)
			got, err := os.ReadFile(dst.Name())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, want %d", len(got), len(want))
			}
		})
	}
}

// TestCopyFileRangeError: an error other than the kernel refusing the
// copy is returned, not covered by a fallback write.
func TestCopyFileRangeError(t *testing.T) {
	dir := t.TempDir()
	src := writeFile(t, dir, "src", bytes.Repeat([]byte{1}, 4096))
	writeFile(t, dir, "dst", nil)
	dst, err := os.Open(filepath.Join(dir, "dst")) // read-only
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if n, err := image.CopyFileRange(dst, 0, make([]byte, 4096), src, 0); err == nil {
		t.Fatalf("copied %d bytes into a read-only file", n)
	}
}
