package qcow2

import (
	"encoding/binary"

	"github.com/qimg/qimg/image"
)

// Comparing the counted references with the stored refcounts, repairing
// single refcounts, and rebuilding the whole refcount structure.

// compare checks every cluster's stored refcount against the references
// counted (QEMU's compare_refcounts) and, as fix allows, sets it to them.
// A stored refcount of zero for a referenced cluster cannot be fixed in
// place: the refcount block may be missing, so it asks for a rebuild. It
// returns the highest cluster in use.
func (c *checker) compare(fix image.RepairMode) (int64, error) {
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
func (c *checker) mismatch(i int64, stored, want uint64, fix image.RepairMode) error {
	var fixed *int64
	switch {
	case stored == 0:
		c.rebuild = true
	case stored > want && fix.Leaks():
		fixed = &c.res.LeaksFixed
	case stored < want && fix.Errors():
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
func (c *checker) rebuildAndRecount(fix image.RepairMode) (int64, error) {
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
	if err := c.calculate(image.RepairNone); err != nil {
		return 0, err
	}
	var highest int64
	var fresh int64
	if fix.Leaks() {
		saved := *res
		c.restore(image.CheckResult{})
		h, err := c.compare(image.RepairLeaks)
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
	table, tableOff, clusters, err := c.writeStructure()
	if err != nil {
		return err
	}
	return c.switchTable(table, tableOff, clusters)
}

// writeStructure writes the refcount blocks and table of the counted
// references (and of themselves) into clusters free by that count, and
// syncs; it returns the table, its offset and its size in clusters.
func (c *checker) writeStructure() (table []uint64, tableOff, clusters int64, err error) {
	if _, err := c.writeRefblocks(0, c.n, &table); err != nil {
		return nil, 0, 0, err
	}
	for {
		clusters = (int64(len(table))*8 + c.cs - 1) / c.cs
		var first int64
		k, err := c.allocExpected(clusters, &first)
		if err != nil {
			return nil, 0, 0, err
		}
		tableOff = k * c.cs
		grown, err := c.writeRefblocks(k, k+clusters, &table)
		if err != nil {
			return nil, 0, 0, err
		}
		if !grown {
			break
		}
	}
	buf := make([]byte, clusters*c.cs)
	for i, e := range table {
		binary.BigEndian.PutUint64(buf[i*8:], e)
	}
	if _, err := c.img.wfile.WriteAt(buf, tableOff); err != nil {
		return nil, 0, 0, image.FileErrorf(c.img.name, "writing refcount table: %w", err)
	}
	return table, tableOff, clusters, c.img.wfile.Sync()
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
			return grown, image.FileErrorf(c.img.name, "writing refcount block: %w", err)
		}
		k = start + c.perBlock - 1
	}
	return grown, nil
}

// switchTable points the header at the refcount table writeStructure
// wrote (and synced, so that the header never names unwritten blocks).
func (c *checker) switchTable(table []uint64, off, clusters int64) error {
	img := c.img
	var hdr [12]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(off))
	binary.BigEndian.PutUint32(hdr[8:], uint32(clusters))
	// Offset and size are adjacent: one write switches structures.
	if _, err := img.wfile.WriteAt(hdr[:], 48); err != nil {
		return image.FileErrorf(img.name, "updating header: %w", err)
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
