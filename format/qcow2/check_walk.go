package qcow2

import (
	"encoding/binary"
	"errors"
	"io"
	"math"

	"github.com/qimg/qimg/image"
)

// The reference walk: every structure that points at host clusters (the
// header, L1 and L2 tables, snapshots, the refcount table and blocks,
// bitmaps, LUKS) is counted into the checker's in-memory refcount array.

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
func (c *checker) calculate(fix image.RepairMode) error {
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

// readSnapshotTable reads the snapshot table once per pass, before the
// walk, as QEMU's qcow2_check_read_snapshot_table does: a table past the
// end of the file reads as zeros, and in a version 3 image every entry
// needs the 16 bytes of extra data that hold the VM state and disk sizes.
// QEMU repairs short entries by rewriting the table (-r all); qimg does
// not rewrite it and keeps reporting them.
func (c *checker) readSnapshotTable() error {
	snaps, err := c.img.readSnapshots(true)
	if err != nil {
		c.res.CheckErrors++
		return err
	}
	c.snaps = snaps
	if c.img.hdr.Version < 3 {
		return nil
	}
	for i, s := range snaps {
		if len(s.ExtraData) < 16 {
			c.msg("ERROR snapshot table entry %d is incomplete", i)
			c.res.Corruptions++
		}
	}
	return nil
}

// snapshots counts the snapshot table and every snapshot's tables.
func (c *checker) snapshots() error {
	img := c.img
	snaps := c.snaps
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
	if off > math.MaxInt64 {
		clear(buf)
		return nil
	}
	n, err := img.file.ReadAt(buf, int64(off))
	clear(buf[n:])
	if err != nil && !errors.Is(err, io.EOF) {
		return image.FileErrorf(img.name, "reading at %#x: %w", off, err)
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
	buf := c.l2Buffer()
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
func (c *checker) checkRefblocks(fix image.RepairMode) error {
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
func (c *checker) refblockOutside(i int, off uint64, fix image.RepairMode) error {
	c.res.Corruptions++
	if !fix.Errors() {
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
