package ext4

import (
	"encoding/binary"
	"fmt"

	"github.com/qimg/qimg/image"
)

// span is a run of blocks: n blocks from start.
type span struct {
	start, n uint64
}

// groupFirst is the first block of group g.
func (f *FS) groupFirst(g uint32) uint64 {
	return uint64(f.sb.firstDataBlock) + uint64(g)*uint64(f.sb.blocksPerGroup)
}

// groupBlocks is the number of blocks in group g (the last may be short).
func (f *FS) groupBlocks(g uint32) uint64 {
	return min(uint64(f.sb.blocksPerGroup), f.sb.blocksCount-f.groupFirst(g))
}

// groupOf is the group holding block b.
func (f *FS) groupOf(b uint64) uint32 {
	return uint32((b - uint64(f.sb.firstDataBlock)) / uint64(f.sb.blocksPerGroup))
}

// blockBitmap returns group g's block bitmap as the transaction has it
// and as it was committed (its first read). A BLOCK_UNINIT group's
// bitmap is built from the metadata the group holds, and the flag goes.
func (f *FS) blockBitmap(g uint32) (cur, orig []byte, d desc, err error) {
	d, err = f.readDesc(g)
	if err != nil {
		return nil, nil, nil, err
	}
	b := d.blockBitmap()
	if !f.validRange(b, 1) {
		return nil, nil, nil, f.corrupt("group %d block bitmap at block %d", g, b)
	}
	if o, ok := f.tx.orig[b]; ok {
		f.tx.save(b) // the caller changes it
		return f.tx.blocks[b], o, d, nil
	}
	if f.sb.groupCsum() && d.flags()&bgBlockUninit != 0 {
		cur = f.newMetaBlock(b)
		if err := f.initBlockBitmap(g, cur); err != nil {
			return nil, nil, nil, err
		}
		d.setFlags(d.flags() &^ bgBlockUninit)
	} else if cur, err = f.metaBlock(b); err != nil {
		return nil, nil, nil, err
	}
	f.tx.orig[b] = append([]byte(nil), cur...)
	if f.tx.undo != nil {
		f.tx.undo.orig = append(f.tx.undo.orig, b)
	}
	return cur, f.tx.orig[b], d, nil
}

// initBlockBitmap fills the bitmap of a group never initialised: the
// superblock backup, descriptors and reserved descriptor blocks it holds,
// any group's bitmaps and inode table placed in it (flex_bg packs them),
// and the padding past its end.
func (f *FS) initBlockBitmap(g uint32, bm []byte) error {
	s := f.sb
	first, n := f.groupFirst(g), f.groupBlocks(g)
	mark := func(b, cnt uint64) {
		for i := b; i < b+cnt; i++ {
			if i >= first && i < first+n {
				setBit(bm, i-first)
			}
		}
	}
	if s.hasSuper(g) {
		descBlocks := (uint64(s.groups)*uint64(s.descSize) + uint64(s.blockSize) - 1) / uint64(s.blockSize)
		mark(first, 1+descBlocks+uint64(s.reservedGDT))
		if g == 0 && s.firstDataBlock == 0 && s.blockSize == 1024 {
			mark(0, 1)
		}
	}
	tableBlocks := (uint64(s.inodesPerGroup)*uint64(s.inodeSize) + uint64(s.blockSize) - 1) / uint64(s.blockSize)
	for h := range s.groups {
		d, err := f.readDesc(h)
		if err != nil {
			return err
		}
		mark(d.blockBitmap(), 1)
		mark(d.inodeBitmap(), 1)
		mark(d.inodeTable(), tableBlocks)
	}
	for i := n; i < uint64(s.blockSize)*8; i++ {
		setBit(bm, i)
	}
	return nil
}

