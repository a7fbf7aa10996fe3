package raw

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/qimg/qimg/image"
)

// Image is a raw disk image backed by an *os.File.
type Image struct {
	f        *os.File
	size     int64
	writable bool
}

var _ image.WritableImage = (*Image)(nil)

// Open opens path as a raw image, read-write if writable is set.
func Open(path string, writable bool) (*Image, error) {
	flag := os.O_RDONLY
	if writable {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, err
	}
	img, err := New(f, writable)
	if err != nil {
		f.Close()
		return nil, err
	}
	return img, nil
}

// New wraps an open file. The image takes ownership of f.
func New(f *os.File, writable bool) (*Image, error) {
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return &Image{f: f, size: size, writable: writable}, nil
}

// Create makes (or truncates) path as a raw image of size bytes, all holes.
func Create(path string, size int64) error {
	if size < 0 {
		return fmt.Errorf("%s: negative size %d: %w", path, size, image.ErrInvalidArgument)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Size is the file size.
func (img *Image) Size() int64 { return img.size }

// File returns the underlying file.
func (img *Image) File() *os.File { return img.f }

// ReadAt reads guest bytes; past the end it returns io.EOF.
func (img *Image) ReadAt(p []byte, off int64) (int, error) { return img.f.ReadAt(p, off) }

// WriteAt writes guest bytes. Writing past the end grows the image.
func (img *Image) WriteAt(p []byte, off int64) (int, error) {
	if !img.writable {
		return 0, fmt.Errorf("%s: %w", img.f.Name(), image.ErrReadOnly)
	}
	n, err := img.f.WriteAt(p, off)
	if end := off + int64(n); end > img.size {
		img.size = end
	}
	return n, err
}

// WriteZeroes punches a hole where the file system allows it and writes
// zeros elsewhere.
func (img *Image) WriteZeroes(off, length int64) error {
	if !img.writable {
		return fmt.Errorf("%s: %w", img.f.Name(), image.ErrReadOnly)
	}
	if off+length > img.size {
		if err := img.f.Truncate(off + length); err != nil {
			return err
		}
		img.size = off + length
	}
	err := unix.Fallocate(int(img.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
	if err == nil {
		return nil
	}
	buf := make([]byte, min(length, 1<<20))
	for length > 0 {
		n := min(length, int64(len(buf)))
		if _, err := img.f.WriteAt(buf[:n], off); err != nil {
			return err
		}
		off += n
		length -= n
	}
	return nil
}

// Flush syncs the file.
func (img *Image) Flush() error { return img.f.Sync() }

// Close closes the file.
func (img *Image) Close() error { return img.f.Close() }

// Extent reports a data or hole run starting at start, found with
// SEEK_DATA/SEEK_HOLE. File systems without them report everything as data.
func (img *Image) Extent(start, length int64) (image.Extent, error) {
	if start < 0 || length <= 0 || start >= img.size {
		return image.Extent{}, fmt.Errorf("%s: extent [%d,+%d) outside the image: %w", img.f.Name(), start, length, image.ErrInvalidArgument)
	}
	length = min(length, img.size-start)
	ext := image.Extent{Start: start, Length: length, Data: true, Allocated: true, HostOffset: start}
	fd := int(img.f.Fd())
	data, err := unix.Seek(fd, start, unix.SEEK_DATA)
	switch {
	case errors.Is(err, unix.ENXIO): // only a hole follows
		return image.Extent{Start: start, Length: length, Zero: true, Allocated: true, HostOffset: -1}, nil
	case err != nil:
		return ext, nil // no hole support: all data
	case data > start:
		return image.Extent{Start: start, Length: min(length, data-start), Zero: true, Allocated: true, HostOffset: -1}, nil
	}
	hole, err := unix.Seek(fd, start, unix.SEEK_HOLE)
	if err == nil && hole > start {
		ext.Length = min(length, hole-start)
	}
	return ext, nil
}
