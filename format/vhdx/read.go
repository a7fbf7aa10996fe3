package vhdx

import (
	"errors"
	"io"

	"github.com/qimg/qimg/image"
)

// blockHost classifies payload block b: its host offset if the block is
// stored in the file, -1 if it reads as zeros, or an error for a state
// that has no meaning in a non-differencing disk.
func (img *Image) blockHost(b int64) (int64, error) {
	e := img.bat[b]
	switch e & batStateMask {
	case stateNotPresent, stateUndefined, stateZero, stateUnmapped, stateUnmappedV095:
		return -1, nil
	case stateFullyPresent:
		return int64(e & batOffsetMask), nil
	case statePartiallyPresent:
		return 0, img.errorf(image.ErrCorrupt, "block %d is PARTIALLY_PRESENT, which only a differencing disk may use", b)
	}
	return 0, img.errorf(image.ErrCorrupt, "block %d has undefined state %d", b, e&batStateMask)
}

// ReadAt reads guest bytes. Blocks that are not stored in the file read
// as zeros; past Size it returns io.EOF as io.ReaderAt requires.
func (img *Image) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, image.FileErrorf(img.name, "negative offset %d: %w", off, image.ErrInvalidArgument)
	}
	if off >= img.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	want := len(p)
	p = p[:min(int64(len(p)), img.size-off)]
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		b := pos >> img.bits
		in := pos & (img.params.BlockSize - 1)
		n := int(min(int64(len(p)-done), img.params.BlockSize-in))
		host, err := img.blockHost(b)
		if err != nil {
			return done, err
		}
		if host < 0 {
			clear(p[done : done+n])
		} else if err := img.readHost(p[done:done+n], host+in); err != nil {
			return done, err
		}
		done += n
	}
	if done < want {
		return done, io.EOF
	}
	return done, nil
}

// readHost reads stored data. Open checked that every block's bytes inside
// the virtual disk are in the file, so a short read means the file shrank.
func (img *Image) readHost(p []byte, off int64) error {
	n, err := img.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return img.errorf(image.ErrCorrupt, "short read of %d bytes at file offset %d (got %d): the file is shorter than when it was opened", len(p), off, n)
	}
	return image.FileErrorf(img.name, "reading %d bytes at file offset %d: %w", len(p), off, err)
}

// Extent reports the run starting at start: stored blocks as data (with
// their host offset while the blocks are contiguous in the file), every
// other block as zeros. The run never crosses Size or start+length.
func (img *Image) Extent(start, length int64) (image.Extent, error) {
	if start < 0 || length <= 0 || start >= img.size {
		return image.Extent{}, image.FileErrorf(img.name, "extent [%d,+%d) outside the image: %w", start, length, image.ErrInvalidArgument)
	}
	end := start + min(length, img.size-start)
	bs := img.params.BlockSize
	b := start >> img.bits
	host, err := img.blockHost(b)
	if err != nil {
		return image.Extent{}, err
	}
	e := image.Extent{Start: start, Allocated: true, HostOffset: -1}
	if host >= 0 {
		e.Data = true
		e.HostOffset = host + start&(bs-1)
	} else {
		e.Zero = true
	}
	// Extend over following blocks with the same status (and, for data,
	// the next host block right after this one).
	pos := (b + 1) << img.bits
	for pos < end {
		next, err := img.blockHost(pos >> img.bits)
		if err != nil || (next >= 0) != e.Data || (e.Data && next != e.HostOffset+(pos-start)) {
			break // an error is reported when the caller reaches that block
		}
		pos += bs
	}
	e.Length = min(pos, end) - start
	return e, nil
}
