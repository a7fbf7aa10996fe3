package qcow2

import (
	"encoding/binary"
	"fmt"
)

// The bitmap directory as QEMU 7.2 loads it before changing bitmaps
// (block/qcow2-bitmap.c, bitmap_list_load and check_dir_entry): stricter
// than the listing of Bitmaps, because what qimg writes back must be what
// QEMU reads.

// Limits of a bitmap directory entry, QEMU's.
const (
	maxBitmaps           = 65535
	maxBitmapName        = 1023
	maxBitmapTable       = 0x8000000 // entries
	maxBitmapPhys        = 0x20000000
	minBitmapGranularity = 9
	maxBitmapGranularity = 31
	bitmapTypeDirty      = 1
	bitmapReservedFlags  = 0xfffffffc
	bitmapEntryFixed     = 24
)

// bitmapEntry is one bitmap of the directory.
type bitmapEntry struct {
	name       string
	gbits      uint8  // log2 of the granularity
	tableOff   uint64 // the bitmap table, kept when the contents do not change
	tableSize  uint32
	bits       []byte // new contents (LSB first), or nil: the table holds them
	rewrite    bool   // bits replace the table
	inUse      bool
	autoRecord bool
}

// parseBitmapDirectory decodes the n entries of dir as QEMU does, with
// its checks for an image of virtual size size and cluster size cs.
func parseBitmapDirectory(dir []byte, n uint32, size uint64, cs int64) ([]*bitmapEntry, error) {
	be := binary.BigEndian
	var list []*bitmapEntry
	pos := 0
	for pos < len(dir) {
		if len(dir)-pos < bitmapEntryFixed {
			return nil, fmt.Errorf("%w: broken bitmap directory", errBitmapDirectory)
		}
		if uint32(len(list)) >= n {
			return nil, fmt.Errorf("%w: more bitmaps found than specified in header extension", errBitmapDirectory)
		}
		e := dir[pos:]
		nameSize, extra := int(be.Uint16(e[18:])), be.Uint32(e[20:])
		if uint64(extra)+uint64(nameSize) > uint64(len(e)-bitmapEntryFixed) {
			return nil, fmt.Errorf("%w: broken bitmap directory", errBitmapDirectory)
		}
		if extra != 0 {
			return nil, fmt.Errorf("%w: bitmap extra data is not supported", errBitmapDirectory)
		}
		flags := be.Uint32(e[12:])
		b := &bitmapEntry{
			name:       string(e[bitmapEntryFixed : bitmapEntryFixed+nameSize]),
			tableOff:   be.Uint64(e),
			tableSize:  be.Uint32(e[8:]),
			gbits:      e[17],
			inUse:      flags&bitmapInUse != 0,
			autoRecord: flags&bitmapAuto != 0,
		}
		if !b.valid(e[16], flags, size, cs) {
			return nil, fmt.Errorf("%w: bitmap '%s' doesn't satisfy the constraints", errBitmapDirectory, b.name)
		}
		list = append(list, b)
		pos += bitmapEntrySize(nameSize)
	}
	if uint32(len(list)) != n {
		return nil, fmt.Errorf("%w: less bitmaps found than specified in header extension", errBitmapDirectory)
	}
	if pos != len(dir) {
		return nil, fmt.Errorf("%w: broken bitmap directory", errBitmapDirectory)
	}
	return list, nil
}

// valid is QEMU's check_dir_entry. A bitmap in use may have a table too
// small for the size (it was not saved after a resize).
func (b *bitmapEntry) valid(typ uint8, flags uint32, size uint64, cs int64) bool {
	if b.tableSize == 0 || b.tableOff == 0 || b.tableOff%uint64(cs) != 0 || b.tableSize > maxBitmapTable ||
		b.gbits > maxBitmapGranularity || b.gbits < minBitmapGranularity || flags&bitmapReservedFlags != 0 ||
		len(b.name) > maxBitmapName || typ != bitmapTypeDirty {
		return false
	}
	phys := uint64(b.tableSize) * uint64(cs)
	if phys > maxBitmapPhys {
		return false
	}
	return b.inUse || size <= (phys*8)<<b.gbits
}

// bitmapEntrySize is the room an entry with a name of n bytes takes.
func bitmapEntrySize(n int) int { return (bitmapEntryFixed + n + 7) &^ 7 }

// encodeBitmapDirectory lays out the directory of list.
func encodeBitmapDirectory(list []*bitmapEntry) []byte {
	size := 0
	for _, b := range list {
		size += bitmapEntrySize(len(b.name))
	}
	dir := make([]byte, size)
	be := binary.BigEndian
	pos := 0
	for _, b := range list {
		e := dir[pos:]
		be.PutUint64(e, b.tableOff)
		be.PutUint32(e[8:], b.tableSize)
		var flags uint32
		if b.inUse {
			flags |= bitmapInUse
		}
		if b.autoRecord {
			flags |= bitmapAuto
		}
		be.PutUint32(e[12:], flags)
		e[16] = bitmapTypeDirty
		e[17] = b.gbits
		be.PutUint16(e[18:], uint16(len(b.name)))
		copy(e[bitmapEntryFixed:], b.name)
		pos += bitmapEntrySize(len(b.name))
	}
	return dir
}
