package format

import (
	"errors"
	"fmt"
	"slices"

	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/format/raw"
	"github.com/qimg/qimg/format/vdi"
	"github.com/qimg/qimg/format/vhd"
	"github.com/qimg/qimg/format/vhdx"
	"github.com/qimg/qimg/format/vmdk"
	"github.com/qimg/qimg/image"
)

// OpenOptions says how Open opens an image. The zero value probes the
// format, opens read-only and follows backing files as qemu-img does.
type OpenOptions struct {
	// Format forces a format; empty probes it.
	Format string
	// Writable opens the image for writing (qcow2 and raw only; see
	// Writable). Backing files are always opened read-only.
	Writable bool
	// Backing is the policy for files an image names: a qcow2 image's
	// backing and data files, a VMDK descriptor's extent files (which
	// must stay in the descriptor's directory unless FollowBacking).
	Backing image.BackingPolicy
	// MetadataOnly opens images for their metadata alone, as qemu-img
	// info does: a qcow2 image's external data file is not opened (a
	// missing one does not stop Open) and guest reads fail. Read-only.
	MetadataOnly bool
	// ForCheck opens an image for image.Checker, as qemu-img check does:
	// damage that a normal open refuses (a qcow2 table past the end of the
	// file, an image marked corrupt) is left for Check to report or
	// repair, and guest writes are refused.
	ForCheck bool
	// Key is the password of an encrypted image (qcow2 with LUKS or
	// legacy AES encryption): see qcow2.OpenOptions.Key. It applies to
	// this image only, never to its backing files.
	Key []byte
	// BackingKeys are the passwords of encrypted backing files by depth:
	// BackingKeys[0] is the backing file's, BackingKeys[1] its backing
	// file's, and so on (qemu-img's backing.encrypt.key-secret,
	// backing.backing.encrypt.key-secret...); a nil entry is no key. A key
	// for a level the chain does not have fails Open with an
	// *UnusedKeyError, as qemu-img fails.
	BackingKeys [][]byte
}

// backingLayer is the options of the backing file of an image opened
// with o: format as the image names it, the policy, and the key of that
// depth.
func (o OpenOptions) backingLayer(format string) OpenOptions {
	b := OpenOptions{Format: format, Backing: o.Backing}
	if len(o.BackingKeys) > 0 {
		b.Key, b.BackingKeys = o.BackingKeys[0], o.BackingKeys[1:]
	}
	return b
}

// Open opens an image of any supported format and returns it with the
// format's name. Backing files are followed according to o.Backing, each
// of any format qemu-img accepts there, at most image.MaxChainDepth deep.
func Open(path string, o OpenOptions) (image.Image, string, error) {
	return openLayer(path, o, 0)
}

// openLayer opens the image at depth in a chain (0 for the top).
func openLayer(path string, o OpenOptions, depth int) (image.Image, string, error) {
	format := o.Format
	if format == "" {
		var err error
		if format, err = Probe(path); err != nil {
			return nil, "", err
		}
	}
	switch format {
	case "file", "iso", "img":
		format = Raw
	}
	if o.Writable && !Writable(format) {
		if !Known(format) {
			return nil, "", unknownFormat(path, format)
		}
		return nil, "", image.FileErrorf(path, "%s images are read-only in qimg: %w", format, image.ErrUnsupported)
	}
	img, err := openFormat(path, format, o, depth)
	if err != nil {
		return nil, "", err
	}
	if err := unusedBackingKey(path, format, img, o.BackingKeys, depth); err != nil {
		return nil, "", errors.Join(err, img.Close())
	}
	return img, format, nil
}

// openFormat opens path as format. Every case returns a nil interface on
// failure, never a typed nil pointer.
func openFormat(path, format string, o OpenOptions, depth int) (image.Image, error) {
	switch format {
	case QCOW2:
		return asImage(qcow2.Open(path, &qcow2.OpenOptions{
			Writable: o.Writable, Backing: o.Backing, MetadataOnly: o.MetadataOnly, ForCheck: o.ForCheck, Key: o.Key,
			OpenBacking: backingOpener(path, o, depth),
		}))
	case Raw:
		return asImage(raw.Open(path, &raw.OpenOptions{Writable: o.Writable}))
	case VMDK:
		return asImage(vmdk.Open(path, &vmdk.Options{AllowAnyPath: o.Backing == image.FollowBacking}))
	case VHDX:
		if o.ForCheck {
			return asImage(vhdx.OpenForCheck(path))
		}
		return asImage(vhdx.Open(path))
	case VDI:
		if o.ForCheck || o.MetadataOnly {
			return asImage(vdi.OpenForCheck(path))
		}
		return asImage(vdi.Open(path))
	case VPC:
		return asImage(vhd.Open(path))
	}
	return nil, unknownFormat(path, format)
}

// BackingOpener opens the backing files an image at path names, as Open
// does: for qcow2.CreateOptions.OpenBacking when creating an overlay.
func BackingOpener(path string) func(name, format string) (image.Image, error) {
	return backingOpener(path, OpenOptions{Backing: image.FollowBacking}, 0)
}

// backingOpener opens the backing files an image at parent names: any
// format, resolved against parent's directory as QEMU does, read-only,
// and never deeper than image.MaxChainDepth (which also ends loops).
func backingOpener(parent string, o OpenOptions, depth int) func(name, format string) (image.Image, error) {
	return func(name, format string) (image.Image, error) {
		if depth+1 > image.MaxChainDepth {
			return nil, fmt.Errorf("backing chain deeper than %d (a loop?): %w", image.MaxChainDepth, image.ErrLimit)
		}
		img, _, err := openLayer(image.ResolveName(parent, name), o.backingLayer(format), depth+1)
		return img, err
	}
}

// Known reports whether Open reads the format (a qemu-img format name).
func Known(format string) bool { return slices.Contains(Formats(), format) }

func unknownFormat(path, format string) error {
	return image.FileErrorf(path, "unknown image format %q: %w", format, image.ErrUnsupported)
}

// asImage turns a typed open result into an image.Image without turning
// a nil pointer into a non-nil interface.
func asImage[T image.Image](img T, err error) (image.Image, error) {
	if err != nil {
		return nil, err
	}
	return img, nil
}
