package qcow2

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	"github.com/qimg/qimg/image"
)

// Internal snapshots are made, applied and deleted as one switch of
// metadata followed by a refcount repair, under the header's dirty bit.
// Each operation sets the dirty bit, writes its new tables (an L1 copy, a
// snapshot table) into free clusters, then changes the header in one
// write of a few bytes: that write is the moment the operation happens.
// The refcounts and COPIED flags that follow from it are then recomputed
// by Check's repair, which also frees what the old metadata held, and
// clears the dirty bit. An interrupted operation leaves the old image or
// the new one with the dirty bit set, whose refcounts QEMU and qimg
// rebuild when they next open it for writing (the bit's meaning in the
// qcow2 specification). Version 2 images have no dirty bit, and no order
// of writes keeps their refcounts and COPIED flags consistent at every
// moment, so they are refused.

// ErrSnapshotNotFound is wrapped by the errors of ApplySnapshot and
// DeleteSnapshot for a name no snapshot has.
var ErrSnapshotNotFound = fmt.Errorf("snapshot not found: %w", image.ErrInvalidArgument)

// ErrNoSnapshots is wrapped by the error for an image that cannot have
// internal snapshots (an external data file), as QEMU refuses them.
var ErrNoSnapshots = fmt.Errorf("internal snapshots not supported: %w", image.ErrUnsupported)

// Header field offsets the snapshot operations write.
const (
	hdrSizeOff      = 24 // size, crypt_method, l1_size, l1_table_offset: 24 bytes
	hdrSnapshotsOff = 60 // nb_snapshots, snapshots_offset: 12 bytes
	hdrIncompatOff  = 72
)

// snapshotExtraData is the extra data QEMU 7.2 writes for a snapshot:
// vm_state_size_large, disk_size and icount.
const snapshotExtraData = 24

// CreateSnapshot takes an internal snapshot of the active layer named
// name (names need not be unique, as in QEMU) with the next free numeric
// ID, dated now.
func (img *Image) CreateSnapshot(ctx context.Context, name string, now time.Time) error {
	return img.snapshotOp(ctx, func() error {
		if img.hdr.DataFile != "" {
			return img.errorf(ErrNoSnapshots, "an image with an external data file cannot have internal snapshots")
		}
		snaps, err := img.Snapshots()
		if err != nil {
			return err
		}
		l1Off, err := img.writeL1Copy(img.l1)
		if err != nil {
			return err
		}
		entry := img.newSnapshotEntry(nextSnapshotID(snaps), name, now, l1Off)
		return img.writeSnapshotTable(snaps, -1, entry)
	})
}

// ApplySnapshot makes the snapshot with ID or name id (IDs first, as QEMU
// looks them up) the active layer again, with its virtual size.
func (img *Image) ApplySnapshot(ctx context.Context, id string) error {
	return img.snapshotOp(ctx, func() error {
		snaps, err := img.Snapshots()
		if err != nil {
			return err
		}
		i := findSnapshot(snaps, id, true)
		if i < 0 {
			return img.errorf(ErrSnapshotNotFound, "no snapshot has the ID or name %q", id)
		}
		s := snaps[i]
		// The active layer's data changes: the bitmaps go stale.
		if err := img.staleBitmaps(); err != nil {
			return err
		}
		l1, err := img.snapshotL1(s)
		if err != nil {
			return err
		}
		size := img.hdr.Size
		if s.DiskSize != 0 {
			size = s.DiskSize
		}
		need := img.l1EntriesFor(size)
		for int64(len(l1)) < need {
			l1 = append(l1, 0)
		}
		l1Off, err := img.writeL1Copy(l1)
		if err != nil {
			return err
		}
		return img.switchActive(size, int64(len(l1)), l1Off)
	})
}

// DeleteSnapshot deletes the first snapshot named name; like qemu-img,
// it looks names up, not IDs.
func (img *Image) DeleteSnapshot(ctx context.Context, name string) error {
	return img.snapshotOp(ctx, func() error {
		snaps, err := img.Snapshots()
		if err != nil {
			return err
		}
		i := findSnapshot(snaps, name, false)
		if i < 0 {
			return img.errorf(ErrSnapshotNotFound, "no snapshot is named %q", name)
		}
		return img.writeSnapshotTable(snaps, i, nil)
	})
}

