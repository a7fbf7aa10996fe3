package qcow2

import (
	"context"
	"fmt"
	"io"
	"math"

	"github.com/qimg/qimg/image"
)

// The consistency check follows QEMU's block/qcow2-refcount.c: it counts
// the references every metadata structure makes to each host cluster in an
// in-memory refcount array laid out like refcount blocks, compares that with
// the stored refcounts, and checks that the COPIED flags agree with them.
// Messages use QEMU's wording so that users can compare with qemu-img.

// RepairMode says what Check may fix (qemu-img check -r).
type RepairMode int

const (
	// RepairNone only reports.
	RepairNone RepairMode = iota
	// RepairLeaks lowers refcounts that are higher than the references
	// (-r leaks).
	RepairLeaks
	// RepairAll also fixes corruptions, rebuilding the refcount structure
	// when needed (-r all).
	RepairAll
)

func (m RepairMode) leaks() bool  { return m >= RepairLeaks }
func (m RepairMode) errors() bool { return m >= RepairAll }

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

// CheckResult is the outcome of Check, with the fields of
// qemu-img check --output=json.
type CheckResult struct {
	Filename           string `json:"filename"`
	Format             string `json:"format"`
	CheckErrors        int64  `json:"check-errors"`
	ImageEndOffset     int64  `json:"image-end-offset,omitempty"`
	Corruptions        int64  `json:"corruptions,omitempty"`
	Leaks              int64  `json:"leaks,omitempty"`
	CorruptionsFixed   int64  `json:"corruptions-fixed,omitempty"`
	LeaksFixed         int64  `json:"leaks-fixed,omitempty"`
	TotalClusters      int64  `json:"total-clusters,omitempty"`
	AllocatedClusters  int64  `json:"allocated-clusters,omitempty"`
	FragmentedClusters int64  `json:"fragmented-clusters,omitempty"`
	CompressedClusters int64  `json:"compressed-clusters,omitempty"`
	// Messages are the lines qemu-img prints on standard error while it
	// checks, such as "Leaked cluster 5 refcount=2 reference=1".
	Messages []string `json:"-"`
	// Repaired is set when a repair changed the image; the counts then
	// describe a second check of the repaired image, as qemu-img does,
	// and only the *Fixed fields describe the repair.
	Repaired bool `json:"-"`
}

// ExitCode is qemu-img check's exit status: 0 clean, 1 the check could
// not complete, 2 corruptions, 3 leaks only.
func (r *CheckResult) ExitCode() int {
	switch {
	case r.CheckErrors > 0:
		return 1
	case r.Corruptions > 0:
		return 2
	case r.Leaks > 0:
		return 3
	}
	return 0
}

// WriteHuman writes what qemu-img check prints on standard output.
func (r *CheckResult) WriteHuman(w io.Writer) error {
	var err error
	p := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, args...)
		}
	}
	if r.Repaired {
		p("The following inconsistencies were found and repaired:\n\n"+
			"    %d leaked clusters\n    %d corruptions\n\n"+
			"Double checking the fixed image now...\n", r.LeaksFixed, r.CorruptionsFixed)
	}
	if r.Corruptions == 0 && r.Leaks == 0 && r.CheckErrors == 0 {
		p("No errors were found on the image.\n")
	}
	if r.Corruptions > 0 {
		p("\n%d errors were found on the image.\n"+
			"Data may be corrupted, or further writes to the image may corrupt it.\n", r.Corruptions)
	}
	if r.Leaks > 0 {
		p("\n%d leaked clusters were found on the image.\n"+
			"This means waste of disk space, but no harm to data.\n", r.Leaks)
	}
	if r.CheckErrors > 0 {
		p("\n%d internal errors have occurred during the check.\n", r.CheckErrors)
	}
	if r.TotalClusters != 0 && r.AllocatedClusters != 0 {
		a := float64(r.AllocatedClusters)
		p("%d/%d = %0.2f%% allocated, %0.2f%% fragmented, %0.2f%% compressed clusters\n",
			r.AllocatedClusters, r.TotalClusters, a*100/float64(r.TotalClusters),
			float64(r.FragmentedClusters)*100/a, float64(r.CompressedClusters)*100/a)
	}
	if r.ImageEndOffset != 0 {
		p("Image end offset: %d\n", r.ImageEndOffset)
	}
	return err
}

// Check verifies the image's refcounts and COPIED flags like qemu-img
// check, and with a repair mode other than RepairNone fixes what it may;
// repairing needs an image opened with OpenOptions.Writable (or ForCheck).
// After a repair the result describes a second, read-only check, with the
// repair counted in LeaksFixed and CorruptionsFixed.
func (img *Image) Check(ctx context.Context, repair RepairMode) (*CheckResult, error) {
	if repair != RepairNone && img.wfile == nil {
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
	if repair == RepairNone {
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
	again, err := img.checkPass(ctx, RepairNone)
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
	res, err := img.Check(context.Background(), RepairAll)
	if err != nil {
		return fmt.Errorf("%s: could not repair dirty image: %w", img.name, err)
	}
	if res.CheckErrors > 0 || res.Corruptions > 0 {
		return img.errorf(image.ErrCorrupt, "could not repair dirty image: %d errors remain", res.CheckErrors+res.Corruptions)
	}
	return nil
}

// afterRepair marks a successfully repaired image clean and consistent and
// drops state that the repair made stale.
func (img *Image) afterRepair(res *CheckResult, ok bool) error {
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
	res      *CheckResult
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
}

// checkPass is one run of QEMU's qcow2_check_refcounts.
func (img *Image) checkPass(ctx context.Context, fix RepairMode) (*CheckResult, error) {
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
	highest, err := c.compare(RepairNone)
	if err != nil {
		return res, err
	}
	switch {
	case c.rebuild && fix.errors():
		if highest, err = c.rebuildAndRecount(fix); err != nil {
			return res, err
		}
	case c.rebuild && fix != RepairNone:
		c.msg("ERROR need to rebuild refcount structures")
		res.CheckErrors++
		return res, img.errorf(image.ErrCorrupt, "the refcount structure must be rebuilt (repair all)")
	case fix != RepairNone && (res.Leaks > 0 || res.Corruptions > 0):
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
		res:      &CheckResult{Filename: img.name, Format: "qcow2"},
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
func (c *checker) restore(saved CheckResult) {
	msgs := c.res.Messages
	*c.res = saved
	c.res.Messages = msgs
}
