package main

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	imgfmt "github.com/qimg/qimg/format"
	"github.com/qimg/qimg/image"
)

// noKey is qemu-img's reason for refusing an encrypted image opened
// without --object secret: qimg has no key support at all.
const noKey = "Parameter 'encrypt.key-secret' is required for cipher"

// unusedKeyReason is qemu-img's reason for a backing key option
// (backing.encrypt.key-secret...) that reaches below the last image of the
// chain: it opens the option's level as an image of its own, which names
// no file, or refuses the option of a format without backing files.
func unusedKeyReason(uk *imgfmt.UnusedKeyError) string {
	if uk.NoBackingFiles {
		return "Driver doesn't support backing files"
	}
	return "Could not open backing file: Must specify either driver or file"
}

// externalReason is qemu-img's reason for an image whose backing or data
// file did not open, after "Could not open 'IMAGE': ". A backing chain
// repeats "Could not open backing file: " once per level.
func externalReason(xe *image.ExternalError) string {
	if xe.Kind == image.KindDataFile {
		// QEMU names the data file as stored in the image.
		return fmt.Sprintf("Could not open '%s': %s", xe.Name, reason(xe.Path, xe.Err))
	}
	// QEMU names a backing file joined to its image's directory.
	name := image.ResolveName(xe.Image, xe.Name)
	var inner *image.ExternalError
	var pe *fs.PathError
	var uk *imgfmt.UnusedKeyError
	switch {
	case errors.As(xe.Err, &inner):
		return "Could not open backing file: " + externalReason(inner)
	case errors.As(xe.Err, &uk):
		return "Could not open backing file: " + unusedKeyReason(uk)
	case errors.As(xe.Err, &pe):
		return fmt.Sprintf("Could not open backing file: Could not open '%s': %s", name, reason(pe.Path, xe.Err))
	}
	return "Could not open backing file: " + reason(xe.Path, xe.Err)
}

// openData opens an image whose guest data a command reads. Unlike info,
// such commands need every file of the chain and the key of encrypted
// layers, and qemu-img refuses the image when one is missing.
func openData(path, format string, writable bool, backing image.BackingPolicy) (image.Image, string, error) {
	return openDataSpec(imageSpec{name: path, path: path, format: format}, writable, backing)
}

// openDataSpec is openData for an image given as a spec, which may carry
// the key of an encrypted image.
func openDataSpec(s imageSpec, writable bool, backing image.BackingPolicy) (image.Image, string, error) {
	o := imgfmt.OpenOptions{Format: s.format, Writable: writable, Backing: backing, Key: s.key, BackingKeys: s.backingKeys}
	img, f, err := openNamed(s.name, s.path, o)
	if err != nil {
		// qemu-img asks for the image's own key before it opens the
		// backing file: an encrypted image is refused for that first.
		if s.key == nil {
			if eerr := refuseEncryptedTop(s); eerr != nil {
				return nil, "", eerr
			}
		}
		return nil, "", err
	}
	if err := refuseEncrypted(s.name, img); err != nil {
		img.Close()
		return nil, "", err
	}
	return img, f, nil
}

// refuseEncryptedTop fails, in qemu-img's words, if the image s names is
// encrypted (opened alone, without its backing file).
func refuseEncryptedTop(s imageSpec) error {
	top, _, err := imgfmt.Open(s.path, imgfmt.OpenOptions{Format: s.format, Backing: image.IgnoreBacking, MetadataOnly: true})
	if err != nil {
		return nil
	}
	defer top.Close()
	return refuseEncrypted(s.name, top)
}

// refuseEncrypted fails, in qemu-img's words, if a layer of img's chain
// is encrypted. The qcow2 package opens such images so that info can show
// their header; their unallocated and zero ranges would read as zeros
// without ever reaching the key check of ReadAt.
func refuseEncrypted(path string, img image.Image) error {
	type readChecker interface{ ReadError() error }
	for depth := 0; img != nil; depth++ {
		if r, ok := img.(readChecker); ok && errors.Is(r.ReadError(), image.ErrEncrypted) {
			return fail("Could not open '%s': %s%s", path, strings.Repeat("Could not open backing file: ", depth), noKey)
		}
		b, ok := img.(image.Layered)
		if !ok {
			return nil
		}
		img = b.Backing()
	}
	return nil
}

// openForInfo opens path as qemu-img info does, for its metadata only: a
// qcow2 image whose external data file is missing is still described.
func openForInfo(s imageSpec) (image.Image, string, error) {
	return openNamed(s.name, s.path, imgfmt.OpenOptions{Format: s.format, Backing: image.IgnoreBacking, MetadataOnly: true})
}

// refuseUnopenable refuses, as qemu-img does, an image whose chain it
// would not open: one with an encrypted layer (no key) or a missing backing
// or data file anywhere in the chain. qemu-img check and snapshot open the
// whole chain although they read one layer; qimg opens it for that test
// alone (forCheck: as check opens the image) and closes it. img is the
// image already open on its own: its encryption is reported first, as
// qemu-img does. --untrusted never opens what the image names.
func refuseUnopenable(s imageSpec, img image.Image, forCheck, untrusted bool) error {
	if err := refuseEncrypted(s.name, img); err != nil || untrusted {
		return err
	}
	if s.key != nil && !namesFiles(img) {
		return nil // nothing more to open, and unlocking again costs time
	}
	chain, _, err := imgfmt.Open(s.path, imgfmt.OpenOptions{Format: s.format, ForCheck: forCheck, Key: s.key, BackingKeys: s.backingKeys})
	if err != nil {
		return openFailureAs(s.name, s.path, s.format, err)
	}
	defer chain.Close()
	return refuseEncrypted(s.name, chain)
}

// namesFiles reports whether img names a backing or external data file.
func namesFiles(img image.Image) bool {
	if b, ok := img.(image.BackingNamer); ok {
		if name, _ := b.BackingFile(); name != "" {
			return true
		}
	}
	if h, ok := img.(image.Mapper); ok {
		if l, err := h.HostLayout(); err != nil || len(l.Files) > 0 {
			return true
		}
	}
	return false
}
