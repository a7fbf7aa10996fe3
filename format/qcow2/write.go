package qcow2

import (
	"encoding/binary"

	"github.com/qimg/qimg/format/luks"
	"github.com/qimg/qimg/image"
)

// Writes follow QEMU's ordering rules so that an interrupted writer leaves
// an image whose only damage is leaked clusters:
//
//  1. new clusters get their refcounts on disk first (refcounts.flush);
//  2. then guest data goes to the new (or exclusively owned) clusters;
//  3. then the L2 entries that point to them, and an L1 entry last when the
//     L2 table itself is new;
//  4. only then are replaced clusters' refcounts decremented.

func (img *Image) openForWrite() error {
	h := img.hdr
	if h.IncompatibleFeatures&IncompatDirty != 0 {
		if err := img.rebuildRefcountsOnOpen(); err != nil {
			return err
		}
	}
	rc, err := newRefcounts(img)
	if err != nil {
		return err
	}
	img.alloc = rc
	cs := h.ClusterSize()
	rc.end = (img.fileSize + cs - 1) / cs
	if err := img.findEnd(); err != nil {
		return err
	}
	// Unknown autoclear bits must be cleared by a writer that does not
	// understand them; the bitmaps' bit waits for the first change
	// (staleBitmaps).
	clear := h.AutoclearFeatures &^ (AutoclearDataFileRaw | AutoclearBitmaps)
	if h.AutoclearFeatures&AutoclearBitmaps != 0 && h.Bitmaps == nil {
		clear |= AutoclearBitmaps
	}
	if clear != 0 {
		h.AutoclearFeatures &^= clear
		if err := img.writeBE64(88, h.AutoclearFeatures); err != nil {
			return err
		}
	}
	return nil
}

// staleBitmaps runs before the first change of guest data or size: the
// persistent bitmaps, which qimg does not maintain, go stale then. They
// are marked in use (bitmaps.go), or, if their directory does not parse,
// dropped by clearing their bit as an old QEMU would. Opening for writing
// alone leaves them valid, so that EditBitmaps can change them.
func (img *Image) staleBitmaps() error {
	img.staleOnce.Do(func() {
		h := img.hdr
		if h.AutoclearFeatures&AutoclearBitmaps == 0 || img.markBitmapsInUse() == nil {
			return
		}
		h.AutoclearFeatures &^= AutoclearBitmaps
		img.staleErr = img.writeBE64(88, h.AutoclearFeatures)
	})
	return img.staleErr
}

// findEnd moves alloc.end past the last cluster with a refcount, so
// appended clusters never collide with preallocated space past EOF.
func (img *Image) findEnd() error {
	rc := img.alloc
	// Only blocks covering clusters past the current end can move it; and
	// a block offset may appear once, or a hostile table of 1M entries
	// naming one zeroed cluster would be scanned 1M times.
	seen := map[uint64]int64{}
	for k := int64(len(rc.table)) - 1; k >= rc.end/rc.perBlock; k-- {
		if off := rc.table[k] & offsetMask; off != 0 {
			if other, dup := seen[off]; dup {
				return img.errorf(image.ErrCorrupt, "refcount blocks %d and %d share the cluster at %#x", k, other, off)
			}
			seen[off] = k
		}
		b, err := rc.block(k)
		if err != nil {
			return err
		}
		if b == nil {
			continue
		}
		for i := rc.perBlock - 1; i >= 0; i-- {
			if b.entry(i, rc.bits) != 0 {
				rc.end = max(rc.end, k*rc.perBlock+i+1)
				return nil
			}
		}
	}
	return nil
}

// writeBE64 writes one big-endian 64-bit metadata field (a header field,
// an L1 entry) in a single write, so that it changes atomically.
func (img *Image) writeBE64(off int64, v uint64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	if _, err := img.wfile.WriteAt(b[:], off); err != nil {
		return image.FileErrorf(img.name, "writing metadata at %#x: %w", off, err)
	}
	return nil
}

// allocClusters allocates n contiguous host clusters, reusing the first
// free run below the end of the file that fits (as QEMU does, so that
// discards and rewrites do not grow the file for ever), and counts them
// in memory; it returns the first cluster index.
func (img *Image) allocClusters(n int64) (int64, error) {
	rc := img.alloc
	if img.meta == nil {
		// Reused clusters are checked against the metadata set.
		if err := img.buildMetadataSet(); err != nil {
			return 0, err
		}
	}
	first, ok, err := rc.findFree(n)
	if err != nil {
		return 0, err
	}
	if !ok {
		return img.allocAtEnd(n)
	}
	for c := first; c < first+n; c++ {
		if err := rc.add(c, 1); err != nil {
			return 0, err
		}
	}
	return first, nil
}

