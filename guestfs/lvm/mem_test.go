package lvm_test

import (
	"fmt"
	"io"

	"github.com/qimg/qimg/image"
)

// memImage is an image of size bytes whose first bytes are data and the
// rest zeros: a PV given by its start alone (fuzz inputs, seeds cut
// short of their trailing zeros).
type memImage struct {
	data []byte
	size int64
}

func newMem(data []byte, size int64) *memImage {
	return &memImage{data: data[:min(int64(len(data)), size)], size: size}
}

func (m *memImage) Size() int64  { return m.size }
func (m *memImage) Close() error { return nil }

func (m *memImage) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset: %w", image.ErrInvalidArgument)
	}
	if off >= m.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), m.size-off))
	clear(p[:n])
	if off < int64(len(m.data)) {
		copy(p[:n], m.data[off:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memImage) Extent(start, length int64) (image.Extent, error) {
	if start < 0 || start >= m.size || length <= 0 {
		return image.Extent{}, fmt.Errorf("extent outside: %w", image.ErrInvalidArgument)
	}
	return image.Extent{Start: start, Length: min(length, m.size-start), Data: true, Allocated: true, HostOffset: -1}, nil
}
