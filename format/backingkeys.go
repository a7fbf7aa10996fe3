package format

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/qimg/qimg/image"
)

// UnusedKeyError means OpenOptions.BackingKeys gave a key for a backing
// file below the last image of the chain, which names none. qemu-img
// refuses such options ("Could not open backing file: Must specify either
// driver or file"); ignoring them would hide a mistyped chain. It is an
// image.ErrInvalidArgument.
type UnusedKeyError struct {
	Image  string // the last image of the chain
	Option string // qemu-img's name of the key's option, "backing.encrypt.key-secret"
	// NoBackingFiles is set when the image's format has no backing files
	// at all (qemu-img: "Driver doesn't support backing files").
	NoBackingFiles bool
}

func (e *UnusedKeyError) Error() string {
	if e.NoBackingFiles {
		return fmt.Sprintf("%s is of a format without backing files, but %s gives the key of one", e.Image, e.Option)
	}
	return fmt.Sprintf("%s has no backing file, but %s gives the key of one", e.Image, e.Option)
}

// Is makes the error an image.ErrInvalidArgument.
func (e *UnusedKeyError) Is(target error) bool { return target == image.ErrInvalidArgument }

// unusedBackingKey fails if keys (the backing keys of img, opened from
// path as format at depth in its chain) give a key while img names no
// backing file. An image left locked (encrypted, opened without its key)
// is not refused here: its reads fail, as qemu-img refuses it first.
func unusedBackingKey(path, format string, img image.Image, keys [][]byte, depth int) error {
	i := slices.IndexFunc(keys, func(k []byte) bool { return k != nil })
	if i < 0 {
		return nil
	}
	if r, ok := img.(interface{ ReadError() error }); ok && errors.Is(r.ReadError(), image.ErrEncrypted) {
		// A layer opened without its key cannot be read: that is its
		// first failure, and qemu-img reports it before the options
		// below it.
		return nil
	}
	if b, ok := img.(image.BackingNamer); ok {
		if name, _ := b.BackingFile(); name != "" {
			return nil
		}
	}
	return &UnusedKeyError{Image: path, Option: strings.Repeat("backing.", depth+1+i) + "encrypt.key-secret",
		// Of qimg's formats, QEMU 7.2 gives qcow2 and VMDK backing files.
		NoBackingFiles: format != QCOW2 && format != VMDK}
}