// allocAtEnd allocates n contiguous host clusters at the end of the file.
func (img *Image) allocAtEnd(n int64) (int64, error) {
	rc := img.alloc
	var first int64
	for range 64 {
		first = rc.end
		if err := rc.cover(first, first+n); err != nil {
			return 0, err
		}
		if rc.end == first {
			rc.end = first + n
			for c := first; c < first+n; c++ {
				if err := rc.add(c, 1); err != nil {
					return 0, err
				}
			}
			return first, nil
		}
	}
	return 0, img.errorf(image.ErrCorrupt, "cluster allocation did not settle")
}

// cover makes sure refcount blocks exist for host clusters [lo, hi).
func (rc *refcounts) cover(lo, hi int64) error {
	for k := lo / rc.perBlock; k <= (hi-1)/rc.perBlock; k++ {
		if k >= int64(len(rc.table)) {
			if err := rc.growTable(k + 1); err != nil {
				return err
			}
			return nil // the table moved clusters: caller retries
		}
		b, err := rc.block(k)
		if err != nil {
			return err
		}
		if b == nil {
			if _, err := rc.newBlock(k); err != nil {
				return err
			}
			return nil
		}
	}
	return nil
}

func (img *Image) checkWrite(off, n int64) error {
	if img.alloc == nil {
		return img.errorf(image.ErrReadOnly, "write to an image opened read-only")
	}
	if img.closed {
		return img.errorf(image.ErrInvalidArgument, "write to a closed image")
	}
	if off < 0 || n < 0 || off > img.Size() || n > img.Size()-off {
		return img.errorf(image.ErrInvalidArgument, "write [%d,+%d) outside the virtual size %d", off, n, img.Size())
	}
	return img.staleBitmaps()
}

// WriteAt writes guest data, allocating clusters and copying on write from
// the backing file and from compressed or shared clusters.
func (img *Image) WriteAt(p []byte, off int64) (int, error) {
	if err := img.checkWrite(off, int64(len(p))); err != nil {
		return 0, err
	}
	img.mu.Lock()
	defer img.mu.Unlock()
	n := 0
	for n < len(p) {
		chunk := img.l2Span(off+int64(n), int64(len(p)-n))
		if err := img.writeChunk(p[n:n+int(chunk)], off+int64(n)); err != nil {
			return n, err
		}
		n += int(chunk)
	}
	return n, nil
}

// l2Span is how many of length bytes from off fall under one L2 table.
func (img *Image) l2Span(off, length int64) int64 {
	cover := img.hdr.L2Entries() * img.hdr.ClusterSize()
	return min(length, cover-off%cover)
}

// l2ForWrite returns the L2 table for l1Index, owned by the active layer
// alone. A missing table is allocated and a shared one (from a snapshot)
// copied; fresh reports that the table is not on disk yet, so the caller
// must write it whole and then the L1 entry.
func (img *Image) l2ForWrite(l1Index int64) (t *l2Table, fresh bool, err error) {
	e := img.l1[l1Index]
	if e&offsetMask != 0 && e&flagCopied != 0 {
		t, err = img.l2At(l1Index)
		return t, false, err
	}
	var entries []uint64
	if e&offsetMask != 0 {
		old, err := img.l2At(l1Index)
		if err != nil {
			return nil, false, err
		}
		entries = append([]uint64(nil), old.entries...)
	} else {
		entries = make([]uint64, img.hdr.ClusterSize()/8)
	}
	c, err := img.allocClusters(1)
	if err != nil {
		return nil, false, err
	}
	img.noteMetadata(c, 1)
	return &l2Table{off: c * img.hdr.ClusterSize(), entries: entries}, true, nil
}

