package convert

import (
	"context"
	"io"
	"math"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/image"
)

// DDOptions are the operands of qemu-img dd.
type DDOptions struct {
	// Format is the output format: "raw" (default) or "qcow2".
	Format string
	// BlockSize is bs, the unit of Count and Skip: 512 when 0.
	BlockSize int64
	// Count is count in blocks; negative copies to the end of the input.
	Count int64
	// Skip is skip in blocks: where in the input the copy starts.
	Skip int64
	// Create holds the output format's creation options.
	Create format.CreateOptions
	// Progress, if set, is called with bytes done and total.
	Progress func(done, total int64)
}

// DDRange is the stretch of the input qemu-img dd copies: [Start, End).
type DDRange struct {
	Start, End int64
	// SkippedPast is set when Skip lies beyond the input: qemu-img
	// warns and writes an empty image, as dd(1) does.
	SkippedPast bool
}

// Range computes what DD copies from an input of size bytes. Like
// qemu-img 7.2, count bounds the input's end, not the length after the
// skip: bs=1M count=3 skip=2 copies one MiB.
func (o DDOptions) Range(size int64) DDRange {
	bs := o.blockSize()
	end := size
	if o.Count >= 0 && o.Count <= math.MaxInt64/bs && o.Count*bs < end {
		end = o.Count * bs
	}
	if o.Skip > math.MaxInt64/bs || o.Skip*bs > end {
		return DDRange{Start: end, End: end, SkippedPast: true}
	}
	return DDRange{Start: o.Skip * bs, End: end}
}

func (o DDOptions) blockSize() int64 {
	if o.BlockSize <= 0 {
		return 512
	}
	return o.BlockSize
}

// DD copies a byte range of src's guest data into a new image at dst, as
// qemu-img dd does: every byte written, zeros included, in order, so that
// the output is the one qemu-img writes. The new image is renamed into
// place only when complete.
func DD(ctx context.Context, src image.Image, dst string, o DDOptions) (DDRange, error) {
	if o.Format == "" {
		o.Format = format.Raw
	}
	r := o.Range(src.Size())
	if o.Format != format.Raw && o.Format != format.QCOW2 {
		return r, image.FileErrorf(dst, "dd writes raw and qcow2 images, not %s (convert -O %s writes that format): %w", o.Format, o.Format, image.ErrUnsupported)
	}
	section, err := image.NewSection(src, r.Start, r.End-r.Start)
	if err != nil {
		return r, err
	}
	// qemu-img creates the output in whole sectors; the tail reads as zeros.
	out := &zeroPadded{Image: section, size: (r.End - r.Start + 511) &^ 511}
	return r, Convert(ctx, out, dst, Options{
		Format:     o.Format,
		Create:     o.Create,
		SparseSize: -1, // qemu-img dd writes every block, zeros too
		Workers:    1,  // in order, so that clusters are laid out as qemu-img lays them
		Progress:   o.Progress,
	})
}

// zeroPadded is an image followed by zeros up to size.
type zeroPadded struct {
	image.Image
	size int64
}

func (z *zeroPadded) Size() int64 { return z.size }

func (z *zeroPadded) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= z.size {
		return 0, io.EOF
	}
	want := len(p)
	p = p[:min(int64(len(p)), z.size-off)]
	n := 0
	if inner := z.Image.Size(); off < inner {
		var err error
		n, err = z.Image.ReadAt(p[:min(int64(len(p)), inner-off)], off)
		if err != nil && err != io.EOF {
			return n, err
		}
	}
	clear(p[n:])
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}

func (z *zeroPadded) Extent(start, length int64) (image.Extent, error) {
	if inner := z.Image.Size(); start < inner {
		return z.Image.Extent(start, min(length, inner-start))
	}
	return image.Extent{Start: start, Length: min(length, z.size-start), Zero: true, HostOffset: -1}, nil
}
