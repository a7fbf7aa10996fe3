package qcow2

import (
	"encoding/binary"

	"github.com/qimg/qimg/image"
)

// refcounts is the in-memory view of an image's refcount structures: the
// refcount table and the refcount blocks loaded so far. Changes are made in
// memory and written by flush, blocks before the table that points to
// them, so that on disk a refcount is never lower than the number of
// references to its cluster: an interrupted writer leaks clusters at worst.
type refcounts struct {
	img          *Image
	bits         uint
	perBlock     int64 // entries per refcount block
	table        []uint64
	tableOff     int64
	tableMoved   bool // table lives at a new place the header does not name yet
	tableDirty   [2]int64
	blocks       map[int64]*refblock
	oldTables    [][2]int64 // (first cluster, count) to free once the header moved
	pendingFrees []int64    // host clusters to decrement after references are gone
	// end is the first host cluster past everything allocated: new
	// clusters go there when no run of free ones below fits.
	end int64
	// freeHint is the lowest cluster that may be free: every cluster
	// below it is in use. Frees lower it; allocations scan up from it.
	freeHint int64
	// compNext is the next free byte for compressed data, inside a
	// cluster that earlier compressed data partly fills (0: none).
	compNext int64
	// compTails are the next free bytes of other host clusters that
	// compressed data partly fills, left behind when a compressed cluster
	// did not fit after compNext: later, smaller ones go there.
	compTails []int64
}

type refblock struct {
	off        int64
	data       []byte
	dirtyFrom  int
	dirtyUntil int
}

func newRefcounts(img *Image) (*refcounts, error) {
	h := img.hdr
	cs := h.ClusterSize()
	rc := &refcounts{
		img:        img,
		bits:       uint(h.RefcountBits()),
		perBlock:   cs * 8 / int64(h.RefcountBits()),
		tableOff:   int64(h.RefcountTableOffset),
		blocks:     map[int64]*refblock{},
		tableDirty: [2]int64{-1, -1},
	}
	buf := make([]byte, int64(h.RefcountTableClusters)*cs)
	if _, err := img.file.ReadAt(buf, rc.tableOff); err != nil {
		return nil, img.errorf(image.ErrCorrupt, "reading refcount table: %v", err)
	}
	rc.table = make([]uint64, len(buf)/8)
	for i := range rc.table {
		rc.table[i] = binary.BigEndian.Uint64(buf[i*8:])
		if off := int64(rc.table[i] & offsetMask); off%cs != 0 || rc.table[i]&^offsetMask != 0 {
			return nil, img.errorf(image.ErrCorrupt, "refcount table entry %d (%#x) is not a cluster-aligned offset", i, rc.table[i])
		}
	}
	return rc, nil
}

// block returns refcount block k, loading it; nil if the table has none.
func (rc *refcounts) block(k int64) (*refblock, error) {
	if b, ok := rc.blocks[k]; ok {
		return b, nil
	}
	if k >= int64(len(rc.table)) || rc.table[k] == 0 {
		return nil, nil
	}
	img := rc.img
	cs := img.hdr.ClusterSize()
	off := int64(rc.table[k] & offsetMask)
	if off+cs > img.hostEnd() {
		return nil, img.errorf(image.ErrCorrupt, "refcount block %d at %#x lies past the end of the file", k, off)
	}
	b := &refblock{off: off, data: make([]byte, cs), dirtyFrom: -1}
	if _, err := img.file.ReadAt(b.data, off); err != nil && off+cs <= img.fileSize {
		return nil, img.errorf(image.ErrCorrupt, "reading refcount block %d at %#x: %v", k, off, err)
	}
	if len(rc.blocks) > 256 {
		rc.evictClean()
	}
	rc.blocks[k] = b
	return b, nil
}

// evictClean drops clean blocks so the cache stays bounded.
func (rc *refcounts) evictClean() {
	for k, b := range rc.blocks {
		if b.dirtyFrom < 0 {
			delete(rc.blocks, k)
		}
	}
}

func (rc *refcounts) maxRefcount() uint64 {
	if rc.bits == 64 {
		return ^uint64(0)
	}
	return 1<<rc.bits - 1
}

// get returns the refcount of host cluster c.
func (rc *refcounts) get(c int64) (uint64, error) {
	b, err := rc.block(c / rc.perBlock)
	if err != nil || b == nil {
		return 0, err
	}
	return b.entry(c%rc.perBlock, rc.bits), nil
}