// commitL2 writes the entries [lo, hi) of t, or all of t and then its L1
// entry when the table is fresh, and frees the table it replaced.
func (img *Image) commitL2(t *l2Table, fresh bool, l1Index int64, lo, hi int64) error {
	w := img.wfile
	per := img.hdr.L2EntrySize() / 8
	if fresh {
		lo, hi = 0, img.hdr.L2Entries()
	}
	buf := make([]byte, (hi-lo)*per*8)
	for i := lo * per; i < hi*per; i++ {
		binary.BigEndian.PutUint64(buf[(i-lo*per)*8:], t.entries[i])
	}
	if _, err := w.WriteAt(buf, t.off+lo*per*8); err != nil {
		return image.FileErrorf(img.name, "writing L2 table: %w", err)
	}
	img.l2cache.put(t.off, t)
	if !fresh {
		return nil
	}
	old := img.l1[l1Index]
	img.l1[l1Index] = uint64(t.off) | flagCopied
	if err := img.writeBE64(int64(img.hdr.L1TableOffset)+l1Index*8, img.l1[l1Index]); err != nil {
		return err
	}
	if oldOff := int64(old & offsetMask); oldOff != 0 {
		img.l2cache.drop(oldOff)
		img.alloc.freeLater(oldOff / img.hdr.ClusterSize())
	}
	return nil
}

// clusterWrite is the plan for one cluster touched by a write.
type clusterWrite struct {
	l2Index  int64
	guest    int64 // guest offset of the cluster
	from, to int64 // written byte range inside the cluster
	inPlace  bool
	host     int64 // host offset of the cluster once decided
}

// writeChunk writes p at off; the range lies under one L2 table.
func (img *Image) writeChunk(p []byte, off int64) error {
	h := img.hdr
	cs := h.ClusterSize()
	l1Index := (off >> h.ClusterBits) / h.L2Entries()
	t, fresh, err := img.l2ForWrite(l1Index)
	if err != nil {
		return err
	}
	var plan []clusterWrite
	var need int64 // clusters to allocate
	for pos := off; pos < off+int64(len(p)); {
		guest := pos &^ (cs - 1)
		cw := clusterWrite{l2Index: (pos >> h.ClusterBits) % h.L2Entries(), guest: guest, from: pos - guest}
		cw.to = min(cs, off+int64(len(p))-guest)
		entry := t.entries[cw.l2Index*(h.L2EntrySize()/8)]
		switch {
		case h.IncompatibleFeatures&IncompatDataFile != 0:
			// External data files map guest offsets 1:1 and are not
			// refcounted.
			cw.inPlace, cw.host = entry&offsetMask != 0 || entry&flagCopied != 0, guest
		case entry&flagCopied != 0 && entry&(flagCompressed|flagZero) == 0 && entry&offsetMask != 0:
			cw.inPlace, cw.host = true, int64(entry&offsetMask)
			if cw.host%cs != 0 {
				return img.errorf(image.ErrCorrupt, "cluster offset %#x (L2 table %#x index %d) is not cluster aligned", cw.host, t.off, cw.l2Index)
			}
			if err := img.checkDataCluster(cw.host, t.off, cw.l2Index); err != nil {
				return err
			}
			if err := img.checkOverlap(cw.host); err != nil {
				return err
			}
		default:
			need++
		}
		plan = append(plan, cw)
		pos = guest + cw.to
	}
	if need > 0 && h.IncompatibleFeatures&IncompatDataFile == 0 {
		first, err := img.allocClusters(need)
		if err != nil {
			return err
		}
		next := first * cs
		for i := range plan {
			if !plan[i].inPlace && h.IncompatibleFeatures&IncompatDataFile == 0 {
				plan[i].host = next
				next += cs
			}
		}
	}
	if err := img.alloc.flush(); err != nil {
		return err
	}
	if err := img.writePlannedData(plan, p, off); err != nil {
		return err
	}
	lo, hi := plan[0].l2Index, plan[len(plan)-1].l2Index+1
	for _, cw := range plan {
		img.setDataEntry(t, cw)
	}
	if err := img.commitL2(t, fresh, l1Index, lo, hi); err != nil {
		return err
	}
	return img.alloc.flush()
}

// setDataEntry points the L2 entry of cw at its host cluster, exclusively
// owned, and schedules the cluster it replaces for freeing.
func (img *Image) setDataEntry(t *l2Table, cw clusterWrite) {
	h := img.hdr
	per := h.L2EntrySize() / 8
	i := cw.l2Index * per
	old := t.entries[i]
	if !cw.inPlace && int64(old&offsetMask) != cw.host {
		img.freeEntry(old)
	}
	t.entries[i] = uint64(cw.host) | flagCopied
	if h.ExtendedL2() {
		t.entries[i+1] = 0xffffffff // every subcluster allocated, none zero
	}
}