// snapshotOp runs switchMeta, which changes the metadata with one header
// write, under the dirty bit, then repairs the refcounts and flags.
func (img *Image) snapshotOp(ctx context.Context, switchMeta func() error) error {
	if img.wfile == nil {
		return img.errorf(image.ErrReadOnly, "snapshots need an image opened for writing")
	}
	if img.hdr.Version < 3 {
		return img.errorf(image.ErrUnsupported, "qimg changes the snapshots of version 3 images only (compat=1.1): a version 2 image cannot mark its refcounts stale while they change")
	}
	if err := img.Flush(); err != nil {
		return err
	}
	var saved [hdrIncompatOff - hdrSizeOff]byte
	err := func() error {
		img.mu.Lock()
		defer img.mu.Unlock()
		if _, err := img.file.ReadAt(saved[:], hdrSizeOff); err != nil {
			return image.FileErrorf(img.name, "reading the header: %w", err)
		}
		if err := img.setDirty(); err != nil {
			return err
		}
		err := switchMeta()
		// Whatever happened, what the caches hold may be stale now.
		img.meta = nil
		if ferr := img.alloc.flush(); err == nil {
			err = ferr
		}
		return err
	}()
	// The repair also runs after a failed switch: it frees the clusters
	// the switch allocated and clears the dirty bit.
	res, cerr := img.Check(ctx, image.RepairAll)
	if err == nil && cerr == nil && (res.CheckErrors > 0 || res.Corruptions > 0) {
		// A refcount too narrow for one more reference (refcount_bits
		// below 16) overflows: go back to the old metadata.
		err = img.errorf(image.ErrLimit, "the refcounts cannot count the new references (refcount_bits=%d); the image is unchanged", 1<<img.hdr.RefcountOrder)
		if rerr := img.restoreHeader(saved[:]); rerr != nil {
			return rerr
		}
		_, cerr = img.Check(ctx, image.RepairAll)
	}
	if err != nil {
		return err
	}
	return cerr
}

// restoreHeader writes back the header fields from size to
// snapshots_offset as they were before an operation, under the dirty bit.
func (img *Image) restoreHeader(saved []byte) error {
	img.mu.Lock()
	defer img.mu.Unlock()
	if err := img.setDirty(); err != nil {
		return err
	}
	if _, err := img.wfile.WriteAt(saved, hdrSizeOff); err != nil {
		return image.FileErrorf(img.name, "writing the header: %w", err)
	}
	be := binary.BigEndian
	h := img.hdr
	h.Size, h.L1Size, h.L1TableOffset = be.Uint64(saved[0:]), be.Uint32(saved[12:]), be.Uint64(saved[16:])
	h.NbSnapshots, h.SnapshotsOffset = be.Uint32(saved[hdrSnapshotsOff-hdrSizeOff:]), be.Uint64(saved[hdrSnapshotsOff-hdrSizeOff+4:])
	img.meta = nil
	img.l2cache.reset()
	img.ccache.reset()
	return img.loadL1()
}

// setDirty sets the header's dirty bit (version 3) and syncs, so that it
// is on disk before any metadata it covers changes.
func (img *Image) setDirty() error {
	h := img.hdr
	h.IncompatibleFeatures |= IncompatDirty
	if err := img.writeBE64(hdrIncompatOff, h.IncompatibleFeatures); err != nil {
		return err
	}
	return img.wfile.Sync()
}

// l1EntriesFor is the number of L1 entries a virtual size needs.
func (img *Image) l1EntriesFor(size uint64) int64 {
	perL2 := uint64(img.hdr.L2Entries() * img.hdr.ClusterSize())
	return int64((size + perL2 - 1) / perL2)
}

// writeL1Copy writes l1 into newly allocated clusters and returns where.
func (img *Image) writeL1Copy(l1 []uint64) (uint64, error) {
	if len(l1) == 0 {
		return 0, nil
	}
	if int64(len(l1))*8 > maxL1Bytes {
		return 0, img.errorf(image.ErrLimit, "L1 table of %d entries exceeds 32 MiB", len(l1))
	}
	buf := make([]byte, len(l1)*8)
	for i, e := range l1 {
		binary.BigEndian.PutUint64(buf[i*8:], e)
	}
	return img.writeNewClusters(buf)
}

// writeNewClusters writes buf into newly allocated clusters (its tail
// zeroed to a whole cluster), syncs, and returns their offset.
func (img *Image) writeNewClusters(buf []byte) (uint64, error) {
	off, err := img.putNewClusters(buf)
	if err != nil {
		return 0, err
	}
	return off, img.wfile.Sync()
}

// putNewClusters is writeNewClusters without the sync, for callers that
// write several structures and sync once before the header names them.
func (img *Image) putNewClusters(buf []byte) (uint64, error) {
	cs := img.hdr.ClusterSize()
	n := (int64(len(buf)) + cs - 1) / cs
	first, err := img.allocClusters(n)
	if err != nil {
		return 0, err
	}
	padded := make([]byte, n*cs)
	copy(padded, buf)
	if _, err := img.wfile.WriteAt(padded, first*cs); err != nil {
		return 0, image.FileErrorf(img.name, "writing new metadata at %#x: %w", first*cs, err)
	}
	if end := (first + n) * cs; end > img.fileSize {
		img.fileSize = end
	}
	// The refcounts of the new clusters must be on disk before the header
	// points at them, or a crash would leave them free.
	if err := img.alloc.flush(); err != nil {
		return 0, err
	}
	return uint64(first * cs), nil
}

