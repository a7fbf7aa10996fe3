package redo

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/qimg/qimg/image"
)

// memDevice is a device in memory; writes land at once, as they would
// in the page cache of a process that is then killed.
type memDevice struct {
	b       []byte
	flushes int
}

func newMem(size int, seed uint64) *memDevice {
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return &memDevice{b: b}
}

func (m *memDevice) Size() int64  { return int64(len(m.b)) }
func (m *memDevice) Close() error { return nil }
func (m *memDevice) Flush() error { m.flushes++; return nil }

func (m *memDevice) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset: %w", image.ErrInvalidArgument)
	}
	if off >= m.Size() {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memDevice) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > m.Size() {
		return 0, fmt.Errorf("write outside: %w", image.ErrInvalidArgument)
	}
	return copy(m.b[off:], p), nil
}

func (m *memDevice) WriteZeroes(off, n int64) error {
	if off < 0 || off+n > m.Size() {
		return fmt.Errorf("write outside: %w", image.ErrInvalidArgument)
	}
	clear(m.b[off : off+n])
	return nil
}

func (m *memDevice) Extent(start, length int64) (image.Extent, error) {
	return image.Extent{Start: start, Length: min(length, m.Size()-start), Data: true, Allocated: true, HostOffset: -1}, nil
}

func (m *memDevice) clone() *memDevice { return &memDevice{b: bytes.Clone(m.b)} }

// zeroDevice is a device of any size that reads as zeros and forgets
// writes: for hostile logs naming huge devices.
type zeroDevice struct{ size int64 }

func (z zeroDevice) Size() int64  { return z.size }
func (z zeroDevice) Close() error { return nil }
func (z zeroDevice) Flush() error { return nil }
func (z zeroDevice) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= z.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), z.size-off))
	clear(p[:n])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (z zeroDevice) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > z.size-int64(len(p)) {
		return 0, fmt.Errorf("write outside: %w", image.ErrInvalidArgument)
	}
	return len(p), nil
}
func (z zeroDevice) WriteZeroes(off, n int64) error { return nil }
func (z zeroDevice) Extent(start, length int64) (image.Extent, error) {
	return image.Extent{Start: start, Length: min(length, z.size-start), Zero: true, HostOffset: -1}, nil
}

var testTarget = Target{Device: "/dev/sda1", Offset: 1 << 20, ImageSize: 64 << 20, ID: "ext2 UUID=0123"}

func target(size int64) Target {
	t := testTarget
	t.Size = size
	return t
}

func logPath(t testing.TB) string { return filepath.Join(t.TempDir(), "disk.img.qimg-redo") }

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// write is one write of a random edit.
type write struct {
	off  int64
	data []byte // nil: zeros of n bytes
	n    int64
}

// randomWrites makes n writes to a device of size bytes: small and
// large, overlapping, adjacent (sequential runs), zeroing.
func randomWrites(r *rand.Rand, size int64, n int) []write {
	var ws []write
	next := int64(0)
	for range n {
		var w write
		switch r.IntN(5) {
		case 0: // continues the last write
			w.off = next
		default:
			w.off = r.Int64N(size)
		}
		w.n = min(size-w.off, 1+r.Int64N([]int64{16, 512, 4096, 1 << 20}[r.IntN(4)]))
		if w.n <= 0 {
			w.off, w.n = 0, 1
		}
		if r.IntN(8) != 0 {
			w.data = make([]byte, w.n)
			for i := range w.data {
				w.data[i] = byte(r.Uint32())
			}
		}
		next = w.off + w.n
		ws = append(ws, w)
	}
	return ws
}

func (w write) apply(dev image.WritableImage) error {
	if w.data == nil {
		return dev.WriteZeroes(w.off, w.n)
	}
	_, err := dev.WriteAt(w.data, w.off)
	return err
}

func osReadFile(path string) ([]byte, error) { return os.ReadFile(path) }

func mustWrite(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