// freeEntry schedules the host clusters an old L2 entry referenced.
func (img *Image) freeEntry(entry uint64) {
	cs := img.hdr.ClusterSize()
	if entry&flagCompressed != 0 {
		host, size := img.hdr.compressedDesc(entry)
		for c := host / cs; c <= (host+size-1)/cs; c++ {
			img.alloc.freeLater(c)
		}
		img.ccache.drop(entry)
		return
	}
	if off := int64(entry & offsetMask); off != 0 {
		if img.hdr.IncompatibleFeatures&IncompatDataFile == 0 {
			img.alloc.freeLater(off / cs)
		}
	}
}

// writePlannedData writes the guest data of a planned chunk. Whole
// clusters come straight from p, merged into runs of contiguous host
// clusters; partial ones are merged with the cluster's current content.
func (img *Image) writePlannedData(plan []clusterWrite, p []byte, off int64) error {
	cs := img.hdr.ClusterSize()
	w := img.dataWriter()
	for i := 0; i < len(plan); {
		cw := plan[i]
		if img.direct(cw) {
			// Extend the run while clusters stay contiguous in guest and
			// host space and are written whole (or in place).
			j := i + 1
			for j < len(plan) && plan[j].host == plan[j-1].host+cs && plan[j].from == 0 &&
				img.direct(plan[j]) && plan[j-1].to == cs {
				j++
			}
			start := cw.guest + cw.from - off
			end := plan[j-1].guest + plan[j-1].to - off
			data := img.encrypted(p[start:end], cw.guest+cw.from, cw.host+cw.from)
			if _, err := w.WriteAt(data, cw.host+cw.from); err != nil {
				return image.FileErrorf(img.name, "writing data: %w", err)
			}
			i = j
			continue
		}
		buf := make([]byte, cs)
		if err := img.readCluster(buf, cw.guest); err != nil {
			return err
		}
		copy(buf[cw.from:cw.to], p[cw.guest+cw.from-off:])
		if img.crypt != nil {
			img.crypt.cipher.Encrypt(buf, img.crypt.sector(cw.guest, cw.host))
		}
		if _, err := w.WriteAt(buf, cw.host); err != nil {
			return image.FileErrorf(img.name, "writing data: %w", err)
		}
		i++
	}
	return nil
}

// direct reports whether the bytes cw writes can go straight to its host
// cluster: it is written whole, or in place (without subclusters, whose
// unwritten part must be allocated too) and, in an encrypted image, in
// whole sectors.
func (img *Image) direct(cw clusterWrite) bool {
	if cw.from == 0 && cw.to == img.hdr.ClusterSize() {
		return true
	}
	aligned := img.crypt == nil || (cw.from|cw.to)%luks.SectorSize == 0
	return cw.inPlace && !img.hdr.ExtendedL2() && aligned
}

func (img *Image) dataWriter() File {
	if img.dataW != nil {
		return img.dataW
	}
	return img.wfile
}

// readCluster reads the current content of the guest cluster at guest
// (zeros past the virtual size); the caller holds img.mu.
func (img *Image) readCluster(buf []byte, guest int64) error {
	n := min(int64(len(buf)), img.Size()-guest)
	clear(buf[n:])
	for done := int64(0); done < n; {
		m, err := img.lookup(guest+done, n-done)
		if err != nil {
			return err
		}
		if err := img.readMapping(buf[done:done+m.length], guest+done, m); err != nil {
			return err
		}
		done += m.length
	}
	return nil
}

// Flush writes pending metadata and syncs the file (and the external data
// file) to stable storage.
func (img *Image) Flush() error {
	img.mu.Lock()
	defer img.mu.Unlock()
	if img.alloc == nil {
		return nil
	}
	if err := img.alloc.flush(); err != nil {
		return err
	}
	if img.dataW != nil {
		if err := img.dataW.Sync(); err != nil {
			return err
		}
	}
	return img.wfile.Sync()
}

// closeWrite writes pending metadata. It does not sync, like qemu-img's
// default cache mode: the ordering of writes already keeps the image
// consistent if the process dies, and callers who need durability
// against power loss call Flush.
func (img *Image) closeWrite() error { return img.alloc.flush() }
