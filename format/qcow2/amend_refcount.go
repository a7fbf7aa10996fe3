package qcow2

import (
	"context"
	"encoding/binary"

	"github.com/qimg/qimg/image"
)

// Changing the refcount width (refcount_bits). The references are counted
// as a check counts them, in an array of the new width, which is written
// as new refcount blocks and a new table into clusters nothing uses; then
// one header write switches the table and the width together. Until that
// write the old structure is in force and untouched; after it, the old
// structure is leaked, and the repair that ends the step under the dirty
// bit frees it.

// changeRefcountWidth rewrites the refcount structure with bits-wide
// entries (a power of two from 1 to 64, on a version 3 image).
func (img *Image) changeRefcountWidth(ctx context.Context, bits int) error {
	return img.underDirtyBit(ctx, func() error {
		img.mu.Lock()
		defer img.mu.Unlock()
		return img.switchRefcountWidth(ctx, uint(bits))
	})
}

func (img *Image) switchRefcountWidth(ctx context.Context, bits uint) error {
	c, err := img.newChecker(ctx)
	if err != nil {
		return err
	}
	if err := img.refusePastWidth(c, bits); err != nil {
		return err
	}
	c.setWidth(bits)
	if err := c.grow((c.fileSize + c.cs - 1) >> c.cbits); err != nil {
		return err
	}
	if err := c.readSnapshotTable(); err != nil {
		return err
	}
	if err := c.calculate(image.RepairNone); err != nil {
		return err
	}
	if c.res.Corruptions > 0 || c.res.CheckErrors > 0 {
		return img.errorf(image.ErrCorrupt, "the image has errors (run 'qimg check -r all' first): %d found", c.res.Corruptions+c.res.CheckErrors)
	}
	_, off, clusters, err := c.writeStructure()
	if err != nil {
		return err
	}
	return img.switchRefcounts(off, clusters, bits)
}

// refusePastWidth refuses a width too narrow for a stored refcount, with
// QEMU's message.
func (img *Image) refusePastWidth(c *checker, bits uint) error {
	if bits >= c.bits {
		return nil
	}
	limit := uint64(1)<<bits - 1
	for k := int64(0); k < c.n; k++ {
		v, err := c.stored.get(k)
		if err != nil {
			return err
		}
		if v > limit {
			return img.amendError(image.ErrLimit, "Cannot decrease refcount entry width to %d bits: Cluster at offset %#x has a refcount of %d", bits, k*c.cs, v)
		}
	}
	return nil
}

// setWidth makes the checker count in entries of bits bits, from scratch.
func (c *checker) setWidth(bits uint) {
	c.bits = bits
	c.max = ^uint64(0) >> (64 - bits)
	c.perBlock = c.cs * 8 / int64(bits)
	c.expected = refblock{}
	c.n = 0
}

// switchRefcounts points the header at the new refcount table and width
// with one write of the fields from refcount_table_offset to
// refcount_order (the fields between keep their values), then reloads
// the allocator for the new structure.
func (img *Image) switchRefcounts(off, clusters int64, bits uint) error {
	h := img.hdr
	order := uint32(0)
	for 1<<order < bits {
		order++
	}
	be := binary.BigEndian
	var b [100 - 48]byte
	be.PutUint64(b[0:], uint64(off))
	be.PutUint32(b[8:], uint32(clusters))
	be.PutUint32(b[12:], h.NbSnapshots)
	be.PutUint64(b[16:], h.SnapshotsOffset)
	be.PutUint64(b[24:], h.IncompatibleFeatures)
	be.PutUint64(b[32:], h.CompatibleFeatures)
	be.PutUint64(b[40:], h.AutoclearFeatures)
	be.PutUint32(b[48:], order)
	if _, err := img.wfile.WriteAt(b[:], 48); err != nil {
		return image.FileErrorf(img.name, "writing the header: %w", err)
	}
	if err := img.wfile.Sync(); err != nil {
		return err
	}
	h.RefcountTableOffset, h.RefcountTableClusters, h.RefcountOrder = uint64(off), uint32(clusters), order
	img.meta = nil
	return img.reloadAfterRepair()
}
