package qcow2

import (
	"context"
	"fmt"
	"math"

	"github.com/qimg/qimg/image"
)

// The consistency check follows QEMU's block/qcow2-refcount.c: it counts
// the references every metadata structure makes to each host cluster in an
// in-memory refcount array laid out like refcount blocks, compares that with
// the stored refcounts, and checks that the COPIED flags agree with them.
// Messages use QEMU's wording so that users can compare with qemu-img.

// Masks QEMU applies to entries, from block/qcow2.h.
const (
	l2StdReservedMask   = 0x3f000000000001fe
	reftableOffsetMask  = 0xfffffffffffffe00
	reftableReserved    = 0x1ff
	bitmapEntryReserved = 0xff000000000001fe
	bitmapEntryAllOnes  = 1
	maxBitmapDirectory  = 64 << 20
	// maxCheckArray bounds the in-memory refcount array; QEMU refuses
	// files of more than INT_MAX clusters, which with 64-bit refcounts
	// would need 16 GiB.
	maxCheckArray = 2 << 30
)

// Check verifies the image's refcounts and COPIED flags like qemu-img
// check, and with a repair mode other than RepairNone fixes what it may;
// repairing needs an image opened with OpenOptions.Writable (or ForCheck).
// After a repair the result describes a second, read-only check, with the
// repair counted in LeaksFixed and CorruptionsFixed.
func (img *Image) Check(ctx context.Context, repair image.RepairMode) (*image.CheckResult, error) {
	if repair != image.RepairNone && img.wfile == nil {
		return nil, img.errorf(image.ErrReadOnly, "repairing needs an image opened for writing")
	}
	img.mu.Lock()
	defer img.mu.Unlock()
	if img.closed {
		return nil, img.errorf(image.ErrInvalidArgument, "check of a closed image")
	}
	if img.alloc != nil {
		// Check reads refcounts from the file: pending ones must be there.
		if err := img.alloc.flush(); err != nil {
			return nil, err
		}
	}
	res, err := img.checkPass(ctx, repair)
	if repair == image.RepairNone {
		return res, err
	}
	// Even a failed repair may have changed tables the caches hold.
	if aerr := img.afterRepair(res, err == nil); err == nil {
		err = aerr
	}
	if err != nil {
		return res, err
	}
	if res.LeaksFixed == 0 && res.CorruptionsFixed == 0 {
		return res, nil
	}
	again, err := img.checkPass(ctx, image.RepairNone)
	if err != nil {
		return res, err
	}
	again.LeaksFixed, again.CorruptionsFixed = res.LeaksFixed, res.CorruptionsFixed
	again.Messages = append(res.Messages, again.Messages...)
	again.Repaired = true
	return again, nil
}

// rebuildRefcountsOnOpen repairs an image whose dirty bit is set, as QEMU
// does when it opens such an image read-write: with lazy refcounts the
// refcounts on disk may be stale after a crash. Check clears the bit once
// the image is consistent.
func (img *Image) rebuildRefcountsOnOpen() error {
	res, err := img.Check(context.Background(), image.RepairAll)
	if err != nil {
		return image.FileErrorf(img.name, "could not repair dirty image: %w", err)
	}
	if res.CheckErrors > 0 || res.Corruptions > 0 {
		return img.errorf(image.ErrCorrupt, "could not repair dirty image: %d errors remain", res.CheckErrors+res.Corruptions)
	}
	return nil
}

// afterRepair marks a successfully repaired image clean and consistent and
// drops state that the repair made stale.
func (img *Image) afterRepair(res *image.CheckResult, ok bool) error {
	h := img.hdr
	bits := uint64(IncompatDirty | IncompatCorrupt)
	if ok && res.CheckErrors == 0 && res.Corruptions == 0 && h.Version >= 3 && h.IncompatibleFeatures&bits != 0 {
		// The refcounts must be durable before the header says they are.
		if err := img.wfile.Sync(); err != nil {
			return err
		}
		h.IncompatibleFeatures &^= bits
		if err := img.writeBE64(72, h.IncompatibleFeatures); err != nil {
			return err
		}
	}
	if err := img.wfile.Sync(); err != nil {
		return err
	}
	return img.reloadAfterRepair()
}