// inodeBitmap returns group g's inode bitmap in the transaction; an
// INODE_UNINIT group's starts empty (but for its padding) and loses
// the flag.
func (f *FS) inodeBitmap(g uint32) ([]byte, desc, error) {
	d, err := f.readDesc(g)
	if err != nil {
		return nil, nil, err
	}
	b := d.inodeBitmap()
	if !f.validRange(b, 1) {
		return nil, nil, f.corrupt("group %d inode bitmap at block %d", g, b)
	}
	if _, ok := f.tx.blocks[b]; !ok && f.sb.groupCsum() && d.flags()&bgInodeUninit != 0 {
		bm := f.newMetaBlock(b)
		for i := uint64(f.sb.inodesPerGroup); i < uint64(f.sb.blockSize)*8; i++ {
			setBit(bm, i)
		}
		d.setFlags(d.flags() &^ bgInodeUninit)
		d.setItableUnused(uint64(f.sb.inodesPerGroup))
		return bm, d, nil
	}
	bm, err := f.metaBlock(b)
	return bm, d, err
}

func bit(bm []byte, i uint64) bool { return bm[i/8]&(1<<(i%8)) != 0 }
func setBit(bm []byte, i uint64)   { bm[i/8] |= 1 << (i % 8) }
func clearBit(bm []byte, i uint64) { bm[i/8] &^= 1 << (i % 8) }

// errNoSpace is the error of an allocation that cannot be met.
func (f *FS) errNoSpace(what string) error {
	return image.FileErrorf(f.name, "ext4: no free %s left: %w", what, image.ErrLimit)
}

// allocBlocks allocates n blocks, as few runs as the free space allows,
// starting the search at goal's group. A block is taken only if it is
// free in the transaction and was free at the last commit, so data
// written to it at once cannot overwrite anything the committed file
// system still uses (a block freed in this transaction stays untouched
// until the commit that frees it is durable).
func (f *FS) allocBlocks(goal, n uint64) ([]span, error) {
	if n > f.sb.freeBlocks {
		return nil, f.errNoSpace(fmt.Sprintf("blocks (%d needed, %d free)", n, f.sb.freeBlocks))
	}
	var got []span
	start := uint32(0)
	if goal >= uint64(f.sb.firstDataBlock) && goal < f.sb.blocksCount {
		start = f.groupOf(goal)
	}
	for i := uint32(0); i < f.sb.groups && n > 0; i++ {
		g := (start + i) % f.sb.groups
		d, err := f.readDesc(g)
		if err != nil {
			return nil, err
		}
		if d.freeBlocks() == 0 {
			continue
		}
		spans, err := f.allocInGroup(g, n)
		if err != nil {
			return nil, err
		}
		for _, s := range spans {
			n -= s.n
			if k := len(got); k > 0 && got[k-1].start+got[k-1].n == s.start {
				got[k-1].n += s.n
				continue
			}
			got = append(got, s)
		}
	}
	if n > 0 {
		// The counts promised more than the bitmaps hold (or the rest was
		// freed in this transaction): give back what was taken.
		for _, s := range got {
			if err := f.freeBlocks(s.start, s.n); err != nil {
				return nil, err
			}
		}
		return nil, f.errNoSpace("blocks")
	}
	return got, nil
}

// allocInGroup takes up to n free blocks of group g.
func (f *FS) allocInGroup(g uint32, n uint64) ([]span, error) {
	cur, orig, d, err := f.blockBitmap(g)
	if err != nil {
		return nil, err
	}
	first, size := f.groupFirst(g), f.groupBlocks(g)
	var got []span
	taken := uint64(0)
	for i := uint64(0); i < size && taken < n; i++ {
		if bit(cur, i) || bit(orig, i) {
			continue
		}
		setBit(cur, i)
		taken++
		if k := len(got); k > 0 && got[k-1].start+got[k-1].n == first+i {
			got[k-1].n++
		} else {
			got = append(got, span{first + i, 1})
		}
	}
	if taken > d.freeBlocks() {
		return nil, f.corrupt("group %d: bitmap has more free blocks than its count %d", g, d.freeBlocks())
	}
	d.setFreeBlocks(d.freeBlocks() - taken)
	f.sb.freeBlocks -= taken
	f.setBitmapCsums(d, cur, nil)
	return got, f.writeDesc(g, d)
}

