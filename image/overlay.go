package image

import (
	"fmt"
	"sync"
)

// overlayChunk is the unit an Overlay keeps written bytes in.
const overlayChunk = 4096

// Overlay is a writable view of an image whose writes stay in memory:
// reads see them, the image never does. Dry runs edit through one, so
// they go through every step of a real edit and change nothing.
type Overlay struct {
	img    Image
	mu     sync.Mutex
	chunks map[int64][]byte
}

var _ WritableImage = (*Overlay)(nil)

// NewOverlay returns an in-memory writable view of img.
func NewOverlay(img Image) *Overlay {
	return &Overlay{img: img, chunks: map[int64][]byte{}}
}

func (o *Overlay) Size() int64 { return o.img.Size() }

// Close does not close the image underneath.
func (o *Overlay) Close() error { return nil }

// Extent reports the image's extents; written chunks are not tracked.
func (o *Overlay) Extent(start, length int64) (Extent, error) {
	return o.img.Extent(start, length)
}

func (o *Overlay) check(p []byte, off int64) error {
	if off < 0 || off > o.Size() || int64(len(p)) > o.Size()-off {
		return fmt.Errorf("access of %d bytes at %d outside the image of %d bytes: %w", len(p), off, o.Size(), ErrInvalidArgument)
	}
	return nil
}

// ReadAt reads the image with the written chunks laid over it.
func (o *Overlay) ReadAt(p []byte, off int64) (int, error) {
	n, err := o.img.ReadAt(p, off)
	o.mu.Lock()
	defer o.mu.Unlock()
	for c := off / overlayChunk * overlayChunk; c < off+int64(n); c += overlayChunk {
		if b, ok := o.chunks[c]; ok {
			lo, hi := max(c, off), min(c+overlayChunk, off+int64(n))
			copy(p[lo-off:hi-off], b[lo-c:hi-c])
		}
	}
	return n, err
}

// WriteAt keeps p in memory.
func (o *Overlay) WriteAt(p []byte, off int64) (int, error) {
	if err := o.check(p, off); err != nil {
		return 0, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for done := 0; done < len(p); {
		pos := off + int64(done)
		c := pos / overlayChunk * overlayChunk
		b, ok := o.chunks[c]
		if !ok {
			b = make([]byte, overlayChunk)
			if n, err := o.img.ReadAt(b[:min(overlayChunk, o.Size()-c)], c); err != nil && int64(n) < min(overlayChunk, o.Size()-c) {
				return done, err
			}
			o.chunks[c] = b
		}
		done += copy(b[pos-c:], p[done:])
	}
	return len(p), nil
}

// WriteZeroes writes zeros in memory.
func (o *Overlay) WriteZeroes(off, length int64) error {
	for length > 0 {
		n := min(length, 1<<20)
		if _, err := o.WriteAt(make([]byte, n), off); err != nil {
			return err
		}
		off, length = off+n, length-n
	}
	return nil
}

// Flush has nothing to make durable.
func (o *Overlay) Flush() error { return nil }
