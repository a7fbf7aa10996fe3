package qcow2

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Persistent dirty bitmaps (docs/interop/qcow2.rst, "Bitmaps extension")
// record which clusters changed since a backup. qimg does not maintain
// them, so a writer marks every bitmap in_use, which QEMU reads as "not
// saved correctly, may be inconsistent": it keeps the bitmap, shows it in
// `qemu-img info` with the in-use flag, will not use it for incremental
// backups, and `qemu-img check` stays clean. Clearing the autoclear bit
// instead, as a program that does not know bitmaps does, makes QEMU drop
// the whole extension and count its clusters as leaks.

const bitmapInUse = 1 // bit 0 of a directory entry's flags

// markBitmapsInUse sets the in_use flag of every bitmap in the directory,
// in place. It reports an error, and writes nothing, for a directory that
// does not parse; the caller then clears the autoclear bit.
func (img *Image) markBitmapsInUse() error {
	b := img.hdr.Bitmaps
	if b.DirectorySize > maxBitmapDirectory || b.DirectoryOff > uint64(img.fileSize) || b.DirectorySize > uint64(img.fileSize)-b.DirectoryOff {
		return fmt.Errorf("bitmap directory at %#x (%d bytes) lies outside the file", b.DirectoryOff, b.DirectorySize)
	}
	dir := make([]byte, b.DirectorySize)
	if _, err := img.file.ReadAt(dir, int64(b.DirectoryOff)); err != nil {
		return err
	}
	err := walkBitmapDirectory(dir, b.NbBitmaps, func(entry []byte) error {
		binary.BigEndian.PutUint32(entry[12:], binary.BigEndian.Uint32(entry[12:])|bitmapInUse)
		return nil
	})
	if err != nil {
		return err
	}
	_, err = img.wfile.WriteAt(dir, int64(b.DirectoryOff))
	return err
}

// errBitmapDirectory is a directory whose entries run past its end.
var errBitmapDirectory = errors.New("bitmap directory is corrupt")

// walkBitmapDirectory calls fn with the fixed 24-byte part of each of the
// n entries of a bitmap directory (a slice of dir: fn may change it).
func walkBitmapDirectory(dir []byte, n uint32, fn func(entry []byte) error) error {
	be := binary.BigEndian
	for pos, i := uint64(0), uint32(0); i < n; i++ {
		if pos+24 > uint64(len(dir)) {
			return fmt.Errorf("%w: entry %d runs past its end", errBitmapDirectory, i)
		}
		entry := dir[pos : pos+24]
		if err := fn(entry); err != nil {
			return err
		}
		nameSize, extra := uint64(be.Uint16(entry[18:])), uint64(be.Uint32(entry[20:]))
		pos += (24 + nameSize + extra + 7) &^ 7
	}
	return nil
}
