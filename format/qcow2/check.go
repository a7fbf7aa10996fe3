package qcow2

import (
	"context"
	"encoding/binary"
	"errors"
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
}

// checkPass is one run of QEMU's qcow2_check_refcounts.
func (img *Image) checkPass(ctx context.Context, fix RepairMode) (*CheckResult, error) {
	c, err := img.newChecker(ctx)
	if err != nil {
		return nil, err
	}
	res := c.res
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
	c.res.TotalClusters = int64((h.Size + uint64(c.cs) - 1) >> c.cbits)
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

// grow makes the in-memory array cover n clusters, rounded up to whole
// refcount blocks.
func (c *checker) grow(n int64) error {
	if n <= c.n {
		return nil
	}
	need := (n + c.perBlock - 1) / c.perBlock * c.cs
	if need > maxCheckArray {
		return c.img.errorf(image.ErrLimit, "checking %d clusters needs more than %d bytes of memory", n, maxCheckArray)
	}
	if int64(len(c.expected.data)) < need {
		c.expected.data = append(c.expected.data, make([]byte, need-int64(len(c.expected.data)))...)
	}
	c.n = n
	return nil
}

func (c *checker) ref(k int64) uint64 { return c.expected.entry(k, c.bits) }

func (c *checker) setRef(k int64, v uint64) { c.expected.setEntry(k, c.bits, v) }

// inc counts one reference to every cluster in [off, off+size). A region
// ending a cluster or more past the end of the file is a corruption and is
// not counted, which bounds the array by the file size.
func (c *checker) inc(off, size uint64) error {
	if size == 0 {
		return nil
	}
	if off > math.MaxInt64/2 || size > math.MaxInt64/2 || int64(off+size)-c.fileSize >= c.cs {
		c.msg("ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x%x size 0x%x", off, size)
		c.res.Corruptions++
		return nil
	}
	last := int64(off+size-1) >> c.cbits
	if err := c.grow(last + 1); err != nil {
		c.res.CheckErrors++
		return err
	}
	for k := int64(off) >> c.cbits; k <= last; k++ {
		v := c.ref(k)
		if v == c.max {
			c.msg("ERROR: overflow cluster offset=0x%x", k<<c.cbits)
			c.msg("Use qemu-img amend to increase the refcount entry width or qemu-img convert to create a clean copy if the image cannot be opened for writing")
			c.res.Corruptions++
			continue
		}
		c.setRef(k, v+1)
	}
	return nil
}

// calculate fills the in-memory refcount array from every structure that
// references clusters (QEMU's calculate_refcounts).
func (c *checker) calculate(fix RepairMode) error {
	h := c.img.hdr
	if err := c.inc(0, uint64(c.cs)); err != nil {
		return err
	}
	if err := c.checkL1(h.L1TableOffset, int64(h.L1Size), true); err != nil {
		return err
	}
	if err := c.snapshots(); err != nil {
		return err
	}
	if err := c.inc(h.RefcountTableOffset, uint64(h.RefcountTableClusters)<<c.cbits); err != nil {
		return err
	}
	if h.CryptMethod == CryptLUKS && h.Crypto != nil {
		if err := c.inc(h.Crypto.Offset, h.Crypto.Length); err != nil {
			return err
		}
	}
	if err := c.bitmaps(); err != nil {
		return err
	}
	return c.checkRefblocks(fix)
}

// snapshots counts the snapshot table and every snapshot's tables.
func (c *checker) snapshots() error {
	img := c.img
	snaps, err := img.Snapshots()
	if err != nil {
		c.res.CheckErrors++
		return err
	}
	if c.dataFile && len(snaps) > 0 {
		c.msg("ERROR %d snapshots in image with data file", len(snaps))
		c.res.Corruptions++
	}
	var tableSize int64
	for _, s := range snaps {
		tableSize += s.entryLength
		if s.L1Offset%uint64(c.cs) != 0 {
			c.msg("ERROR snapshot %s (%s) l1_offset=%#x: L1 table is not cluster aligned; snapshot table entry corrupted", s.ID, s.Name, s.L1Offset)
			c.res.Corruptions++
			continue
		}
		if int64(s.L1Size)*8 > maxL1Bytes {
			c.msg("ERROR snapshot %s (%s) l1_size=%#x: L1 table is too large; snapshot table entry corrupted", s.ID, s.Name, s.L1Size)
			c.res.Corruptions++
			continue
		}
		if err := c.checkL1(s.L1Offset, int64(s.L1Size), false); err != nil {
			return err
		}
	}
	return c.inc(img.hdr.SnapshotsOffset, uint64(tableSize))
}

// readAt reads from the image file; bytes past its end read as zeros, as
// QEMU's block layer returns them.
func (img *Image) readAt(buf []byte, off uint64) error {
	clear(buf)
	if off > math.MaxInt64 {
		return nil
	}
	if _, err := img.file.ReadAt(buf, int64(off)); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: reading at %#x: %w", img.name, off, err)
	}
	return nil
}

