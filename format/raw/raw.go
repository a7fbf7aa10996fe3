package raw

import (
	"errors"
	"io"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/qimg/qimg/image"
)

// Image is a raw disk image backed by an *os.File.
type Image struct {
	f        *os.File
	fileSize int64
	size     int64 // fileSize rounded up to whole sectors, as QEMU sees it
	writable bool
	// kernelCopy lets WriteAtFrom copy with copy_file_range (fileCopyPays).
	kernelCopy bool
	// lastRun is the data or hole run the last SEEK_DATA/SEEK_HOLE pair
	// found, in a read-only image: conversion asks about every unit of a
	// run, and lseek takes the inode's lock, which concurrent workers
	// contend for.
	lastRun atomic.Pointer[fileRun]
}

// fileRun is a run of the file that is all data or all hole.
type fileRun struct {
	start, end int64
	data       bool
}

var (
	_ image.WritableImage   = (*Image)(nil)
	_ image.HostFiler       = (*Image)(nil)
	_ image.FileRangeWriter = (*Image)(nil)
)

// OpenOptions tunes Open. The zero value opens read-only.
type OpenOptions struct {
	// Writable opens the image for writing.
	Writable bool
}

// Open opens path as a raw image (opts nil: read-only).
func Open(path string, opts *OpenOptions) (*Image, error) {
	writable := opts != nil && opts.Writable
	flag := os.O_RDONLY
	if writable {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, err
	}
	img, err := NewFile(f, writable)
	if err != nil {
		f.Close()
		return nil, err
	}
	return img, nil
}

// NewFile wraps an open file, for writing if writable (f must then be
// open for writing). The image takes ownership of f.
func NewFile(f *os.File, writable bool) (*Image, error) {
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, image.FileErrorf(f.Name(), "%w", err)
	}
	img := &Image{f: f, fileSize: size, size: roundSector(size), writable: writable}
	img.kernelCopy = writable && fileCopyPays(f)
	return img, nil
}

// fileCopyPays reports whether copy_file_range into f beats writing bytes
// already in memory. On tmpfs the kernel copies page by page through a
// pipe and a conversion was 10 % slower with it; on ext4 writing into the
// sparse target from memory was 4x slower (docs/benchmarks.md).
func fileCopyPays(f *os.File) bool {
	var st unix.Statfs_t
	return unix.Fstatfs(int(f.Fd()), &st) == nil && st.Type != unix.TMPFS_MAGIC
}

// roundSector rounds up to a multiple of 512: QEMU's block layer counts
// sectors, so a raw file's last partial sector reads as zeros.
func roundSector(n int64) int64 { return (n + 511) &^ 511 }

func (img *Image) grew(end int64) {
	if end > img.fileSize {
		img.fileSize = end
		img.size = max(img.size, roundSector(end))
	}
}

