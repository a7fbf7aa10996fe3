package ext4

import (
	"encoding/binary"
)

// extent is a run of a file: n blocks from logical block lblk stored
// from physical block pblk (0 for a hole is never kept).
type extent struct {
	lblk, pblk, n uint64
	unwritten     bool
}

// layout is where a file's data lies, and the blocks of the tree (extent
// nodes or indirect blocks) that map it.
type layout struct {
	runs []extent
	tree []uint64
}

// dataBlocks counts the blocks of the runs.
func (l *layout) dataBlocks() uint64 {
	var n uint64
	for _, r := range l.runs {
		n += r.n
	}
	return n
}

// readLayout reads the whole map of an inode. Every node is checked as
// the reader checks it; the walk visits each node once and depths fall
// by one per level, so a hostile tree costs at most its blocks.
func (f *FS) readLayout(in *Inode) (*layout, error) {
	l := &layout{}
	if in.Flags&FlagInlineData != 0 || in.IsSymlink() && f.fastSymlink(in) {
		return l, nil
	}
	if in.Flags&FlagExtents != 0 {
		return l, f.walkExtents(in, in.block[:], -1, l)
	}
	return l, f.walkIndirect(in, l)
}

func (f *FS) walkExtents(in *Inode, node []byte, want int, l *layout) error {
	le := binary.LittleEndian
	if le.Uint16(node) != extentMagic {
		return f.corrupt("inode %d extent node: bad magic", in.Ino)
	}
	entries, max, depth := int(le.Uint16(node[2:])), int(le.Uint16(node[4:])), int(le.Uint16(node[6:]))
	if entries > max || 12+12*max > len(node) || depth > maxExtentDepth || want >= 0 && depth != want {
		return f.corrupt("inode %d extent node: %d of %d entries, depth %d", in.Ino, entries, max, depth)
	}
	for i := range entries {
		e := node[12+12*i:]
		start := uint64(le.Uint32(e))
		if depth == 0 {
			n := uint64(le.Uint16(e[4:]))
			unwritten := n > extentInit
			if unwritten {
				n -= extentInit
			}
			phys := uint64(le.Uint16(e[6:]))<<32 | uint64(le.Uint32(e[8:]))
			if n == 0 || !f.validRange(phys, n) {
				return f.corrupt("inode %d extent at %d: blocks %d+%d out of range", in.Ino, start, phys, n)
			}
			if k := len(l.runs); k > 0 && l.runs[k-1].lblk+l.runs[k-1].n > start {
				return f.corrupt("inode %d extent at %d overlaps", in.Ino, start)
			}
			l.runs = append(l.runs, extent{lblk: start, pblk: phys, n: n, unwritten: unwritten})
			continue
		}
		child := uint64(le.Uint16(e[8:]))<<32 | uint64(le.Uint32(e[4:]))
		if uint64(len(l.tree)) >= f.sb.blocksCount {
			return f.corrupt("inode %d extent tree larger than the file system", in.Ino)
		}
		b, err := f.readBlock(child)
		if err != nil {
			return err
		}
		if f.sb.metadataCsum() {
			if err := f.checkExtentTail(in, b); err != nil {
				return err
			}
		}
		l.tree = append(l.tree, child)
		if err := f.walkExtents(in, b, depth-1, l); err != nil {
			return err
		}
	}
	return nil
}

