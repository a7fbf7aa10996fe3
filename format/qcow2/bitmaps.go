package qcow2

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/qimg/qimg/image"
)

// Persistent dirty bitmaps (docs/interop/qcow2.rst, "Bitmaps extension")
// record which clusters changed since a backup. qimg does not maintain
// them, so a writer marks every bitmap in_use before its first change,
// which QEMU reads as "not saved correctly, may be inconsistent": it keeps
// the bitmap, shows it in `qemu-img info` with the in-use flag, will not
// use it for incremental backups, and `qemu-img check` stays clean. Clearing the autoclear bit
// instead, as a program that does not know bitmaps does, makes QEMU drop
// the whole extension and count its clusters as leaks.

// Flags of a bitmap directory entry.
const (
	bitmapInUse = 1 << 0
	bitmapAuto  = 1 << 1
)

// Bitmap describes a persistent dirty bitmap, as qemu-img info lists it.
type Bitmap struct {
	Name        string
	Granularity int64 // bytes per bit
	InUse       bool  // not saved correctly: the bitmap may be inconsistent
	Auto        bool  // QEMU records writes in it whenever the image is open
}

// Bitmaps lists the image's persistent dirty bitmaps in directory order:
// none when the image has no bitmaps extension or its autoclear bit is
// clear (QEMU then ignores the extension).
func (img *Image) Bitmaps() ([]Bitmap, error) {
	h := img.hdr
	if h.Bitmaps == nil || h.AutoclearFeatures&AutoclearBitmaps == 0 {
		return nil, nil
	}
	dir, err := img.bitmapDirectory()
	if err != nil {
		return nil, img.errorf(image.ErrCorrupt, "%v", err)
	}
	var list []Bitmap
	err = walkBitmapDirectory(dir, h.Bitmaps.NbBitmaps, func(entry []byte, rest []byte) error {
		be := binary.BigEndian
		flags, granularityBits := be.Uint32(entry[12:]), entry[17]
		nameSize, extra := int(be.Uint16(entry[18:])), int(be.Uint32(entry[20:]))
		if granularityBits > 31 || extra+nameSize > len(rest) {
			return fmt.Errorf("%w: bitmap %d has granularity bits %d, name of %d bytes", errBitmapDirectory, len(list), granularityBits, nameSize)
		}
		list = append(list, Bitmap{
			Name:        string(rest[extra : extra+nameSize]),
			Granularity: 1 << granularityBits,
			InUse:       flags&bitmapInUse != 0,
			Auto:        flags&bitmapAuto != 0,
		})
		return nil
	})
	if err != nil {
		return nil, img.errorf(image.ErrCorrupt, "%v", err)
	}
	return list, nil
}

// bitmapDirectory reads the bitmap directory, checking that it lies
// inside the file and is not larger than QEMU allows.
func (img *Image) bitmapDirectory() ([]byte, error) {
	b := img.hdr.Bitmaps
	if b.DirectorySize > maxBitmapDirectory || b.DirectoryOff > uint64(img.fileSize) || b.DirectorySize > uint64(img.fileSize)-b.DirectoryOff {
		return nil, fmt.Errorf("%w: at %#x, %d bytes, it lies outside the file", errBitmapDirectory, b.DirectoryOff, b.DirectorySize)
	}
	dir := make([]byte, b.DirectorySize)
	if _, err := img.file.ReadAt(dir, int64(b.DirectoryOff)); err != nil {
		return nil, err
	}
	return dir, nil
}

// markBitmapsInUse sets the in_use flag of every bitmap in the directory,
// in place. It reports an error, and writes nothing, for a directory that
// does not parse; the caller then clears the autoclear bit.
func (img *Image) markBitmapsInUse() error {
	dir, err := img.bitmapDirectory()
	if err != nil {
		return err
	}
	err = walkBitmapDirectory(dir, img.hdr.Bitmaps.NbBitmaps, func(entry, _ []byte) error {
		binary.BigEndian.PutUint32(entry[12:], binary.BigEndian.Uint32(entry[12:])|bitmapInUse)
		return nil
	})
	if err != nil {
		return err
	}
	_, err = img.wfile.WriteAt(dir, int64(img.hdr.Bitmaps.DirectoryOff))
	return err
}

// errBitmapDirectory is a directory whose entries run past its end.
var errBitmapDirectory = errors.New("bitmap directory is corrupt")

// walkBitmapDirectory calls fn with the fixed 24-byte part of each of the
// n entries of a bitmap directory (a slice of dir: fn may change it) and
// the rest of the directory after it, where the entry's extra data and
// name come first.
func walkBitmapDirectory(dir []byte, n uint32, fn func(entry, rest []byte) error) error {
	be := binary.BigEndian
	for pos, i := uint64(0), uint32(0); i < n; i++ {
		if pos+24 > uint64(len(dir)) {
			return fmt.Errorf("%w: entry %d runs past its end", errBitmapDirectory, i)
		}
		entry := dir[pos : pos+24]
		if err := fn(entry, dir[pos+24:]); err != nil {
			return err
		}
		nameSize, extra := uint64(be.Uint16(entry[18:])), uint64(be.Uint32(entry[20:]))
		pos += (24 + nameSize + extra + 7) &^ 7
	}
	return nil
}
