package qcow2

import (
	"encoding/binary"

	"github.com/qimg/qimg/image"
)

// A bitmap's contents are one bit per granularity bytes of the virtual
// disk, least significant bit first, padded to whole 64-bit words as QEMU
// serialises them; the bitmap table lists one entry per cluster of that:
// 0 for all zeros, 1 for all ones, else the cluster holding the bits.

const bitmapEntryOffsetMask = 0x00fffffffffffe00

// bitmapBits is the number of bits of a bitmap of granularity 1<<gbits
// over size bytes.
func bitmapBits(size uint64, gbits uint8) uint64 {
	return (size + 1<<gbits - 1) >> gbits
}

// bitmapBytes is the serialised size of those bits: whole 64-bit words.
func bitmapBytes(size uint64, gbits uint8) uint64 {
	return (bitmapBits(size, gbits) + 63) / 64 * 8
}

// bitmapTableSize is the number of table entries the contents need.
func (img *Image) bitmapTableSize(gbits uint8) uint64 {
	cs := uint64(img.hdr.ClusterSize())
	return (bitmapBytes(uint64(img.Size()), gbits) + cs - 1) / cs
}

// bitmapContents returns b's bits, reading them from its table unless an
// edit has replaced them (nil bits there mean all zeros). The table must
// have the size the virtual size needs, as QEMU requires; the entry's
// checks bound it (and so the allocation) to QEMU's 512 MiB.
func (img *Image) bitmapContents(b *bitmapEntry) ([]byte, error) {
	n := bitmapBytes(uint64(img.Size()), b.gbits)
	if b.rewrite {
		if b.bits == nil {
			return make([]byte, n), nil
		}
		return b.bits, nil
	}
	cs := img.hdr.ClusterSize()
	if uint64(b.tableSize) != img.bitmapTableSize(b.gbits) || b.tableSize > maxBitmapTable {
		return nil, img.errorf(image.ErrCorrupt, "could not read bitmap '%s' from image: its table has %d entries for a disk of %d bytes", b.name, b.tableSize, img.Size())
	}
	table, err := img.bitmapTable(b)
	if err != nil {
		return nil, err
	}
	bits := make([]byte, n)
	for i, e := range table {
		chunk := bits[int64(i)*cs : min(int64(i+1)*cs, int64(n))]
		off := e & bitmapEntryOffsetMask
		switch {
		case off == 0 && e&bitmapEntryAllOnes != 0:
			for j := range chunk {
				chunk[j] = 0xff
			}
		case off != 0:
			if off > uint64(img.fileSize) || uint64(cs) > uint64(img.fileSize)-off {
				return nil, img.errorf(image.ErrCorrupt, "bitmap '%s': data cluster at %#x lies outside the file", b.name, off)
			}
			if _, err := img.file.ReadAt(chunk, int64(off)); err != nil {
				return nil, image.FileErrorf(img.name, "reading bitmap '%s': %w", b.name, err)
			}
		}
	}
	clearTail(bits, bitmapBits(uint64(img.Size()), b.gbits))
	return bits, nil
}

// bitmapTable reads and checks b's table (QEMU's check_table_entry).
func (img *Image) bitmapTable(b *bitmapEntry) ([]uint64, error) {
	size := uint64(b.tableSize) * 8
	if b.tableOff > uint64(img.fileSize) || size > uint64(img.fileSize)-b.tableOff {
		return nil, img.errorf(image.ErrCorrupt, "bitmap '%s': table at %#x lies outside the file", b.name, b.tableOff)
	}
	raw := make([]byte, size)
	if _, err := img.file.ReadAt(raw, int64(b.tableOff)); err != nil {
		return nil, image.FileErrorf(img.name, "reading the table of bitmap '%s': %w", b.name, err)
	}
	cs := uint64(img.hdr.ClusterSize())
	table := make([]uint64, b.tableSize)
	for i := range table {
		e := binary.BigEndian.Uint64(raw[i*8:])
		off := e & bitmapEntryOffsetMask
		if e&bitmapEntryReserved != 0 || off != 0 && (e&bitmapEntryAllOnes != 0 || off%cs != 0) {
			return nil, img.errorf(image.ErrCorrupt, "bitmap '%s': table entry %d is invalid (%#x)", b.name, i, e)
		}
		table[i] = e
	}
	return table, nil
}

// clearTail zeroes the bits from n on, which lie past the disk's end.
func clearTail(bits []byte, n uint64) {
	if n/8 >= uint64(len(bits)) {
		return
	}
	bits[n/8] &= byte(1)<<(n%8) - 1
	clear(bits[n/8+1:])
}

// mergeBits sets in dst (granularity 1<<dg) every bit whose range of the
// disk meets a set bit of src (granularity 1<<sg), as QEMU's merge does:
// a plain OR for equal granularities, otherwise through byte ranges.
func mergeBits(dst []byte, dg uint8, src []byte, sg uint8, size uint64) {
	if dg == sg {
		for i, v := range src {
			dst[i] |= v
		}
		return
	}
	nbits := bitmapBits(size, sg)
	for i := uint64(0); i < nbits; {
		if src[i/8] == 0 && i%8 == 0 {
			i += 8
			continue
		}
		if src[i/8]&(1<<(i%8)) == 0 {
			i++
			continue
		}
		j := i + 1
		for j < nbits && src[j/8]&(1<<(j%8)) != 0 {
			j++
		}
		start, end := i<<sg, min(j<<sg, size)
		for k := start >> dg; k <= (end-1)>>dg; k++ {
			dst[k/8] |= 1 << (k % 8)
		}
		i = j
	}
}

// writeBitmapContents writes bits (nil: all zeros) into new clusters, one
// per cluster that is not all zeros, and the table that lists them; it
// returns the table's offset and size. Nothing is synced: the caller syncs
// once before the header points at the result.
func (img *Image) writeBitmapContents(bits []byte, gbits uint8) (uint64, uint32, error) {
	cs := img.hdr.ClusterSize()
	n := img.bitmapTableSize(gbits)
	table := make([]byte, n*8)
	for i := int64(0); i < int64(len(bits)); i += cs {
		chunk := bits[i:min(i+cs, int64(len(bits)))]
		if allZero(chunk) {
			continue
		}
		off, err := img.putNewClusters(chunk)
		if err != nil {
			return 0, 0, err
		}
		binary.BigEndian.PutUint64(table[i/cs*8:], off)
	}
	off, err := img.putNewClusters(table)
	if err != nil {
		return 0, 0, err
	}
	return off, uint32(n), nil
}

func allZero(b []byte) bool {
	for _, v := range b {
		if v != 0 {
			return false
		}
	}
	return true
}
