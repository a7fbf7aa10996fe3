package qcow2

import (
	"encoding/binary"

	"github.com/qimg/qimg/image"
)

// Bits of L1 and L2 entries.
const (
	offsetMask     = 0x00fffffffffffe00 // bits 9-55: host offset
	flagCopied     = 1 << 63            // refcount is exactly 1
	flagCompressed = 1 << 62
	flagZero       = 1 << 0 // standard cluster reads as zeros (v3)
	l1ReservedMask = 0x7f000000000001ff
)

// kind is how a cluster or subcluster is stored.
type kind uint8

const (
	kindUnallocated kind = iota // falls through to the backing file, or zeros
	kindZero                    // reads as zeros
	kindNormal                  // stored uncompressed at a host offset
	kindCompressed              // stored compressed; whole cluster only
)

// l2Table is a decoded L2 table: one uint64 per entry, or two with
// extended L2 entries (descriptor, then subcluster bitmap).
type l2Table struct {
	off     int64
	entries []uint64
}

// compressedDesc splits a compressed cluster descriptor into the host byte
// offset and the number of bytes that may hold the compressed stream.
func (h *Header) compressedDesc(entry uint64) (host int64, size int64) {
	x := 62 - (h.ClusterBits - 8)
	host = int64(entry & (1<<x - 1))
	sectors := int64((entry>>x)&(1<<(h.ClusterBits-8)-1)) + 1
	size = sectors*512 - host&511
	return host, size
}

// encodeCompressed builds a compressed cluster descriptor.
func (h *Header) encodeCompressed(host, size int64) uint64 {
	x := 62 - (h.ClusterBits - 8)
	extra := (host+size-1)>>9 - host>>9
	return flagCompressed | uint64(extra)<<x | uint64(host)
}

// l2At returns the L2 table an L1 entry points to, or nil if the entry is
// unallocated. The caller holds img.mu (read or write).
func (img *Image) l2At(l1Index int64) (*l2Table, error) {
	if l1Index >= int64(len(img.l1)) {
		return nil, nil
	}
	e := img.l1[l1Index]
	off := int64(e & offsetMask)
	if off == 0 {
		return nil, nil
	}
	return img.loadL2(off, l1Index)
}

func (img *Image) loadL2(off int64, l1Index int64) (*l2Table, error) {
	if t := img.l2cache.get(off); t != nil {
		return t, nil
	}
	cs := img.hdr.ClusterSize()
	if off%cs != 0 {
		return nil, img.errorf(image.ErrCorrupt, "L2 table offset %#x (L1 index %d) is not cluster aligned", off, l1Index)
	}
	if off+cs > img.hostEnd() {
		return nil, img.errorf(image.ErrCorrupt, "L2 table at %#x (L1 index %d) lies past the end of the file", off, l1Index)
	}
	bufp := img.codec.buffer(cs)
	defer img.codec.buffers.Put(bufp)
	buf := *bufp
	if _, err := img.file.ReadAt(buf, off); err != nil {
		return nil, img.errorf(image.ErrCorrupt, "reading L2 table at %#x: %v", off, err)
	}
	t := &l2Table{off: off, entries: make([]uint64, cs/8)}
	for i := range t.entries {
		t.entries[i] = binary.BigEndian.Uint64(buf[i*8:])
	}
	img.l2cache.put(off, t)
	return t, nil
}

// checkDataCluster rejects a data cluster that starts a cluster or more
// past the end of the image file, which qemu-img check reports as an
// error: such an entry is corruption (or a truncated copy), not a sparse
// tail. Data in an external data file is not checked: that file is
// mapped 1:1 and may legitimately be shorter.
func (img *Image) checkDataCluster(host, l2Off, idx int64) error {
	if img.hdr.IncompatibleFeatures&IncompatDataFile != 0 {
		return nil
	}
	cs := img.hdr.ClusterSize()
	if end := (img.hostEnd() + cs - 1) &^ (cs - 1); host >= end {
		return img.errorf(image.ErrCorrupt, "data cluster at %#x (L2 table %#x index %d) lies past the end of the file (%d bytes)", host, l2Off, idx, img.hostEnd())
	}
	return nil
}
