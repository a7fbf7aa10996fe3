package convert

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/qcow2"
	"github.com/qimg/qimg/raw"
)

// Format names, as qemu-img spells them.
const (
	FormatRaw   = "raw"
	FormatQCOW2 = "qcow2"
)

// Probe tells the format of the file at path from its content.
func Probe(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return ProbeReader(f)
}

// ProbeReader tells the format of an image from its first bytes. Anything
// it does not recognise is raw, as in qemu-img.
func ProbeReader(r io.ReaderAt) (string, error) {
	var magic [4]byte
	_, err := r.ReadAt(magic[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if binary.BigEndian.Uint32(magic[:]) == qcow2.Magic {
		return FormatQCOW2, nil
	}
	return FormatRaw, nil
}

// OpenOptions says how Open opens an image.
type OpenOptions struct {
	// Format forces a format; empty probes it.
	Format string
	// Writable opens the image for writing.
	Writable bool
	// Backing is the policy for files a qcow2 image names.
	Backing qcow2.BackingPolicy
}

// Open opens an image of any supported format and returns it with the
// format's name.
func Open(path string, o OpenOptions) (image.Image, string, error) {
	format := o.Format
	if format == "" {
		var err error
		if format, err = Probe(path); err != nil {
			return nil, "", err
		}
	}
	switch format {
	case FormatQCOW2:
		img, err := qcow2.Open(path, &qcow2.OpenOptions{Writable: o.Writable, Backing: o.Backing})
		if err != nil {
			return nil, "", err
		}
		return img, format, nil
	case FormatRaw, "file", "iso", "img":
		img, err := raw.Open(path, o.Writable)
		if err != nil {
			return nil, "", err
		}
		return img, FormatRaw, nil
	}
	return nil, "", fmt.Errorf("%s: unknown image format %q: %w", path, format, image.ErrUnsupported)
}