func (b *refblock) entry(i int64, bits uint) uint64 {
	be := binary.BigEndian
	switch bits { // the widths images use, without the generic loop
	case 16:
		return uint64(be.Uint16(b.data[i*2:]))
	case 32:
		return uint64(be.Uint32(b.data[i*4:]))
	case 64:
		return be.Uint64(b.data[i*8:])
	}
	if bits < 8 {
		bit := i * int64(bits)
		return uint64(b.data[bit/8]>>(bit%8)) & (1<<bits - 1)
	}
	n := int64(bits / 8)
	var v uint64
	for _, x := range b.data[i*n : i*n+n] {
		v = v<<8 | uint64(x)
	}
	return v
}

func (b *refblock) setEntry(i int64, bits uint, v uint64) {
	var lo, hi int
	switch {
	case bits == 16:
		binary.BigEndian.PutUint16(b.data[i*2:], uint16(v))
		lo, hi = int(i*2), int(i*2+2)
	case bits < 8:
		bit := i * int64(bits)
		mask := byte(1<<bits-1) << (bit % 8)
		b.data[bit/8] = b.data[bit/8]&^mask | byte(v<<(bit%8))&mask
		lo, hi = int(bit/8), int(bit/8)+1
	default:
		n := int64(bits / 8)
		for j := n - 1; j >= 0; j-- {
			b.data[i*n+j] = byte(v)
			v >>= 8
		}
		lo, hi = int(i*n), int(i*n+n)
	}
	if b.dirtyFrom < 0 || lo < b.dirtyFrom {
		b.dirtyFrom = lo
	}
	b.dirtyUntil = max(b.dirtyUntil, hi)
}

// add changes the refcount of host cluster c by delta, creating the
// refcount block (and growing the table) if needed.
func (rc *refcounts) add(c int64, delta int64) error {
	k := c / rc.perBlock
	if k >= int64(len(rc.table)) {
		if err := rc.growTable(k + 1); err != nil {
			return err
		}
	}
	b, err := rc.block(k)
	if err != nil {
		return err
	}
	if b == nil {
		if b, err = rc.newBlock(k); err != nil {
			return err
		}
	}
	old := b.entry(c%rc.perBlock, rc.bits)
	switch {
	case delta < 0 && old < uint64(-delta):
		return rc.img.errorf(image.ErrCorrupt, "refcount of cluster %#x would drop below zero", c*rc.img.hdr.ClusterSize())
	case delta > 0 && old > rc.maxRefcount()-uint64(delta):
		return rc.img.errorf(image.ErrLimit, "refcount of cluster %#x would overflow %d bits", c*rc.img.hdr.ClusterSize(), rc.bits)
	}
	b.setEntry(c%rc.perBlock, rc.bits, uint64(int64(old)+delta))
	if old+uint64(delta) == 0 {
		rc.freed(c)
	}
	return nil
}

// freed notes that host cluster c is now free, so that allocations may
// reuse it: it is no longer metadata for the overlap check, and
// compressed data is no longer packed after what it held.
func (rc *refcounts) freed(c int64) {
	rc.freeHint = min(rc.freeHint, c)
	delete(rc.img.meta, c)
	if rc.compNext/rc.img.hdr.ClusterSize() == c {
		rc.compNext = 0
	}
	rc.dropTail(c)
}

// maxFreeScan bounds the clusters one allocation examines looking for a
// free run: a hostile refcount table can point many entries at one full
// block and claim billions of used clusters. Scans resume from the hint,
// which moves past the used clusters already seen.
const maxFreeScan = 1 << 20

// findFree returns the first run of n free clusters below end, or false.
// Clusters the overlap check knows as metadata are never free, even with
// a refcount of zero (a damaged image).
func (rc *refcounts) findFree(n int64) (int64, bool, error) {
	run, start := int64(0), int64(0)
	limit := min(rc.end, rc.freeHint+maxFreeScan) // fixed: the hint moves during the scan
	for c := rc.freeHint; c < limit; c++ {
		ref, err := rc.get(c)
		if err != nil {
			return 0, false, err
		}
		_, isMeta := rc.img.meta[c]
		if ref != 0 || isMeta {
			if run == 0 && c == rc.freeHint {
				rc.freeHint = c + 1 // still nothing free below
			}
			run = 0
			continue
		}
		if run == 0 {
			start = c
		}
		if run++; run == n {
			return start, true, nil
		}
	}
	return 0, false, nil
}

// newBlock places a new refcount block for index k at the end of the file.
// The block counts itself when it falls in its own range.
func (rc *refcounts) newBlock(k int64) (*refblock, error) {
	cs := rc.img.hdr.ClusterSize()
	at := rc.end
	rc.end++
	b := &refblock{off: at * cs, data: make([]byte, cs), dirtyFrom: 0, dirtyUntil: int(cs)}
	rc.blocks[k] = b
	rc.img.noteMetadata(at, 1)
	rc.table[k] = uint64(at * cs)
	rc.markTable(k)
	return b, rc.add(at, 1)
}

