package qcow2

import (
	"encoding/binary"
	"io"
	"os"

	"github.com/qimg/qimg/format/raw"
	"github.com/qimg/qimg/image"
)

// withChain returns o (or default options) with an OpenBacking that opens
// qcow2 and raw backing files, resolved against path's directory, for the
// tests that read through chains. Package format is the real opener (any
// format, depth-bounded, tested there); it imports qcow2, so these tests
// cannot use it.
func withChain(path string, o *OpenOptions) *OpenOptions {
	c := OpenOptions{}
	if o != nil {
		c = *o
	}
	c.OpenBacking = func(name, format string) (image.Image, error) {
		full := image.ResolveName(path, name)
		if format == "" && !isQCOW2(full) || format == "raw" {
			return asImage(raw.Open(full, nil))
		}
		return asImage(Open(full, withChain(full, &OpenOptions{Backing: c.Backing})))
	}
	return &c
}

func isQCOW2(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return true // let Open report it
	}
	defer f.Close()
	var magic [4]byte
	_, err = io.ReadFull(f, magic[:])
	return err != nil || binary.BigEndian.Uint32(magic[:]) == Magic
}

func asImage[T image.Image](img T, err error) (image.Image, error) {
	if err != nil {
		return nil, err
	}
	return img, nil
}