// forEachEntry calls fn for each of the n big-endian 64-bit entries of the
// table at off, reading it in bounded chunks.
func (c *checker) forEachEntry(off uint64, n int64, fn func(i int64, e uint64) error) error {
	const chunk = 8192
	buf := make([]byte, min(n, chunk)*8)
	for i := int64(0); i < n; i += chunk {
		m := min(n-i, chunk)
		if err := c.ctx.Err(); err != nil {
			return err
		}
		if err := c.img.readAt(buf[:m*8], off+uint64(i*8)); err != nil {
			c.res.CheckErrors++
			return err
		}
		for j := range m {
			if err := fn(i+j, binary.BigEndian.Uint64(buf[j*8:])); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkL1 counts an L1 table and everything it references; active is set
// for the active table, whose clusters make the allocation statistics.
func (c *checker) checkL1(off uint64, size int64, active bool) error {
	if size == 0 {
		return nil
	}
	if err := c.inc(off, uint64(size)*8); err != nil {
		return err
	}
	return c.forEachEntry(off, size, func(_ int64, e uint64) error {
		if e == 0 {
			return nil
		}
		if e&l1ReservedMask != 0 {
			c.msg("ERROR found L1 entry with reserved bits set: %x", e)
			c.res.Corruptions++
		}
		l2 := e & offsetMask
		if err := c.inc(l2, uint64(c.cs)); err != nil {
			return err
		}
		if l2%uint64(c.cs) != 0 {
			c.msg("ERROR l2_offset=%x: Table is not cluster aligned; L1 entry corrupted", l2)
			c.res.Corruptions++
		}
		return c.checkL2(l2, active)
	})
}

// clusterType is QEMU's QCow2ClusterType.
type clusterType int

const (
	ctUnallocated clusterType = iota
	ctZeroPlain
	ctZeroAlloc
	ctNormal
	ctCompressed
)

func (c *checker) typeOf(e uint64) clusterType {
	switch {
	case e&flagCompressed != 0:
		return ctCompressed
	case e&flagZero != 0 && !c.img.hdr.ExtendedL2():
		if e&offsetMask != 0 {
			return ctZeroAlloc
		}
		return ctZeroPlain
	case e&offsetMask == 0:
		// Offset 0 is valid in an external data file; COPIED tells.
		if c.dataFile && e&flagCopied != 0 {
			return ctNormal
		}
		return ctUnallocated
	}
	return ctNormal
}

// l2Entry reads entry i (and its subcluster bitmap) from a raw L2 table.
func (c *checker) l2Entry(buf []byte, i int64) (entry, bitmap uint64) {
	be := binary.BigEndian
	if c.img.hdr.ExtendedL2() {
		return be.Uint64(buf[i*16:]), be.Uint64(buf[i*16+8:])
	}
	return be.Uint64(buf[i*8:]), 0
}

// checkL2 counts the clusters one L2 table references.
func (c *checker) checkL2(off uint64, active bool) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	buf := make([]byte, c.cs)
	if err := c.img.readAt(buf, off); err != nil {
		c.msg("ERROR: I/O error in check_refcounts_l2")
		c.res.CheckErrors++
		return err
	}
	var next uint64 // host offset that would continue the previous cluster
	for i := range c.img.hdr.L2Entries() {
		e, bitmap := c.l2Entry(buf, i)
		typ := c.typeOf(e)
		if typ != ctCompressed && e&l2StdReservedMask != 0 {
			c.msg("ERROR found l2 entry with reserved bits set: %x", e)
			c.res.Corruptions++
		}
		var err error
		switch typ {
		case ctCompressed:
			err = c.compressedEntry(i, e, bitmap, active)
		case ctZeroAlloc, ctNormal:
			err = c.dataEntry(e, bitmap, active, &next)
		case ctUnallocated:
			if bitmap&0xffffffff != 0 {
				c.msg("ERROR: Unallocated cluster has non-zero subcluster allocation map")
				c.res.Corruptions++
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) compressedEntry(i int64, e, bitmap uint64, active bool) error {
	h := c.img.hdr
	if e&flagCopied != 0 {
		x := 62 - (h.ClusterBits - 8)
		c.msg("ERROR: coffset=0x%x: copied flag must never be set for compressed clusters", e&(1<<x-1))
		e &^= flagCopied
		c.res.Corruptions++
	}
	if c.dataFile {
		c.msg("ERROR compressed cluster %d with data file, entry=0x%x", i, e)
		c.res.Corruptions++
		return nil
	}
	if bitmap != 0 {
		c.msg("ERROR compressed cluster %d with non-zero subcluster allocation bitmap, entry=0x%x", i, e)
		c.res.Corruptions++
		return nil
	}
	host, size := h.compressedDesc(e)
	if err := c.inc(uint64(host), uint64(size)); err != nil {
		return err
	}
	if active {
		// Compressed clusters count as fragmented: neighbours share
		// sectors, so reading them never runs straight on.
		c.res.AllocatedClusters++
		c.res.CompressedClusters++
		c.res.FragmentedClusters++
	}
	return nil
}

func (c *checker) dataEntry(e, bitmap uint64, active bool, next *uint64) error {
	off := e & offsetMask
	if (bitmap>>32)&bitmap != 0 {
		c.res.Corruptions++
		c.msg("ERROR offset=%x: Allocated cluster has corrupted subcluster allocation bitmap", off)
	}
	if off%uint64(c.cs) != 0 {
		c.res.Corruptions++
		hasData := e&flagZero == 0
		if c.img.hdr.ExtendedL2() {
			hasData = bitmap&0xffffffff != 0
		}
		if hasData {
			c.msg("ERROR offset=%x: Data cluster is not properly aligned; L2 entry corrupted.", off)
		} else {
			c.msg("ERROR offset=%x: Preallocated cluster is not properly aligned; L2 entry corrupted.", off)
		}
	}
	if active {
		c.res.AllocatedClusters++
		if *next != 0 && off != *next {
			c.res.FragmentedClusters++
		}
		*next = off + uint64(c.cs)
	}
	if c.dataFile {
		return nil // data clusters live in the data file, not refcounted
	}
	return c.inc(off, uint64(c.cs))
}

// bitmaps counts the persistent bitmap directory and tables, which QEMU
// only trusts while the autoclear bit says they are consistent.
func (c *checker) bitmaps() error {
	h := c.img.hdr
	b := h.Bitmaps
	if b == nil || h.AutoclearFeatures&AutoclearBitmaps == 0 || b.NbBitmaps == 0 {
		return nil
	}
	if err := c.inc(b.DirectoryOff, b.DirectorySize); err != nil {
		return err
	}
	dir, err := c.img.bitmapDirectory()
	if errors.Is(err, errBitmapDirectory) {
		c.msg("ERROR %v", err)
		c.res.Corruptions++
		return nil
	}
	if err != nil {
		c.res.CheckErrors++
		return err
	}
	err = walkBitmapDirectory(dir, b.NbBitmaps, func(entry, _ []byte) error {
		be := binary.BigEndian
		return c.bitmapTable(be.Uint64(entry), uint64(be.Uint32(entry[8:])))
	})
	if errors.Is(err, errBitmapDirectory) {
		c.msg("ERROR %v", err)
		c.res.Corruptions++
		return nil
	}
	return err
}

func (c *checker) bitmapTable(off, size uint64) error {
	if err := c.inc(off, size*8); err != nil {
		return err
	}
	if off > uint64(c.fileSize) || size*8 > uint64(c.fileSize)-off {
		c.res.Corruptions++
		return nil
	}
	return c.forEachEntry(off, int64(size), func(_ int64, e uint64) error {
		data := e & offsetMask
		if e&bitmapEntryReserved != 0 || data != 0 && (e&bitmapEntryAllOnes != 0 || data%uint64(c.cs) != 0) {
			c.res.Corruptions++
			return nil
		}
		if data == 0 {
			return nil
		}
		return c.inc(data, uint64(c.cs))
	})
}

// checkRefblocks counts the refcount blocks, which must be referenced
// exactly once (QEMU's check_refblocks).
func (c *checker) checkRefblocks(fix RepairMode) error {
	for i, e := range c.stored.table {
		off := e & reftableOffsetMask
		switch {
		case e&reftableReserved != 0:
			c.msg("ERROR refcount table entry %d has reserved bits set", i)
			c.res.Corruptions++
			c.rebuild = true
			continue
		case off%uint64(c.cs) != 0:
			c.msg("ERROR refcount block %d is not cluster aligned; refcount table entry corrupted", i)
			c.res.Corruptions++
			c.rebuild = true
			continue
		case off != 0 && int64(off>>c.cbits) >= c.n:
			if err := c.refblockOutside(i, off, fix); err != nil {
				return err
			}
			continue
		case off == 0:
			continue
		}
		if err := c.inc(off, uint64(c.cs)); err != nil {
			return err
		}
		if n := c.ref(int64(off >> c.cbits)); n != 1 {
			c.msg("ERROR refcount block %d refcount=%d", i, n)
			c.res.Corruptions++
			c.rebuild = true
		}
	}
	return nil
}

// refblockOutside handles a refcount block past the end of the file: a
// repair grows the file to hold it (it then reads as zeros), which QEMU
// prefers to dropping the refcounts it was meant to hold.
func (c *checker) refblockOutside(i int, off uint64, fix RepairMode) error {
	c.res.Corruptions++
	if !fix.errors() {
		c.msg("ERROR refcount block %d is outside image", i)
		return nil
	}
	c.msg("Repairing refcount block %d is outside image", i)
	if off > math.MaxInt64/2 {
		c.msg("ERROR could not resize image: %v", image.ErrInvalidArgument)
		c.rebuild = true
		return nil
	}
	if err := c.img.wfile.Truncate(int64(off) + c.cs); err != nil {
		c.msg("ERROR could not resize image: %v", err)
		c.rebuild = true
		return nil
	}
	c.fileSize = int64(off) + c.cs
	if err := c.grow(c.fileSize >> c.cbits); err != nil {
		c.res.CheckErrors++
		return err
	}
	c.res.Corruptions--
	c.res.CorruptionsFixed++
	return c.inc(off, uint64(c.cs))
}

// compare checks every cluster's stored refcount against the references
// counted (QEMU's compare_refcounts) and, as fix allows, sets it to them.
// A stored refcount of zero for a referenced cluster cannot be fixed in
// place: the refcount block may be missing, so it asks for a rebuild. It
// returns the highest cluster in use.
func (c *checker) compare(fix RepairMode) (int64, error) {
	var highest int64
	for i := range c.n {
		if i%65536 == 0 {
			if err := c.ctx.Err(); err != nil {
				return highest, err
			}
		}
		stored, err := c.stored.get(i)
		if err != nil {
			c.msg("Can't get refcount for cluster %d: %v", i, err)
			c.res.CheckErrors++
			continue
		}
		want := c.ref(i)
		if stored > 0 || want > 0 {
			highest = i
		}
		if stored == want {
			continue
		}
		if err := c.mismatch(i, stored, want, fix); err != nil {
			return highest, err
		}
	}
	return highest, nil
}

// mismatch reports (and, as fix allows, repairs) one wrong refcount.
// Either direction of repair is safe on its own: raising a refcount can
// only leak, and lowering one to the counted references frees nothing in
// use.
func (c *checker) mismatch(i int64, stored, want uint64, fix RepairMode) error {
	var fixed *int64
	switch {
	case stored == 0:
		c.rebuild = true
	case stored > want && fix.leaks():
		fixed = &c.res.LeaksFixed
	case stored < want && fix.errors():
		fixed = &c.res.CorruptionsFixed
	}
	word := "Leaked"
	switch {
	case fixed != nil:
		word = "Repairing"
	case stored < want:
		word = "ERROR"
	}
	c.msg("%s cluster %d refcount=%d reference=%d", word, i, stored, want)
	if fixed != nil {
		if err := c.stored.set(i, want); err == nil {
			*fixed++
			return nil
		}
	}
	if stored < want {
		c.res.Corruptions++
	} else {
		c.res.Leaks++
	}
	return nil
}

// rebuildAndRecount writes a new refcount structure and counts again, the
// old structure now being leaked (the fix branch of QEMU's
// qcow2_check_refcounts).
func (c *checker) rebuildAndRecount(fix RepairMode) (int64, error) {
	res := c.res
	old := *res
	c.msg("Rebuilding refcount structure")
	if err := c.rebuildStructure(); err != nil {
		res.CheckErrors++
		return 0, err
	}
	res.Corruptions, res.Leaks = 0, 0
	c.rebuild = false
	clear(c.expected.data)
	if err := c.calculate(RepairNone); err != nil {
		return 0, err
	}
	var highest int64
	var fresh int64
	if fix.leaks() {
		saved := *res
		c.restore(CheckResult{})
		h, err := c.compare(RepairLeaks)
		if err != nil {
			return 0, err
		}
		if c.rebuild {
			c.msg("ERROR rebuilt refcount structure is still broken")
		}
		highest, fresh = h, res.Leaks
		c.restore(saved)
	}
	if res.Corruptions < old.Corruptions {
		res.CorruptionsFixed += old.Corruptions - res.Corruptions
	}
	if res.Leaks < old.Leaks {
		res.LeaksFixed += old.Leaks - res.Leaks
	}
	res.Leaks += fresh
	return highest, nil
}

// allocExpected takes count free clusters (by the counted references)
// from first on, growing the array past its end if needed, and counts
// them as used (QEMU's alloc_clusters_imrt).
func (c *checker) allocExpected(count int64, first *int64) (int64, error) {
	k, free := *first, int64(0)
	gap := true
	for ; k < c.n && free < count; k++ {
		if c.ref(k) != 0 {
			free = 0
			continue
		}
		free++
		if gap {
			*first, gap = k, false
		}
	}
	if free < count {
		if err := c.grow(k + count - free); err != nil {
			return 0, err
		}
	}
	k -= free
	for i := range count {
		c.setRef(k+i, 1)
	}
	return k, nil
}

// rebuildStructure writes refcount blocks and a table describing the
// counted references into free clusters, then switches the header to
// them. Until that one header write the old structure stays in force, and
// nothing it counts as used is overwritten.
func (c *checker) rebuildStructure() error {
	var table []uint64
	if _, err := c.writeRefblocks(0, c.n, &table); err != nil {
		return err
	}
	var tableOff, clusters int64
	for {
		clusters = (int64(len(table))*8 + c.cs - 1) / c.cs
		var first int64
		k, err := c.allocExpected(clusters, &first)
		if err != nil {
			return err
		}
		tableOff = k * c.cs
		grown, err := c.writeRefblocks(k, k+clusters, &table)
		if err != nil {
			return err
		}
		if !grown {
			break
		}
	}
	return c.switchTable(table, tableOff, clusters)
}

// writeRefblocks writes the refcount blocks covering clusters [from, to)
// that hold any refcount, allocating the missing ones; it reports whether
// the table had to grow.
func (c *checker) writeRefblocks(from, to int64, table *[]uint64) (bool, error) {
	grown := false
	var first int64
	for k := from; k < to; k++ {
		if c.ref(k) == 0 {
			continue
		}
		idx := k / c.perBlock
		start := idx * c.perBlock
		if idx >= int64(len(*table)) || (*table)[idx] == 0 {
			first = max(first, start)
			at, err := c.allocExpected(1, &first)
			if err != nil {
				return grown, err
			}
			// The block's own refcount must be written too.
			to = max(to, at+1)
			if idx >= int64(len(*table)) {
				entries := ((idx+1)*8 + c.cs - 1) / c.cs * c.cs / 8
				*table = append(*table, make([]uint64, entries-int64(len(*table)))...)
				grown = true
			}
			(*table)[idx] = uint64(at * c.cs)
		}
		data := c.expected.data[idx*c.cs : (idx+1)*c.cs]
		if _, err := c.img.wfile.WriteAt(data, int64((*table)[idx])); err != nil {
			return grown, fmt.Errorf("%s: writing refcount block: %w", c.img.name, err)
		}
		k = start + c.perBlock - 1
	}
	return grown, nil
}

// switchTable writes the new refcount table and then points the header at
// it, syncing before so that the header never names unwritten blocks.
func (c *checker) switchTable(table []uint64, off, clusters int64) error {
	img := c.img
	buf := make([]byte, clusters*c.cs)
	for i, e := range table {
		binary.BigEndian.PutUint64(buf[i*8:], e)
	}
	if _, err := img.wfile.WriteAt(buf, off); err != nil {
		return fmt.Errorf("%s: writing refcount table: %w", img.name, err)
	}
	if err := img.wfile.Sync(); err != nil {
		return err
	}
	var hdr [12]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(off))
	binary.BigEndian.PutUint32(hdr[8:], uint32(clusters))
	// Offset and size are adjacent: one write switches structures.
	if _, err := img.wfile.WriteAt(hdr[:], 48); err != nil {
		return fmt.Errorf("%s: updating header: %w", img.name, err)
	}
	if err := img.wfile.Sync(); err != nil {
		return err
	}
	img.hdr.RefcountTableOffset = uint64(off)
	img.hdr.RefcountTableClusters = uint32(clusters)
	st, err := img.wfile.Stat()
	if err != nil {
		return err
	}
	c.fileSize = st.Size()
	c.stored, err = img.loadStoredRefs()
	return err
}

// checkCopied checks that the COPIED flag of each active L1 and L2 entry
// is set exactly when the refcount is 1 (QEMU's check_oflag_copied). It
// runs after refcount repairs, which are synced first, so a flag set here
// never claims more than the disk says.
func (c *checker) checkCopied(fix RepairMode) error {
	res := c.res
	repair := fix.errors() || fix.leaks() && res.CheckErrors == 0 && res.Corruptions == 0 && res.Leaks == 0
	if repair {
		if err := c.img.wfile.Sync(); err != nil {
			return err
		}
	}
	for i, e := range c.img.l1 {
		l2 := e & offsetMask
		if l2 == 0 {
			continue
		}
		n, err := c.stored.get(int64(l2 >> c.cbits))
		if err != nil {
			continue // QEMU neither reports nor counts this again
		}
		if (n == 1) != (e&flagCopied != 0) {
			if err := c.fixL1Copied(i, e, n, repair); err != nil {
				return err
			}
		}
		if err := c.checkL2Copied(l2, repair); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) fixL1Copied(i int, e, n uint64, repair bool) error {
	c.res.Corruptions++
	c.msg("%s OFLAG_COPIED L2 cluster: l1_index=%d l1_entry=%x refcount=%d", repairWord(repair), i, e, n)
	if !repair {
		return nil
	}
	img := c.img
	e = withCopied(e, n == 1)
	if err := img.writeBE64(int64(img.hdr.L1TableOffset)+int64(i)*8, e); err != nil {
		c.res.CheckErrors++
		return err
	}
	img.l1[i] = e
	c.res.Corruptions--
	c.res.CorruptionsFixed++
	return nil
}

func repairWord(repair bool) string {
	if repair {
		return "Repairing"
	}
	return "ERROR"
}

func withCopied(e uint64, copied bool) uint64 {
	if copied {
		return e | flagCopied
	}
	return e &^ flagCopied
}

// checkL2Copied checks the COPIED flags of one active L2 table, writing
// back the entries it repairs.
func (c *checker) checkL2Copied(l2 uint64, repair bool) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	buf := make([]byte, c.cs)
	if err := c.img.readAt(buf, l2); err != nil {
		c.msg("ERROR: Could not read L2 table: %v", err)
		c.res.CheckErrors++
		return err
	}
	// Only a table that really is in the file is rewritten.
	writable := l2%uint64(c.cs) == 0 && int64(l2)+c.cs <= c.fileSize
	stride := c.img.hdr.L2EntrySize()
	for i := range c.img.hdr.L2Entries() {
		e, _ := c.l2Entry(buf, i)
		typ := c.typeOf(e)
		if typ != ctNormal && typ != ctZeroAlloc {
			continue
		}
		n := uint64(1)
		if !c.dataFile {
			var err error
			if n, err = c.stored.get(int64((e & offsetMask) >> c.cbits)); err != nil {
				continue
			}
		}
		if (n == 1) == (e&flagCopied != 0) {
			continue
		}
		c.res.Corruptions++
		fix := repair && writable
		c.msg("%s OFLAG_COPIED data cluster: l2_entry=%x refcount=%d", repairWord(fix), e, n)
		if !fix {
			continue
		}
		if err := c.img.writeBE64(int64(l2)+i*stride, withCopied(e, n == 1)); err != nil {
			c.msg("ERROR: Could not write L2 table: %v", err)
			c.res.CheckErrors++
			return err
		}
		c.res.Corruptions--
		c.res.CorruptionsFixed++
	}
	return nil
}

// storedRefs reads (and for repairs writes) the refcounts on disk,
// independently of the writer's allocator, tolerating the damage a check
// must report.
type storedRefs struct {
	img      *Image
	table    []uint64
	bits     uint
	perBlock int64
	blocks   map[int64]*refblock
}

func (img *Image) loadStoredRefs() (*storedRefs, error) {
	h := img.hdr
	cs := h.ClusterSize()
	s := &storedRefs{
		img:      img,
		bits:     uint(h.RefcountBits()),
		perBlock: cs * 8 / int64(h.RefcountBits()),
		blocks:   map[int64]*refblock{},
	}
	// The table's size was bounded (8 MiB) when the image was opened.
	buf := make([]byte, int64(h.RefcountTableClusters)*cs)
	if err := img.readAt(buf, h.RefcountTableOffset); err != nil {
		return nil, err
	}
	s.table = make([]uint64, len(buf)/8)
	for i := range s.table {
		s.table[i] = binary.BigEndian.Uint64(buf[i*8:])
	}
	return s, nil
}

// block returns the refcount block for table index k, nil if none.
func (s *storedRefs) block(k int64) (*refblock, error) {
	if b, ok := s.blocks[k]; ok {
		return b, nil
	}
	if k >= int64(len(s.table)) {
		return nil, nil
	}
	cs := s.img.hdr.ClusterSize()
	off := s.table[k] & reftableOffsetMask
	if off == 0 {
		return nil, nil
	}
	if off%uint64(cs) != 0 {
		return nil, fmt.Errorf("refblock offset %#x unaligned (reftable index: %#x): %w", off, k, image.ErrCorrupt)
	}
	b := &refblock{off: int64(off), data: make([]byte, cs), dirtyFrom: -1}
	if err := s.img.readAt(b.data, off); err != nil {
		return nil, err
	}
	if len(s.blocks) >= 64 {
		clear(s.blocks) // the check walks clusters in order
	}
	s.blocks[k] = b
	return b, nil
}

func (s *storedRefs) get(c int64) (uint64, error) {
	b, err := s.block(c / s.perBlock)
	if err != nil || b == nil {
		return 0, err
	}
	return b.entry(c%s.perBlock, s.bits), nil
}

// set writes the refcount of cluster c, whose block must exist.
func (s *storedRefs) set(c int64, v uint64) error {
	b, err := s.block(c / s.perBlock)
	if err != nil {
		return err
	}
	if b == nil || s.img.wfile == nil {
		return image.ErrInvalidArgument
	}
	b.setEntry(c%s.perBlock, s.bits, v)
	_, err = s.img.wfile.WriteAt(b.data[b.dirtyFrom:b.dirtyUntil], b.off+int64(b.dirtyFrom))
	b.dirtyFrom, b.dirtyUntil = -1, 0
	return err
}