func (rc *refcounts) markTable(k int64) {
	if rc.tableDirty[0] < 0 || k < rc.tableDirty[0] {
		rc.tableDirty[0] = k
	}
	rc.tableDirty[1] = max(rc.tableDirty[1], k+1)
}

// growTable moves the refcount table to the end of the file with room for
// at least minEntries entries (doubling, so growth is rare).
func (rc *refcounts) growTable(minEntries int64) error {
	cs := rc.img.hdr.ClusterSize()
	entries := max(minEntries, 2*int64(len(rc.table)))
	clusters := (entries*8 + cs - 1) / cs
	if clusters*cs > maxRefTableSize {
		return rc.img.errorf(image.ErrLimit, "refcount table would exceed QEMU's 8 MiB limit")
	}
	oldFirst, oldCount := rc.tableOff/cs, int64(len(rc.table))*8/cs
	// If the table already moved since the last flush, the header never
	// named the intermediate table: it is freed the same way.
	rc.oldTables = append(rc.oldTables, [2]int64{oldFirst, oldCount})
	at := rc.end
	rc.end += clusters
	rc.img.noteMetadata(at, clusters)
	table := make([]uint64, clusters*cs/8)
	copy(table, rc.table)
	rc.table, rc.tableOff, rc.tableMoved = table, at*cs, true
	for i := range clusters {
		if err := rc.add(at+i, 1); err != nil {
			return err
		}
	}
	return nil
}

// freeLater records a reference to host cluster c that has been (or is
// about to be) removed; flush decrements it after the metadata that held
// the reference is on disk.
func (rc *refcounts) freeLater(c int64) { rc.pendingFrees = append(rc.pendingFrees, c) }

// flush writes dirty refcount blocks, then the table (and the header if the
// table moved), then applies deferred frees and writes their blocks.
func (rc *refcounts) flush() error {
	for range 8 {
		if err := rc.writeBlocks(); err != nil {
			return err
		}
		if err := rc.writeTable(); err != nil {
			return err
		}
		if len(rc.oldTables) == 0 && len(rc.pendingFrees) == 0 {
			return nil
		}
		frees := rc.pendingFrees
		rc.pendingFrees = nil
		for _, t := range rc.oldTables {
			for c := t[0]; c < t[0]+t[1]; c++ {
				frees = append(frees, c)
			}
		}
		rc.oldTables = nil
		for _, c := range frees {
			if err := rc.add(c, -1); err != nil {
				return err
			}
		}
	}
	return image.FileErrorf(rc.img.name, "refcount flush did not settle: %w", image.ErrCorrupt)
}

func (rc *refcounts) writeBlocks() error {
	w := rc.img.wfile
	for _, b := range rc.blocks {
		if b.dirtyFrom < 0 {
			continue
		}
		if _, err := w.WriteAt(b.data[b.dirtyFrom:b.dirtyUntil], b.off+int64(b.dirtyFrom)); err != nil {
			return image.FileErrorf(rc.img.name, "writing refcount block: %w", err)
		}
		b.dirtyFrom, b.dirtyUntil = -1, 0
	}
	return nil
}

func (rc *refcounts) writeTable() error {
	img := rc.img
	w := img.wfile
	be := binary.BigEndian
	if rc.tableMoved {
		buf := make([]byte, len(rc.table)*8)
		for i, e := range rc.table {
			be.PutUint64(buf[i*8:], e)
		}
		if _, err := w.WriteAt(buf, rc.tableOff); err != nil {
			return image.FileErrorf(img.name, "writing refcount table: %w", err)
		}
		cs := img.hdr.ClusterSize()
		var hdr [12]byte
		be.PutUint64(hdr[:], uint64(rc.tableOff))
		be.PutUint32(hdr[8:], uint32(int64(len(rc.table))*8/cs))
		// Offset and size are adjacent, so one write switches tables.
		if _, err := w.WriteAt(hdr[:], 48); err != nil {
			return image.FileErrorf(img.name, "updating header: %w", err)
		}
		img.hdr.RefcountTableOffset = uint64(rc.tableOff)
		img.hdr.RefcountTableClusters = uint32(int64(len(rc.table)) * 8 / cs)
		rc.tableMoved = false
		rc.tableDirty = [2]int64{-1, -1}
		return nil
	}
	if rc.tableDirty[0] < 0 {
		return nil
	}
	lo, hi := rc.tableDirty[0], rc.tableDirty[1]
	buf := make([]byte, (hi-lo)*8)
	for i := lo; i < hi; i++ {
		be.PutUint64(buf[(i-lo)*8:], rc.table[i])
	}
	if _, err := w.WriteAt(buf, rc.tableOff+lo*8); err != nil {
		return image.FileErrorf(img.name, "writing refcount table: %w", err)
	}
	rc.tableDirty = [2]int64{-1, -1}
	return nil
}
