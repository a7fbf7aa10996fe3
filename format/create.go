package format

import (
	"io"
	"os"

	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/format/raw"
	"github.com/qimg/qimg/format/vhd"
	"github.com/qimg/qimg/format/vmdk"
	"github.com/qimg/qimg/image"
)

// Target is a new image being written: every writable image, and the
// write-only encoders of stream formats. Stream formats (a VMDK stream, a
// VHD) need WriteAt and WriteZeroes in strictly increasing offset order,
// never overlapping, as conversion calls them.
type Target interface {
	io.WriterAt
	// WriteZeroes makes [off, off+length) read as zeros.
	WriteZeroes(off, length int64) error
	// Size is the virtual size of the target.
	Size() int64
	// Flush makes everything written durable.
	Flush() error
	Close() error
}

// CreateOptions are the creation options of each format that Create
// writes (qemu-img's -o); the size is Create's argument.
type CreateOptions struct {
	QCOW2 qcow2.CreateOptions
	VPC   vhd.CreateOptions
	VMDK  vmdk.StreamOptions
}

// Creatable reports whether Create writes images of the format.
func Creatable(format string) bool {
	switch format {
	case QCOW2, Raw, VPC, VMDK:
		return true
	}
	return false
}

// Create writes a new, empty image of the format and virtual size into the
// empty file f and returns it open for writing; the image owns f. name is
// the image's final path: a qcow2 backing file named in o is opened
// relative to it (any format, as Open follows chains).
func Create(f *os.File, name, format string, size int64, o CreateOptions) (Target, error) {
	switch format {
	case QCOW2:
		opts := o.QCOW2
		opts.Size = size
		if opts.OpenBacking == nil {
			opts.OpenBacking = BackingOpener(name)
		}
		return qcow2.CreateFile(f, name, opts)
	case Raw:
		if err := f.Truncate(size); err != nil {
			return nil, image.FileErrorf(name, "%w", err)
		}
		return raw.NewFile(f, true)
	case VPC:
		return vhd.Create(f, name, size, o.VPC)
	case VMDK:
		return vmdk.CreateStream(f, name, size, o.VMDK)
	}
	return nil, image.FileErrorf(name, "output format %q is not supported: %w", format, image.ErrUnsupported)
}
