package convert

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/format/raw"
	"github.com/qimg/qimg/format/vdi"
	"github.com/qimg/qimg/format/vhd"
	"github.com/qimg/qimg/format/vhdx"
	"github.com/qimg/qimg/format/vmdk"
	"github.com/qimg/qimg/image"
)

// Format names, as qemu-img spells them.
const (
	FormatRaw   = "raw"
	FormatQCOW2 = "qcow2"
	FormatVHDX  = "vhdx"
	FormatVDI   = "vdi"
	FormatVPC   = "vpc" // VHD, named after Virtual PC as in qemu-img
	FormatVMDK  = "vmdk"
)

// probeSize is how much of a file probing looks at.
const probeSize = 4096

// reader is one read-only foreign format: how to recognise it from the
// start of a file and how to open it.
type reader struct {
	name   string
	detect func(head []byte) bool
	open   func(path string) (image.Image, error)
}

// readers are the formats probing tries, in order; a file none of them
// recognises is raw, as in qemu-img. policy decides whether a VMDK
// descriptor may name extent files anywhere (FollowBacking, as qemu-img
// allows) or only inside its own directory.
func readers(policy qcow2.BackingPolicy) []reader {
	vmdkOpts := &vmdk.Options{AllowAnyPath: policy == qcow2.FollowBacking}
	return []reader{
		{FormatQCOW2, func(h []byte) bool { return binary.BigEndian.Uint32(h) == qcow2.Magic }, nil},
		{FormatVMDK, vmdk.Detect, func(p string) (image.Image, error) { return asImage(vmdk.OpenWith(p, vmdkOpts)) }},
		{FormatVHDX, vhdx.Detect, func(p string) (image.Image, error) { return asImage(vhdx.Open(p)) }},
		{FormatVDI, vdi.Detect, func(p string) (image.Image, error) { return asImage(vdi.Open(p)) }},
		// A fixed VHD has its only footer at the end: like qemu-img,
		// probing sees it as raw, and -f vpc opens it.
		{FormatVPC, vhd.Detect, func(p string) (image.Image, error) { return asImage(vhd.Open(p)) }},
	}
}

// asImage turns a typed open result into an image.Image without turning
// a nil pointer into a non-nil interface.
func asImage[T image.Image](img T, err error) (image.Image, error) {
	if err != nil {
		return nil, err
	}
	return img, nil
}

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
// no format recognises is raw, as in qemu-img.
func ProbeReader(r io.ReaderAt) (string, error) {
	head := make([]byte, probeSize)
	if _, err := r.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	for _, f := range readers(qcow2.RefuseBacking) {
		if f.detect(head) {
			return f.name, nil
		}
	}
	return FormatRaw, nil
}

// OpenOptions says how Open opens an image.
type OpenOptions struct {
	// Format forces a format; empty probes it.
	Format string
	// Writable opens the image for writing (qcow2 and raw only).
	Writable bool
	// Backing is the policy for files an image names: a qcow2 image's
	// backing and data files, a VMDK descriptor's extent files (which
	// must stay in the descriptor's directory unless FollowBacking).
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
	for _, f := range readers(o.Backing) {
		if f.name != format || f.open == nil {
			continue
		}
		if o.Writable {
			return nil, "", fmt.Errorf("%s: %s images are read-only in qimg: %w", path, format, image.ErrUnsupported)
		}
		img, err := f.open(path)
		if err != nil {
			return nil, "", err
		}
		return img, format, nil
	}
	return nil, "", fmt.Errorf("%s: unknown image format %q: %w", path, format, image.ErrUnsupported)
}

// Formats lists the formats Open reads, as qemu-img names them.
func Formats() []string {
	names := []string{FormatRaw}
	for _, f := range readers(qcow2.RefuseBacking) {
		names = append(names, f.name)
	}
	return names
}
