package qcow2

import (
	"context"
	"encoding/binary"

	"github.com/qimg/qimg/image"
)

// Changing the version (compat=0.10 ↔ 1.1). Upgrading rewrites the header
// cluster in the version 3 layout, with QEMU's feature name table.
// Downgrading first turns zero clusters, which version 2 lacks, into
// something a version 2 reader sees as zeros (an unallocated cluster when
// nothing shows through, else a cluster of zeros), then rewrites the header
// in the version 2 layout. Refusals are QEMU's (qcow2_downgrade), checked
// before anything changes.

// checkUpgrade refuses what qimg cannot upgrade: snapshot entries without
// the extra data version 3 requires (QEMU rewrites the table; such entries
// come only from QEMU before 1.1, which never wrote the extra data).
func (img *Image) checkUpgrade() error {
	snaps, err := img.Snapshots()
	if err != nil {
		return err
	}
	for _, s := range snaps {
		if len(s.ExtraData) < 16 {
			return img.errorf(image.ErrUnsupported, "snapshot %s has %d bytes of extra data, version 3 needs 16: qimg does not rewrite such a table", s.ID, len(s.ExtraData))
		}
	}
	return nil
}

// upgrade makes a version 2 image version 3: one write of the header.
func (img *Image) upgrade() error {
	nh := *img.hdr
	nh.Version = 3
	nh.HeaderLength = 112
	nh.RefcountOrder = 4
	nh.IncompatibleFeatures, nh.CompatibleFeatures, nh.AutoclearFeatures = 0, 0, 0
	nh.CompressionType = CompressionZlib
	nh.ExtraFields = nil
	nh.FeatureNames = defaultFeatureNames()
	return img.switchHeader(&nh)
}

// checkDowngrade refuses a downgrade as QEMU's qcow2_downgrade does, with
// its messages and in its order, for the image as the earlier steps of
// plan leave it.
func (img *Image) checkDowngrade(ctx context.Context, p *amendPlan) error {
	h := img.hdr
	if p.refcountBits != 16 {
		return img.amendError(image.ErrUnsupported, "compat=0.10 requires refcount_bits=16")
	}
	if h.IncompatibleFeatures&IncompatDataFile != 0 {
		return img.amendError(image.ErrUnsupported, "Cannot downgrade an image with a data file")
	}
	snaps, err := img.Snapshots()
	if err != nil {
		return err
	}
	size := h.Size
	if p.size != 0 {
		size = p.size
	}
	for _, s := range snaps {
		disk := s.DiskSize
		if len(s.ExtraData) < 16 {
			disk = h.Size // QEMU's default for an entry without it
		}
		if s.VMStateSize > 1<<32-1 || disk != size {
			return img.amendError(image.ErrUnsupported, "Internal snapshots prevent downgrade of image")
		}
	}
	if in := h.IncompatibleFeatures &^ (IncompatCompressionType | IncompatDirty); in != 0 {
		return img.amendError(image.ErrUnsupported, "Cannot downgrade an image with incompatible features 0x%x set", in)
	}
	if h.AutoclearFeatures&AutoclearBitmaps != 0 && h.Bitmaps != nil && h.Bitmaps.NbBitmaps > 0 {
		// QEMU goes ahead and leaves a version 2 image whose bitmap
		// clusters leak; qimg refuses instead of dropping them.
		return img.amendError(image.ErrUnsupported, "Cannot downgrade an image with persistent dirty bitmaps (remove them with 'qimg bitmap --remove' first)")
	}
	if h.CryptMethod != cryptNone && h.BackingFile != "" {
		// Zero clusters over a backing file become clusters of zeros,
		// which an encrypted image would have to hold encrypted.
		return img.errorf(image.ErrUnsupported, "qimg does not downgrade an encrypted image with a backing file")
	}
	if h.CompressionType != CompressionZlib {
		found, err := img.hasCompressedClusters(ctx)
		if err != nil {
			return err
		}
		if found {
			return img.amendError(image.ErrUnsupported, "Cannot downgrade an image with zstd compression type and existing compressed clusters")
		}
	}
	return nil
}

