package qcow2

import (
	"encoding/binary"

	"github.com/qimg/qimg/image"
)

// Resize changes the virtual size. Shrinking discards the data past the new
// end and needs shrink set, as qemu-img's --shrink; without it the image
// is left untouched. Like QEMU 7.2, images with internal snapshots may
// shrink too: the snapshots keep their own L1 tables and sizes, and the
// active layer's shared tables are copied before they change. Every step
// keeps the image consistent: the L1 table grows before the size does,
// and data is dropped before the size shrinks.
func (img *Image) Resize(newSize int64, shrink bool) error {
	if img.alloc == nil {
		return img.errorf(image.ErrReadOnly, "resize of an image opened read-only")
	}
	if newSize < 0 || uint64(newSize) > maxVirtualSize {
		return img.errorf(image.ErrInvalidArgument, "new size %d is out of range", newSize)
	}
	if newSize%512 != 0 {
		return img.errorf(image.ErrUnaligned, "the new size must be a multiple of 512")
	}
	old := img.Size()
	switch {
	case newSize == old:
		return nil
	case newSize < old && !shrink:
		return img.errorf(image.ErrInvalidArgument, "use the --shrink option to perform a shrink operation")
	}
	if err := img.staleBitmaps(); err != nil {
		return err
	}
	if newSize > old {
		return img.grow(newSize)
	}
	return img.shrink(newSize)
}

// grow enlarges the L1 table if needed, then the size, then makes the new
// area read as zeros where the backing file or a stale cluster tail would
// otherwise show through.
func (img *Image) grow(newSize int64) error {
	img.mu.Lock()
	defer img.mu.Unlock()
	h := img.hdr
	old := img.Size() // a tail past the sector-rounded size was never visible either
	cs := h.ClusterSize()
	if old%cs != 0 {
		// Bytes past the old end inside its last cluster become visible.
		m, err := img.lookup(old, cs-old%cs)
		if err != nil {
			return err
		}
		if m.kind != kindUnallocated && m.kind != kindZero {
			if err := img.writeChunk(make([]byte, cs-old%cs), old); err != nil {
				return err
			}
		}
	}
	perL2 := h.L2Entries() * cs
	need := (newSize + perL2 - 1) / perL2
	if need > int64(len(img.l1)) {
		if err := img.growL1(need); err != nil {
			return err
		}
	}
	if err := img.setSize(newSize); err != nil {
		return err
	}
	if img.backing != nil && img.backing.Size() > old {
		img.mu.Unlock()
		err := img.zeroRange(old, min(newSize, img.backing.Size())-old, zeroWrite)
		img.mu.Lock()
		return err
	}
	return nil
}

// growL1 moves the L1 table to a larger place: a free run or the end of
// the file.
func (img *Image) growL1(entries int64) error {
	h := img.hdr
	cs := h.ClusterSize()
	if entries*8 > maxL1Bytes {
		return img.errorf(image.ErrLimit, "L1 table of %d entries would exceed QEMU's 32 MiB limit", entries)
	}
	clusters := (entries*8 + cs - 1) / cs
	first, err := img.allocClusters(clusters)
	if err != nil {
		return err
	}
	img.noteMetadata(first, clusters)
	if err := img.alloc.flush(); err != nil {
		return err
	}
	l1 := make([]uint64, entries)
	copy(l1, img.l1)
	buf := make([]byte, clusters*cs)
	for i, e := range l1 {
		binary.BigEndian.PutUint64(buf[i*8:], e)
	}
	if _, err := img.wfile.WriteAt(buf, first*cs); err != nil {
		return image.FileErrorf(img.name, "writing L1 table: %w", err)
	}
	var hdr [12]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(entries))
	binary.BigEndian.PutUint64(hdr[4:], uint64(first*cs))
	// l1_size and l1_table_offset are adjacent: one write switches tables.
	if _, err := img.wfile.WriteAt(hdr[:], 36); err != nil {
		return image.FileErrorf(img.name, "updating header: %w", err)
	}
	oldOff, oldLen := int64(h.L1TableOffset), int64(len(img.l1))
	img.l1, h.L1Size, h.L1TableOffset = l1, uint32(entries), uint64(first*cs)
	if oldLen > 0 {
		for c := oldOff / cs; c < (oldOff+oldLen*8+cs-1)/cs; c++ {
			img.alloc.freeLater(c)
		}
	}
	return img.alloc.flush()
}

func (img *Image) setSize(size int64) error {
	if err := img.writeBE64(24, uint64(size)); err != nil {
		return err
	}
	img.hdr.Size = uint64(size)
	return nil
}

// shrink drops every cluster past the new end, then the L2 tables that
// only covered the dropped part, then sets the size.
func (img *Image) shrink(newSize int64) error {
	img.mu.Lock()
	h := img.hdr
	cs := h.ClusterSize()
	from := (newSize + cs - 1) &^ (cs - 1)
	img.mu.Unlock()
	if from < img.Size() {
		if err := img.dropClusters(from, img.Size()-from); err != nil {
			return err
		}
	}
	img.mu.Lock()
	defer img.mu.Unlock()
	perL2 := h.L2Entries() * cs
	keep := (newSize + perL2 - 1) / perL2
	for i := keep; i < int64(len(img.l1)); i++ {
		off := int64(img.l1[i] & offsetMask)
		if off == 0 {
			continue
		}
		img.l1[i] = 0
		if err := img.writeBE64(int64(h.L1TableOffset)+i*8, 0); err != nil {
			return err
		}
		img.l2cache.drop(off)
		img.alloc.freeLater(off / cs) // our reference; a snapshot keeps its own
	}
	if err := img.alloc.flush(); err != nil {
		return err
	}
	return img.setSize(newSize)
}

// dropClusters unmaps whole clusters, leaving plain unallocated entries
// (the area leaves the disk, so no zero flag is needed over backing data).
func (img *Image) dropClusters(off, length int64) error {
	return img.zeroRange(off, length, zeroDrop)
}