// switchActive points the header at a new active L1 table and size.
func (img *Image) switchActive(size uint64, l1Size int64, l1Off uint64) error {
	h := img.hdr
	var b [24]byte
	binary.BigEndian.PutUint64(b[0:], size)
	binary.BigEndian.PutUint32(b[8:], h.CryptMethod)
	binary.BigEndian.PutUint32(b[12:], uint32(l1Size))
	binary.BigEndian.PutUint64(b[16:], l1Off)
	if _, err := img.wfile.WriteAt(b[:], hdrSizeOff); err != nil {
		return image.FileErrorf(img.name, "writing the header: %w", err)
	}
	h.Size, h.L1Size, h.L1TableOffset = size, uint32(l1Size), l1Off
	img.l2cache.reset()
	img.ccache.reset()
	return img.loadL1()
}

// writeSnapshotTable writes the table of snaps without entry drop (-1:
// none) and with added appended (nil: none), then points the header at it.
func (img *Image) writeSnapshotTable(snaps []Snapshot, drop int, added []byte) error {
	var table []byte
	count := 0
	for i, s := range snaps {
		if i == drop {
			continue
		}
		raw := make([]byte, s.entryLength)
		if _, err := img.file.ReadAt(raw, s.entryOffset); err != nil {
			return img.errorf(image.ErrCorrupt, "reading snapshot %s: %v", s.ID, err)
		}
		table = append(table, raw...)
		count++
	}
	if added != nil {
		table = append(table, added...)
		count++
	}
	if count > maxSnapshots {
		return img.errorf(image.ErrLimit, "%d snapshots exceed the limit of %d", count, maxSnapshots)
	}
	if len(table) > maxSnapshotTable {
		return img.errorf(image.ErrLimit, "the snapshot table would exceed %d bytes", maxSnapshotTable)
	}
	var off uint64
	if len(table) > 0 {
		var err error
		if off, err = img.writeNewClusters(table); err != nil {
			return err
		}
	}
	var b [12]byte
	binary.BigEndian.PutUint32(b[0:], uint32(count))
	binary.BigEndian.PutUint64(b[4:], off)
	if _, err := img.wfile.WriteAt(b[:], hdrSnapshotsOff); err != nil {
		return image.FileErrorf(img.name, "writing the header: %w", err)
	}
	img.hdr.NbSnapshots, img.hdr.SnapshotsOffset = uint32(count), off
	return nil
}

// newSnapshotEntry encodes a snapshot table entry of the active layer as
// QEMU 7.2 writes one for qemu-img snapshot -c: no VM state, the virtual
// size, an instruction count of 0.
func (img *Image) newSnapshotEntry(id, name string, now time.Time, l1Off uint64) []byte {
	n := snapshotMinEntry + snapshotExtraData + len(id) + len(name)
	b := make([]byte, (n+7)&^7)
	be := binary.BigEndian
	be.PutUint64(b[0:], l1Off)
	be.PutUint32(b[8:], img.hdr.L1Size)
	be.PutUint16(b[12:], uint16(len(id)))
	be.PutUint16(b[14:], uint16(len(name)))
	be.PutUint32(b[16:], uint32(now.Unix()))
	be.PutUint32(b[20:], uint32(now.Nanosecond()/1000*1000))
	be.PutUint32(b[36:], snapshotExtraData)
	be.PutUint64(b[snapshotMinEntry+8:], img.hdr.Size)
	copy(b[snapshotMinEntry+snapshotExtraData:], id)
	copy(b[snapshotMinEntry+snapshotExtraData+len(id):], name)
	return b
}

// nextSnapshotID is QEMU's: one more than the largest numeric ID.
func nextSnapshotID(snaps []Snapshot) string {
	var max uint64
	for _, s := range snaps {
		if n, err := strconv.ParseUint(s.ID, 10, 64); err == nil && n > max {
			max = n
		}
	}
	return strconv.FormatUint(max+1, 10)
}

// findSnapshot returns the index of the snapshot with ID id (when byID)
// or else the first named id, or -1.
func findSnapshot(snaps []Snapshot, id string, byID bool) int {
	if byID {
		for i, s := range snaps {
			if s.ID == id {
				return i
			}
		}
	}
	for i, s := range snaps {
		if s.Name == id {
			return i
		}
	}
	return -1
}