// walkIndirect reads an ext2/ext3 block map: 12 direct pointers, then
// single, double and triple indirect trees.
func (f *FS) walkIndirect(in *Inode, l *layout) error {
	le := binary.LittleEndian
	add := func(lblk, p uint64) error {
		if !f.validRange(p, 1) {
			return f.corrupt("inode %d block map: block %d out of range", in.Ino, p)
		}
		if k := len(l.runs); k > 0 && l.runs[k-1].lblk+l.runs[k-1].n == lblk && l.runs[k-1].pblk+l.runs[k-1].n == p {
			l.runs[k-1].n++
		} else {
			l.runs = append(l.runs, extent{lblk: lblk, pblk: p, n: 1})
		}
		return nil
	}
	for i := range uint64(12) {
		if p := uint64(le.Uint32(in.block[4*i:])); p != 0 {
			if err := add(i, p); err != nil {
				return err
			}
		}
	}
	per := uint64(f.sb.blockSize / 4)
	var walk func(ptr uint64, level int, lblk uint64) error
	walk = func(ptr uint64, level int, lblk uint64) error {
		if !f.validRange(ptr, 1) {
			return f.corrupt("inode %d indirect block %d out of range", in.Ino, ptr)
		}
		l.tree = append(l.tree, ptr)
		table, err := f.readBlock(ptr)
		if err != nil {
			return err
		}
		span := uint64(1)
		for range level - 1 {
			span *= per
		}
		for i := range per {
			p := uint64(le.Uint32(table[4*i:]))
			if p == 0 {
				continue
			}
			if level == 1 {
				err = add(lblk+i, p)
			} else {
				err = walk(p, level-1, lblk+i*span)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	base := uint64(12)
	span := per
	for level := 1; level <= 3; level++ {
		if p := uint64(le.Uint32(in.block[44+4*level:])); p != 0 {
			if err := walk(p, level, base); err != nil {
				return err
			}
		}
		base += span
		span *= per
	}
	return nil
}

// setLayout makes runs the inode's data: the old tree blocks are freed
// and a new tree (extents, or a block map on file systems without them)
// is built in new blocks near goal. Data blocks are the caller's to
// allocate and free; i_blocks is recounted.
func (f *FS) setLayout(in *Inode, old *layout, runs []extent) error {
	for _, b := range old.tree {
		if err := f.freeBlocks(b, 1); err != nil {
			return err
		}
	}
	var tree []uint64
	var err error
	if in.Flags&FlagExtents != 0 {
		tree, err = f.buildExtents(in, runs)
	} else {
		tree, err = f.buildBlockMap(in, runs)
	}
	if err != nil {
		return err
	}
	nl := layout{runs: runs, tree: tree}
	blocks := nl.dataBlocks() + uint64(len(tree))
	if in.FileACL != 0 {
		blocks++
	}
	in.Blocks = blocks * uint64(f.sb.blockSize/512)
	return nil
}

// goal is where a file's new blocks should go: after its last block, or
// in its inode's group.
func (f *FS) goal(in *Inode, runs []extent) uint64 {
	if k := len(runs); k > 0 {
		return runs[k-1].pblk + runs[k-1].n
	}
	return f.groupFirst((in.Ino - 1) / f.sb.inodesPerGroup)
}

// allocTree allocates n blocks for a file's tree, near goal.
func (f *FS) allocTree(goal, n uint64) ([]uint64, error) {
	if n == 0 {
		return nil, nil
	}
	spans, err := f.allocBlocks(goal, n)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, s := range spans {
		for i := range s.n {
			out = append(out, s.start+i)
		}
	}
	return out, nil
}

// maxExtentLen is the longest initialised extent; unwritten ones are one
// shorter.
const maxExtentLen = 32768

// buildExtents writes an extent tree for runs: up to four extents in the
// inode, else leaves of extents under as many index levels as needed.
func (f *FS) buildExtents(in *Inode, runs []extent) ([]uint64, error) {
	var split []extent
	for _, r := range runs {
		limit := uint64(maxExtentLen)
		if r.unwritten {
			limit--
		}
		for r.n > 0 {
			n := min(r.n, limit)
			split = append(split, extent{lblk: r.lblk, pblk: r.pblk, n: n, unwritten: r.unwritten})
			r.lblk, r.pblk, r.n = r.lblk+n, r.pblk+n, r.n-n
		}
	}
	perBlock := int((f.sb.blockSize - 12) / 12)
	// Entries at the current level: (first logical block, 12-byte entry).
	type entry struct {
		lblk uint64
		raw  [12]byte
	}
	le := binary.LittleEndian
	level := make([]entry, len(split))
	for i, r := range split {
		e := &level[i]
		e.lblk = r.lblk
		le.PutUint32(e.raw[0:], uint32(r.lblk))
		n := r.n
		if r.unwritten {
			n += extentInit
		}
		le.PutUint16(e.raw[4:], uint16(n))
		le.PutUint16(e.raw[6:], uint16(r.pblk>>32))
		le.PutUint32(e.raw[8:], uint32(r.pblk))
	}
	var tree []uint64
	depth := 0
	goal := f.goal(in, runs)
	for len(level) > 4 {
		nodes := (len(level) + perBlock - 1) / perBlock
		blocks, err := f.allocTree(goal, uint64(nodes))
		if err != nil {
			return nil, err
		}
		tree = append(tree, blocks...)
		var up []entry
		for k, b := range blocks {
			chunk := level[k*perBlock : min(len(level), (k+1)*perBlock)]
			node := f.newMetaBlock(b)
			putExtentHeader(node, len(chunk), perBlock, depth)
			for i, e := range chunk {
				copy(node[12+12*i:], e.raw[:])
			}
			if f.sb.metadataCsum() {
				le.PutUint32(node[12+12*perBlock:], crc32c(f.inodeSeed(in), node[:12+12*perBlock]))
			}
			var ix entry
			ix.lblk = chunk[0].lblk
			le.PutUint32(ix.raw[0:], uint32(chunk[0].lblk))
			le.PutUint32(ix.raw[4:], uint32(b))
			le.PutUint16(ix.raw[8:], uint16(b>>32))
			up = append(up, ix)
		}
		level = up
		depth++
		if depth > maxExtentDepth {
			return nil, f.corrupt("inode %d: extent tree deeper than %d", in.Ino, maxExtentDepth)
		}
	}
	clear(in.block[:])
	putExtentHeader(in.block[:], len(level), 4, depth)
	for i, e := range level {
		copy(in.block[12+12*i:], e.raw[:])
	}
	return tree, nil
}

func putExtentHeader(b []byte, entries, max, depth int) {
	le := binary.LittleEndian
	le.PutUint16(b[0:], extentMagic)
	le.PutUint16(b[2:], uint16(entries))
	le.PutUint16(b[4:], uint16(max))
	le.PutUint16(b[6:], uint16(depth))
	le.PutUint32(b[8:], 0)
}

// buildBlockMap writes an ext2/ext3 block map for runs: direct pointers,
// then single, double and triple indirect blocks as far as needed.
func (f *FS) buildBlockMap(in *Inode, runs []extent) ([]uint64, error) {
	le := binary.LittleEndian
	per := uint64(f.sb.blockSize / 4)
	clear(in.block[:])
	var tree []uint64
	goal := f.goal(in, runs)
	// tables maps (level, index of the subtree) to its block, built on
	// demand as pointers are placed.
	type key struct {
		level int
		idx   uint64
	}
	tables := map[key][]byte{}
	table := func(k key, parent []byte, slot uint64) ([]byte, error) {
		if t, ok := tables[k]; ok {
			return t, nil
		}
		bs, err := f.allocTree(goal, 1)
		if err != nil {
			return nil, err
		}
		tree = append(tree, bs[0])
		if bs[0]>>32 != 0 {
			return nil, f.errNoSpace("blocks below 2^32 for a block-mapped file")
		}
		le.PutUint32(parent[4*slot:], uint32(bs[0]))
		t := f.newMetaBlock(bs[0])
		tables[k] = t
		return t, nil
	}
	for _, r := range runs {
		if r.pblk+r.n > 1<<32 {
			return nil, f.errNoSpace("blocks below 2^32 for a block-mapped file")
		}
		for i := range r.n {
			lblk, p := r.lblk+i, uint32(r.pblk+i)
			if lblk < 12 {
				le.PutUint32(in.block[4*lblk:], p)
				continue
			}
			off := lblk - 12
			level, span := 1, per
			for off >= span {
				off -= span
				level++
				span *= per
				if level > 3 {
					return nil, f.corrupt("inode %d: block %d past a block map's reach", in.Ino, lblk)
				}
			}
			// Descend from the top table of this level to the leaf.
			parent, slot := in.block[:], uint64(11+level)
			sub := span
			prefix := uint64(0)
			for l := level; l >= 1; l-- {
				t, err := table(key{level*10 + l, prefix}, parent, slot)
				if err != nil {
					return nil, err
				}
				sub /= per
				idx := off / sub
				off %= sub
				prefix = prefix*per + idx
				parent, slot = t, idx
			}
			le.PutUint32(parent[4*slot:], p)
		}
	}
	return tree, nil
}
