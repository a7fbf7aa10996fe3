package image

import (
	"fmt"
	"io"
)

// Section is the window [off, off+size) of an image, an image of its own:
// a partition, or a logical volume's extent. It does not own the image it
// looks into: Close leaves that open.
type Section struct {
	img       Image
	off, size int64
}

// WritableSection is a Section of a writable image; writes stay inside
// the window.
type WritableSection struct {
	Section
	w WritableImage
}

// NewSection returns the window [off, off+size) of img: a *WritableSection
// when img is a WritableImage, a *Section otherwise. The window must lie
// inside the image.
func NewSection(img Image, off, size int64) (Image, error) {
	if off < 0 || size < 0 || off > img.Size() || size > img.Size()-off {
		return nil, fmt.Errorf("section [%d, +%d) outside the image of %d bytes: %w", off, size, img.Size(), ErrCorrupt)
	}
	s := Section{img: img, off: off, size: size}
	if w, ok := img.(WritableImage); ok {
		return &WritableSection{Section: s, w: w}, nil
	}
	return &s, nil
}

// Offset is where the window starts in the image it looks into.
func (s *Section) Offset() int64 { return s.off }

// Size is the window's length.
func (s *Section) Size() int64 { return s.size }

// ReadAt reads inside the window; reads past its end return io.EOF.
func (s *Section) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d: %w", off, ErrInvalidArgument)
	}
	if off >= s.size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > s.size-off {
		p = p[:s.size-off]
	}
	n, err := s.img.ReadAt(p, s.off+off)
	if err == nil && n < want {
		err = io.EOF
	}
	return n, err
}

// Extent describes the run at start inside the window, in the window's
// offsets.
func (s *Section) Extent(start, length int64) (Extent, error) {
	if start < 0 || start >= s.size || length <= 0 {
		return Extent{}, fmt.Errorf("extent [%d,+%d) outside the section of %d bytes: %w", start, length, s.size, ErrInvalidArgument)
	}
	e, err := s.img.Extent(s.off+start, min(length, s.size-start))
	if err != nil {
		return Extent{}, err
	}
	e.Start -= s.off
	e.Length = min(e.Length, s.size-e.Start)
	return e, nil
}

// Close does nothing: the image looked into stays open.
func (s *Section) Close() error { return nil }

// WriteAt writes inside the window; a write past its end is refused
// whole, never cut short.
func (s *WritableSection) WriteAt(p []byte, off int64) (int, error) {
	if err := s.inside(off, int64(len(p))); err != nil {
		return 0, err
	}
	return s.w.WriteAt(p, s.off+off)
}

// WriteZeroes makes [off, off+length) of the window read as zeros.
func (s *WritableSection) WriteZeroes(off, length int64) error {
	if err := s.inside(off, length); err != nil {
		return err
	}
	return s.w.WriteZeroes(s.off+off, length)
}

// Flush flushes the image looked into.
func (s *WritableSection) Flush() error { return s.w.Flush() }

func (s *WritableSection) inside(off, n int64) error {
	if off < 0 || n < 0 || off > s.size || n > s.size-off {
		return fmt.Errorf("write [%d,+%d) outside the section of %d bytes: %w", off, n, s.size, ErrInvalidArgument)
	}
	return nil
}
