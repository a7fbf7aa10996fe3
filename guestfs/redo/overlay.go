package redo

import (
	"fmt"
	"io"

	"github.com/qimg/qimg/image"
)

// overlayRead reads [off, off+len(p)) of a device of size dev.Size(),
// taking the bytes of the extents each lists from log (or zeros) and
// the rest from dev. It keeps io.ReaderAt's contract.
func overlayRead(p []byte, off int64, dev image.Image, log io.ReaderAt, each func(off, n int64, fn func(extent)) error) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d: %w", off, image.ErrInvalidArgument)
	}
	size := dev.Size()
	if off >= size {
		return 0, io.EOF
	}
	want := len(p)
	p = p[:min(int64(len(p)), size-off)]
	pos := off
	var rerr error
	fill := func(to int64) {
		if rerr == nil && to > pos {
			if n, err := dev.ReadAt(p[pos-off:to-off], pos); n < int(to-pos) {
				rerr = readErr(err)
			}
		}
	}
	err := each(off, int64(len(p)), func(e extent) {
		fill(e.off)
		if rerr != nil {
			return
		}
		b := p[e.off-off : e.end()-off]
		if e.pos == zeroPos {
			clear(b)
		} else if _, err := log.ReadAt(b, e.pos); err != nil {
			rerr = fmt.Errorf("redo: reading the log: %w", readErr(err))
		}
		pos = e.end()
	})
	if err != nil {
		return 0, err
	}
	fill(off + int64(len(p)))
	if rerr != nil {
		return 0, rerr
	}
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}

// readErr is the error of a read that came short.
func readErr(err error) error {
	if err == nil || err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// overlayExtent describes the run at start of a device seen through a
// log: a logged run is data of this image (or zeros); elsewhere the
// device's extent, cut where the next logged run starts.
func overlayExtent(start, length int64, dev image.Image, each func(off, n int64, fn func(extent)) error) (image.Extent, error) {
	if start < 0 || length <= 0 || start >= dev.Size() {
		return image.Extent{}, fmt.Errorf("extent [%d,+%d) outside the device of %d bytes: %w", start, length, dev.Size(), image.ErrInvalidArgument)
	}
	length = min(length, dev.Size()-start, chunkSize)
	var first *extent
	err := each(start, length, func(e extent) {
		if first == nil {
			first = &e
		}
	})
	switch {
	case err != nil:
		return image.Extent{}, err
	case first == nil:
		return dev.Extent(start, length)
	case first.off > start:
		return dev.Extent(start, first.off-start)
	}
	zero := first.pos == zeroPos
	return image.Extent{Start: start, Length: first.n, Data: !zero, Zero: zero, Allocated: true, HostOffset: -1}, nil
}
