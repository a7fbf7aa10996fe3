package qcow2

import (
	"context"
	"errors"
	"io"

	"github.com/qimg/qimg/image"
)

// Resizer is an image whose virtual size can change, as Commit needs of a
// base smaller than the image committed into it.
type Resizer interface {
	Resize(size int64, shrink bool) error
}

// Commit writes what the image holds itself (its data and zero clusters)
// into base, its backing file opened for writing, as `qemu-img commit`
// does: base is grown first if it is smaller (it must then be a Resizer),
// flushed, and the image is then emptied, unless keep is set, so that it
// reads base's new content through. A commit that stops half way leaves
// the image reading as before (it still holds everything) and base partly
// updated, as QEMU's does. progress, if not nil, gets the bytes examined
// and the virtual size. Reopen the image afterwards to read through it:
// the backing chain it opened may still cache base's old metadata.
func (img *Image) Commit(ctx context.Context, base image.WritableImage, keep bool, progress func(done, total int64)) error {
	if err := img.checkWrite(0, 0); err != nil {
		return err
	}
	if img.backing == nil {
		return img.errorf(image.ErrInvalidArgument, "the image has no backing file to commit into")
	}
	size := img.Size()
	if base.Size() < size {
		r, ok := base.(Resizer)
		if !ok {
			return img.errorf(image.ErrUnsupported, "the backing file is smaller than the image and cannot grow")
		}
		if err := r.Resize(size, false); err != nil {
			return image.FileErrorf(img.name, "growing the backing file: %w", err)
		}
	}
	if err := img.copyOwnData(ctx, base, progress); err != nil {
		return err
	}
	if err := base.Flush(); err != nil {
		return image.FileErrorf(img.name, "flushing the backing file: %w", err)
	}
	if keep {
		return nil
	}
	return img.zeroRange(0, size, zeroDrop)
}

// copyOwnData writes the runs the image defines itself into base.
func (img *Image) copyOwnData(ctx context.Context, base image.WritableImage, progress func(done, total int64)) error {
	size := img.Size()
	buf := make([]byte, max(copyChunk, img.hdr.ClusterSize()))
	for e, err := range image.Extents(img, 0, size) {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		switch {
		case !e.Allocated || e.Depth != 0:
			// The backing chain shows through: base has it already.
		case e.Zero || !e.Data:
			if err := base.WriteZeroes(e.Start, e.Length); err != nil {
				return err
			}
		default:
			for off := e.Start; off < e.End(); off += int64(len(buf)) {
				n := min(int64(len(buf)), e.End()-off)
				if _, err := img.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
					return err
				}
				if _, err := base.WriteAt(buf[:n], off); err != nil {
					return err
				}
			}
		}
		if progress != nil {
			progress(e.End(), size)
		}
	}
	return nil
}