// reloadAfterRepair rereads what a repair may have changed under the
// caches: the file size, the L1 and L2 tables and the allocator.
func (img *Image) reloadAfterRepair() error {
	st, err := img.wfile.Stat()
	if err != nil {
		return err
	}
	img.fileSize = st.Size()
	img.l2cache.reset()
	img.ccache.reset()
	if err := img.loadL1(); err != nil {
		return err
	}
	if img.alloc == nil {
		return nil
	}
	rc, err := newRefcounts(img)
	if err != nil {
		return err
	}
	rc.end = (img.fileSize + img.hdr.ClusterSize() - 1) / img.hdr.ClusterSize()
	img.alloc = rc
	return img.findEnd()
}

// checker holds the state of one check pass.
type checker struct {
	img      *Image
	ctx      context.Context
	res      *image.CheckResult
	cs       int64
	cbits    uint
	bits     uint   // refcount width
	max      uint64 // largest refcount
	perBlock int64  // refcounts per refcount block
	fileSize int64
	// expected is the in-memory refcount array, packed like refcount
	// blocks so that a rebuild can write slices of it; n clusters of it
	// are in use.
	expected refblock
	n        int64
	rebuild  bool
	stored   *storedRefs
	dataFile bool
	snaps    []Snapshot // the snapshot table as this pass read it
	// tableBuf holds the L2 table being checked: one buffer serves every
	// table of both walks (a fresh one per table cost a page fault per
	// 4 KiB read).
	tableBuf []byte
}

// l2Buffer returns the checker's buffer for one L2 table. The walks read
// one table at a time, so one buffer serves them all.
func (c *checker) l2Buffer() []byte {
	if c.tableBuf == nil {
		c.tableBuf = make([]byte, c.cs)
	}
	return c.tableBuf
}

// checkPass is one run of QEMU's qcow2_check_refcounts.
func (img *Image) checkPass(ctx context.Context, fix image.RepairMode) (*image.CheckResult, error) {
	c, err := img.newChecker(ctx)
	if err != nil {
		return nil, err
	}
	res := c.res
	if err := c.readSnapshotTable(); err != nil {
		return res, err
	}
	if err := c.calculate(fix); err != nil {
		return res, err
	}
	pre := *res
	highest, err := c.compare(image.RepairNone)
	if err != nil {
		return res, err
	}
	switch {
	case c.rebuild && fix.Errors():
		if highest, err = c.rebuildAndRecount(fix); err != nil {
			return res, err
		}
	case c.rebuild && fix != image.RepairNone:
		c.msg("ERROR need to rebuild refcount structures")
		res.CheckErrors++
		return res, img.errorf(image.ErrCorrupt, "the refcount structure must be rebuilt (repair all)")
	case fix != image.RepairNone && (res.Leaks > 0 || res.Corruptions > 0):
		c.restore(pre)
		if highest, err = c.compare(fix); err != nil {
			return res, err
		}
	}
	if err := c.checkCopied(fix); err != nil {
		return res, err
	}
	res.ImageEndOffset = (highest + 1) * c.cs
	return res, nil
}

func (img *Image) newChecker(ctx context.Context) (*checker, error) {
	h := img.hdr
	size := img.fileSize
	if img.wfile != nil {
		st, err := img.wfile.Stat()
		if err != nil {
			return nil, err
		}
		size = st.Size()
	}
	c := &checker{
		img:      img,
		ctx:      ctx,
		res:      &image.CheckResult{Filename: img.name, Format: "qcow2"},
		cs:       h.ClusterSize(),
		cbits:    uint(h.ClusterBits),
		bits:     uint(h.RefcountBits()),
		perBlock: h.ClusterSize() * 8 / int64(h.RefcountBits()),
		fileSize: size,
		dataFile: h.IncompatibleFeatures&IncompatDataFile != 0,
	}
	c.max = math.MaxUint64 >> (64 - c.bits)
	// QEMU counts the clusters of the sector-rounded size.
	c.res.TotalClusters = (img.Size() + c.cs - 1) >> c.cbits
	if (size+c.cs-1)>>c.cbits > math.MaxInt32 {
		return nil, img.errorf(image.ErrLimit, "file of %d bytes has too many clusters to check", size)
	}
	if err := c.grow((size + c.cs - 1) >> c.cbits); err != nil {
		return nil, err
	}
	stored, err := img.loadStoredRefs()
	if err != nil {
		return nil, err
	}
	c.stored = stored
	return c, nil
}

// msg records a line qemu-img would print on standard error.
func (c *checker) msg(format string, args ...any) {
	c.res.Messages = append(c.res.Messages, fmt.Sprintf(format, args...))
}

// restore resets the counts to an earlier copy, keeping the messages.
func (c *checker) restore(saved image.CheckResult) {
	msgs := c.res.Messages
	*c.res = saved
	c.res.Messages = msgs
}