// Create makes (or truncates) path as a raw image of size bytes, all holes.
func Create(path string, size int64) error {
	if size < 0 {
		return image.FileErrorf(path, "negative size %d: %w", size, image.ErrInvalidArgument)
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

// Size is the virtual size: the file size rounded up to whole sectors.
func (img *Image) Size() int64 { return img.size }

// File returns the underlying file.
func (img *Image) File() *os.File { return img.f }

// ReadAt reads guest bytes; the bytes between the end of the file and the
// end of its last sector read as zeros, and past Size it returns io.EOF.
func (img *Image) ReadAt(p []byte, off int64) (int, error) {
	if off >= img.size {
		return 0, io.EOF
	}
	want := len(p)
	p = p[:min(int64(len(p)), img.size-off)]
	n := 0
	if off < img.fileSize {
		var err error
		n, err = img.f.ReadAt(p[:min(int64(len(p)), img.fileSize-off)], off)
		if err != nil && !errors.Is(err, io.EOF) {
			return n, err
		}
	}
	clear(p[n:])
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}

// WriteAt writes guest bytes. Writing past the end grows the image.
func (img *Image) WriteAt(p []byte, off int64) (int, error) {
	if !img.writable {
		return 0, image.FileErrorf(img.f.Name(), "%w", image.ErrReadOnly)
	}
	n, err := img.f.WriteAt(p, off)
	img.grew(off + int64(n))
	return n, err
}

// WriteAtFrom writes p at off as WriteAt does, taking the bytes from src
// at srcOff inside the kernel where it can and where that is faster
// (copy_file_range; not on tmpfs).
func (img *Image) WriteAtFrom(p []byte, off int64, src *os.File, srcOff int64) (int, error) {
	if !img.kernelCopy {
		return img.WriteAt(p, off)
	}
	n, err := image.CopyFileRange(img.f, off, p, src, srcOff)
	img.grew(off + int64(n))
	return n, err
}

// CopyFrom writes n bytes of src at srcOff to off, copied in the kernel
// where it can (on tmpfs too: the caller did not read them).
func (img *Image) CopyFrom(off, n int64, src *os.File, srcOff int64) error {
	if !img.writable {
		return image.FileErrorf(img.f.Name(), "%w", image.ErrReadOnly)
	}
	err := image.CopyFileData(img.f, off, src, srcOff, n)
	if err == nil {
		img.grew(off + n)
	}
	return err
}

// HostFile is the file itself: a raw image stores every guest byte at its
// own offset.
func (img *Image) HostFile() *os.File { return img.f }

// WriteZeroes punches a hole where the file system allows it and writes
// zeros elsewhere.
func (img *Image) WriteZeroes(off, length int64) error {
	if !img.writable {
		return image.FileErrorf(img.f.Name(), "%w", image.ErrReadOnly)
	}
	if off+length > img.fileSize {
		if err := img.f.Truncate(off + length); err != nil {
			return err
		}
		img.grew(off + length)
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

// Resize sets the virtual size: the file is truncated or extended (with a
// hole), and shrinking needs shrink set, as for qcow2.
func (img *Image) Resize(size int64, shrink bool) error {
	if !img.writable {
		return image.FileErrorf(img.f.Name(), "%w", image.ErrReadOnly)
	}
	if size < 0 || size < img.size && !shrink {
		return image.FileErrorf(img.f.Name(), "resize from %d to %d bytes: %w", img.size, size, image.ErrInvalidArgument)
	}
	if err := img.f.Truncate(size); err != nil {
		return err
	}
	img.fileSize, img.size = size, roundSector(size)
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
		return image.Extent{}, image.FileErrorf(img.f.Name(), "extent [%d,+%d) outside the image: %w", start, length, image.ErrInvalidArgument)
	}
	length = min(length, img.size-start)
	hole := image.Extent{Start: start, Length: length, Zero: true, Allocated: true, HostOffset: -1}
	if start >= img.fileSize { // the zero tail of the last sector
		return hole, nil
	}
	length = min(length, img.fileSize-start)
	r := img.lastRun.Load()
	if r == nil || start < r.start || start >= r.end {
		r = img.seekRun(start)
		if !img.writable { // a writer's own writes would make it stale
			img.lastRun.Store(r)
		}
	}
	if !r.data {
		hole.Length = min(length, r.end-start)
		return hole, nil
	}
	return image.Extent{Start: start, Length: min(length, r.end-start), Data: true, Allocated: true, HostOffset: start}, nil
}

// seekRun finds the run of the file that holds start, which is before the
// end of the file. File systems without SEEK_DATA report all data.
func (img *Image) seekRun(start int64) *fileRun {
	fd := int(img.f.Fd())
	data, err := unix.Seek(fd, start, unix.SEEK_DATA)
	switch {
	case errors.Is(err, unix.ENXIO): // only a hole follows
		return &fileRun{start, img.fileSize, false}
	case err != nil:
		return &fileRun{start, img.fileSize, true}
	case data > start:
		return &fileRun{start, min(data, img.fileSize), false}
	}
	next, err := unix.Seek(fd, start, unix.SEEK_HOLE)
	if err != nil || next <= start {
		next = img.fileSize
	}
	return &fileRun{start, min(next, img.fileSize), true}
}