// freeBlocks returns blocks [b, b+n) to their groups' free space.
func (f *FS) freeBlocks(b, n uint64) error {
	if !f.validRange(b, n) {
		return f.corrupt("freeing blocks %d+%d out of range", b, n)
	}
	for n > 0 {
		g := f.groupOf(b)
		cur, _, d, err := f.blockBitmap(g)
		if err != nil {
			return err
		}
		first := f.groupFirst(g)
		k := min(n, first+f.groupBlocks(g)-b)
		for i := b - first; i < b-first+k; i++ {
			if !bit(cur, i) {
				return f.corrupt("block %d freed twice", first+i)
			}
			clearBit(cur, i)
			// A freed block's staged contents must not reach it: it may
			// be allocated to data in a later transaction.
			f.tx.save(first + i)
			delete(f.tx.blocks, first+i)
			if d, ok := f.tx.data[first+i]; ok {
				f.tx.saveData(first + i)
				f.tx.staged -= int64(len(d))
				delete(f.tx.data, first+i)
			}
		}
		d.setFreeBlocks(d.freeBlocks() + k)
		f.sb.freeBlocks += k
		f.setBitmapCsums(d, cur, nil)
		if err := f.writeDesc(g, d); err != nil {
			return err
		}
		b, n = b+k, n-k
	}
	return nil
}

// allocInode takes a free inode, in near's group if it has one, and
// counts a directory in its group.
func (f *FS) allocInode(near uint32, dir bool) (uint32, error) {
	s := f.sb
	if s.freeInodes == 0 {
		return 0, f.errNoSpace("inodes")
	}
	start := uint32(0)
	if near > 0 && near <= s.inodesCount {
		start = (near - 1) / s.inodesPerGroup
	}
	for i := uint32(0); i < s.groups; i++ {
		g := (start + i) % s.groups
		d, err := f.readDesc(g)
		if err != nil {
			return 0, err
		}
		if d.freeInodes() == 0 {
			continue
		}
		bm, d, err := f.inodeBitmap(g)
		if err != nil {
			return 0, err
		}
		for idx := uint64(0); idx < uint64(s.inodesPerGroup); idx++ {
			ino := uint64(g)*uint64(s.inodesPerGroup) + idx + 1
			if bit(bm, idx) || ino < uint64(s.firstIno) {
				continue
			}
			setBit(bm, idx)
			d.setFreeInodes(d.freeInodes() - 1)
			if dir {
				d.setUsedDirs(d.usedDirs() + 1)
			}
			if s.groupCsum() && idx >= uint64(s.inodesPerGroup)-d.itableUnused() {
				d.setItableUnused(uint64(s.inodesPerGroup) - idx - 1)
			}
			s.freeInodes--
			f.setBitmapCsums(d, nil, bm)
			return uint32(ino), f.writeDesc(g, d)
		}
		return 0, f.corrupt("group %d: inode bitmap full, count says %d free", g, d.freeInodes())
	}
	return 0, f.errNoSpace("inodes")
}

// freeInode returns inode ino to its group.
func (f *FS) freeInode(ino uint32, dir bool) error {
	s := f.sb
	g, idx := (ino-1)/s.inodesPerGroup, uint64((ino-1)%s.inodesPerGroup)
	bm, d, err := f.inodeBitmap(g)
	if err != nil {
		return err
	}
	if !bit(bm, idx) {
		return f.corrupt("inode %d freed twice", ino)
	}
	clearBit(bm, idx)
	d.setFreeInodes(d.freeInodes() + 1)
	if dir && d.usedDirs() > 0 {
		d.setUsedDirs(d.usedDirs() - 1)
	}
	s.freeInodes++
	f.setBitmapCsums(d, nil, bm)
	return f.writeDesc(g, d)
}

// putSuper writes the superblock's free counts (and flags) with its
// checksum into the transaction.
func (f *FS) putSuper() error {
	s := f.sb
	b := make([]byte, superblockSize)
	if err := f.readAt(b, superblockOffset); err != nil {
		return err
	}
	le := binary.LittleEndian
	le.PutUint32(b[0xC:], uint32(s.freeBlocks))
	le.PutUint32(b[0x10:], s.freeInodes)
	if s.has(incompat64bit) {
		le.PutUint32(b[0x158:], uint32(s.freeBlocks>>32))
	}
	le.PutUint32(b[0x60:], s.incompat)
	if s.metadataCsum() {
		le.PutUint32(b[0x3FC:], crc32c(^uint32(0), b[:0x3FC]))
	}
	return f.writeMeta(b, superblockOffset)
}