// downgrade expands zero clusters under the dirty bit, then writes the
// version 2 header.
func (img *Image) downgrade(ctx context.Context) error {
	if err := img.underDirtyBit(ctx, func() error { return img.expandZeros(ctx) }); err != nil {
		return err
	}
	nh := *img.hdr
	nh.Version = 2
	nh.HeaderLength = headerV2Length
	nh.RefcountOrder = 4
	nh.IncompatibleFeatures, nh.CompatibleFeatures, nh.AutoclearFeatures = 0, 0, 0
	nh.CompressionType = CompressionZlib
	nh.ExtraFields, nh.FeatureNames, nh.Bitmaps = nil, nil, nil
	return img.switchHeader(&nh)
}

// forEachL2 calls fn with the offset and contents of every L2 table the
// active layer and the snapshots point to, each once.
func (img *Image) forEachL2(ctx context.Context, fn func(off int64, l2 []byte) error) error {
	snaps, err := img.Snapshots()
	if err != nil {
		return err
	}
	tables := [][]uint64{img.l1}
	for _, s := range snaps {
		l1, err := img.snapshotL1(s)
		if err != nil {
			return err
		}
		tables = append(tables, l1)
	}
	cs := img.hdr.ClusterSize()
	seen := map[int64]bool{}
	buf := make([]byte, cs)
	for _, l1 := range tables {
		for _, e := range l1 {
			off := int64(e & offsetMask)
			if off == 0 || seen[off] {
				continue
			}
			seen[off] = true
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := img.checkTable("L2 table", uint64(off), cs, false); err != nil {
				return err
			}
			if _, err := img.file.ReadAt(buf, off); err != nil {
				return img.errorf(image.ErrCorrupt, "reading the L2 table at %#x: %v", off, err)
			}
			if err := fn(off, buf); err != nil {
				return err
			}
		}
	}
	return nil
}

// hasCompressedClusters reports whether any L2 table maps a compressed
// cluster.
func (img *Image) hasCompressedClusters(ctx context.Context) (bool, error) {
	found := false
	step := img.hdr.L2EntrySize()
	err := img.forEachL2(ctx, func(_ int64, l2 []byte) error {
		for i := int64(0); i < int64(len(l2)); i += step {
			if binary.BigEndian.Uint64(l2[i:])&flagCompressed != 0 {
				found = true
			}
		}
		return nil
	})
	return found, err
}

// expandZeros replaces every zero cluster entry (extended L2 images are
// refused before) by an unallocated one when the image has no backing
// file, or else by a newly written cluster of zeros, one entry write at a
// time: every step reads the same, so a kill anywhere leaves the old
// contents, and the dirty bit covers the refcounts.
func (img *Image) expandZeros(ctx context.Context) error {
	img.mu.Lock()
	defer img.mu.Unlock()
	backed := img.hdr.BackingFile != ""
	cs := img.hdr.ClusterSize()
	zeros := make([]byte, cs)
	err := img.forEachL2(ctx, func(off int64, l2 []byte) error {
		for i := int64(0); i < int64(len(l2)); i += 8 {
			e := binary.BigEndian.Uint64(l2[i:])
			if e&flagCompressed != 0 || e&flagZero == 0 {
				continue
			}
			var ne uint64
			if backed {
				c, err := img.allocClusters(1)
				if err != nil {
					return err
				}
				img.fileSize = max(img.fileSize, (c+1)*cs)
				if _, err := img.wfile.WriteAt(zeros, c*cs); err != nil {
					return image.FileErrorf(img.name, "writing zeros at %#x: %w", c*cs, err)
				}
				if err := img.alloc.flush(); err != nil {
					return err
				}
				ne = uint64(c*cs) | flagCopied
			}
			if err := img.writeBE64(off+i, ne); err != nil {
				return err
			}
		}
		return nil
	})
	img.l2cache.reset()
	img.ccache.reset()
	return err
}
