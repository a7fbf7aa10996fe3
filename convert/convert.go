package convert

import (
	"context"
	"os"
	"runtime"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/atomicfile"
)

// DefaultSparseSize is qemu-img's default -S: runs of zeros at least this
// long are left as holes.
const DefaultSparseSize = 4096

// Options tunes Convert. The zero value writes an uncompressed qcow2 with
// qemu-img's defaults.
type Options struct {
	// Format is the output format: "qcow2" (default), "raw", "vpc" (VHD)
	// or "vmdk" (streamOptimized, always compressed).
	Format string
	// Compress writes compressed qcow2 clusters (qemu-img -c).
	Compress bool
	// Create holds the output format's creation options (-o); the size
	// is taken from the source.
	Create format.CreateOptions
	// SparseSize is -S: zero runs at least this long become holes. 0
	// means DefaultSparseSize; a negative value writes every zero
	// (qemu-img -S 0).
	SparseSize int64
	// Workers is -m, the number of goroutines reading and compressing;
	// 0 means one per CPU.
	Workers int
	// Progress, if set, is called with bytes done and total.
	Progress func(done, total int64)
	// NoCreate writes into an existing target (qemu-img -n) instead of
	// creating one.
	NoCreate bool
	// TargetIsZero lets NoCreate skip zero runs, trusting the target to
	// read as zeros already.
	TargetIsZero bool
	// CopyOffload is qemu-img -C: data the source stores verbatim in a
	// host file goes to a raw target by copy_file_range without being
	// read, so zero runs inside it are written as data, not left as
	// holes. Without it such data is copied in the kernel too where that
	// pays, but read first to find the zeros. It does not combine with
	// Compress.
	CopyOffload bool
	// Sync flushes the target to stable storage before it is renamed
	// into place (qemu-img -t writeback). Without it, as with qemu-img's
	// default, a killed conversion still never leaves a partial target,
	// but a power loss may.
	Sync bool
}

// Convert copies the guest content of src into a new image at dst. The
// target is written to a temporary file beside dst and renamed into place
// when complete, so an interrupted conversion never leaves a partial dst.
func Convert(ctx context.Context, src image.Image, dst string, o Options) error {
	if o.Format == "" {
		o.Format = format.QCOW2
	}
	if o.Compress && o.Format != format.QCOW2 && o.Format != format.VMDK {
		return image.FileErrorf(dst, "compression needs qcow2 output, not %s: %w", o.Format, image.ErrInvalidArgument)
	}
	if o.Compress && o.CopyOffload {
		return image.FileErrorf(dst, "copy offloading does not combine with compression: %w", image.ErrInvalidArgument)
	}
	if o.NoCreate {
		return convertInto(ctx, src, dst, o)
	}
	return atomicfile.Write(dst, o.Sync, func(f *os.File) error {
		target, err := format.Create(f, dst, o.Format, src.Size(), o.Create)
		if err != nil {
			return err
		}
		err = copyImage(ctx, src, target, o, true)
		if err == nil && o.Sync {
			err = target.Flush()
		}
		if cerr := target.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

// convertInto writes into an existing image (qemu-img convert -n).
func convertInto(ctx context.Context, src image.Image, dst string, o Options) error {
	img, _, err := format.Open(dst, format.OpenOptions{Format: o.Format, Writable: true})
	if err != nil {
		return err
	}
	return ConvertInto(ctx, src, img, dst, o)
}

// ConvertInto copies the guest content of src into target, an existing
// image the caller opened for writing (with its key, for an encrypted
// one), and closes target; name is target's in messages. It is Convert
// with NoCreate for a target already open: o.Format and o.Create do not
// apply, o.TargetIsZero does, and o.Sync flushes target at the end.
func ConvertInto(ctx context.Context, src, target image.Image, name string, o Options) (err error) {
	w, ok := target.(image.WritableImage)
	if !ok {
		target.Close()
		return image.FileErrorf(name, "format cannot be written: %w", image.ErrUnsupported)
	}
	defer func() {
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}()
	if w.Size() < src.Size() {
		return image.FileErrorf(name, "target is smaller (%d bytes) than the source (%d bytes): %w", w.Size(), src.Size(), image.ErrInvalidArgument)
	}
	err = copyImage(ctx, src, w, o, o.TargetIsZero)
	if err == nil && o.Sync {
		err = w.Flush()
	}
	return err
}

func (o *Options) workers() int {
	if o.Workers > 0 {
		return o.Workers
	}
	return runtime.NumCPU()
}

func (o *Options) sparseSize() int64 {
	switch {
	case o.SparseSize < 0:
		return 0
	case o.SparseSize == 0:
		return DefaultSparseSize
	}
	return o.SparseSize
}
