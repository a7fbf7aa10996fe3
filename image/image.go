package image

import (
	"fmt"
	"io"
	"iter"
	"os"
)

// Image is a virtual disk: a fixed-size array of bytes that may be backed by
// a sparse, compressed or layered file. ReadAt reads guest data; reads past
// Size return io.EOF as io.ReaderAt requires.
//
// Implementations are safe for concurrent ReadAt and Extent calls.
type Image interface {
	io.ReaderAt
	io.Closer
	// Size is the virtual size in bytes.
	Size() int64
	// Extent describes the run of bytes starting at start that share one
	// status. The run is at most length bytes long and never crosses Size.
	Extent(start, length int64) (Extent, error)
}

// WritableImage is an Image that also accepts writes. WriteAt keeps the
// io.WriterAt contract: it writes all of p or returns an error.
type WritableImage interface {
	Image
	io.WriterAt
	// WriteZeroes makes [off, off+length) read as zeros, cheaply where the
	// format allows (a zero flag or a hole rather than written zeros).
	WriteZeroes(off, length int64) error
	// Flush makes everything written so far durable and consistent.
	Flush() error
}

// Extent is a run of guest bytes with one allocation status, the unit of
// qemu-img map and of hole-skipping copies.
type Extent struct {
	Start  int64
	Length int64
	// Data means the bytes are stored somewhere in the chain and must be
	// read; when false the run reads as zeros.
	Data bool
	// Zero means the run is known to read as zeros.
	Zero bool
	// Allocated means some layer of the chain (this image or a backing
	// file) defines the run; false means it falls through every layer.
	Allocated bool
	// Compressed means the run is stored compressed.
	Compressed bool
	// Depth is the layer that defines the run: 0 for this image, 1 for its
	// backing file and so on. For an unallocated run it is the last layer
	// the run fell through (as qemu-img map reports it).
	Depth int
	// HostOffset is where the run starts in the layer's file when it is
	// stored there uncompressed and contiguous, or -1. A run that reads
	// as zeros may have one too: the host cluster a qcow2 image keeps for
	// zero or unallocated subclusters, which qemu-img map shows.
	HostOffset int64
}

// End is the offset one past the extent.
func (e Extent) End() int64 { return e.Start + e.Length }

// SameStatus reports whether two extents could be merged into one run:
// they agree in everything but position and length, and their host offsets
// (if any) are contiguous.
func (e Extent) SameStatus(next Extent) bool {
	if e.Data != next.Data || e.Zero != next.Zero || e.Allocated != next.Allocated ||
		e.Compressed != next.Compressed || e.Depth != next.Depth {
		return false
	}
	if (e.HostOffset < 0) != (next.HostOffset < 0) {
		return false
	}
	return e.HostOffset < 0 || e.HostOffset+e.Length == next.HostOffset
}

// Extents iterates over the extents of img that cover [start, start+length),
// in order, clamped to the image. It stops at the first error, which it
// yields with a zero Extent.
//
//	for e, err := range image.Extents(img, 0, img.Size()) {
//		if err != nil { return err }
//		if !e.Data { continue } // a hole: nothing to read
//		...
//	}
func Extents(img Image, start, length int64) iter.Seq2[Extent, error] {
	return func(yield func(Extent, error) bool) {
		end := min(start+length, img.Size())
		for off := max(start, 0); off < end; {
			e, err := img.Extent(off, end-off)
			if err != nil {
				yield(Extent{}, err)
				return
			}
			if e.Length <= 0 {
				yield(Extent{}, fmt.Errorf("extent at %d has no length: %w", off, ErrCorrupt))
				return
			}
			if !yield(e, nil) {
				return
			}
			off = e.End()
		}
	}
}

// OpenFile opens path read-only, builds an image from it with newReader,
// the NewReader of a format package (which sees the file's size and uses
// path in its messages), and hands the file to the image with own, so
// that closing the image closes it. On failure the file is closed.
func OpenFile[T any](path string, newReader func(r io.ReaderAt, size int64, name string) (T, error), own func(T, *os.File)) (T, error) {
	var zero T
	f, err := os.Open(path)
	if err != nil {
		return zero, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return zero, &FileError{Name: path, Err: err}
	}
	img, err := newReader(f, st.Size(), path)
	if err != nil {
		f.Close()
		return zero, err
	}
	own(img, f)
	return img, nil
}
