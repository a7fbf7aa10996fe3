package xfs

import (
	"bytes"
	"encoding/binary"
	"sort"
)

// Block map btree blocks (long-format btree blocks).
const (
	bmapMagic    = 0x424d4150 // "BMAP", v4
	bmap3Magic   = 0x424d4133 // "BMA3", v5
	bmbtHdrV4    = 24
	bmbtHdrV5    = 72
	bmbtCRCOff   = 64
	bmbtMaxLevel = 9 // XFS_BM_MAXLEVELS is at most 9 whatever the block size
	// maxExtents bounds the extents of one fork kept in memory: 32
	// bytes each, 64 MiB at most.
	maxExtents = 1 << 21
)

// extent maps count file system blocks from file block off to the
// linear block (agno*agblocks+agbno) blk; unwritten extents read as zeros.
type extent struct {
	off, blk, count uint64
	unwritten       bool
}

// decodeExtent unpacks a 128-bit bmbt record: 1 bit unwritten flag, 54
// bits file offset, 52 bits start block, 21 bits length.
func decodeExtent(r []byte) (off, fsb, count uint64, unwritten bool) {
	l0 := binary.BigEndian.Uint64(r)
	l1 := binary.BigEndian.Uint64(r[8:])
	return (l0 & (1<<63 - 1)) >> 9, (l0&(1<<9-1))<<43 | l1>>21, l1 & (1<<21 - 1), l0>>63 != 0
}

// fsbToLinear translates an AG-relative file system block number
// (agno<<agblklog | agbno) into the linear block of the image, checking
// the run of count blocks stays inside one AG and the file system.
func (f *FS) fsbToLinear(fsb, count uint64) (uint64, bool) {
	s := f.sb
	agno, agbno := fsb>>s.agBlkLog, fsb&(1<<s.agBlkLog-1)
	if agno >= s.agCount || count == 0 || agbno >= s.agBlocks || count > s.agBlocks-agbno {
		return 0, false
	}
	blk := agno*s.agBlocks + agbno
	if blk >= s.dblocks || count > s.dblocks-blk {
		return 0, false
	}
	return blk, true
}

// forkExtents lists a fork's extents sorted by file offset, from the
// records in the inode or from the leaves of its block map btree, and
// checks that they do not overlap and lie in the file system.
func (f *FS) forkExtents(in *Inode, attr bool) ([]extent, error) {
	fork, format, n := in.dataFork, in.format, in.nextents
	if attr {
		fork, format, n = in.attrFork, in.aformat, in.anextents
	}
	if n > f.sb.dblocks || n > maxExtents {
		return nil, f.limit("inode %d: %d extents", in.Ino, n)
	}
	var exts []extent
	switch format {
	case fmtExtents:
		if n*16 > uint64(len(fork)) {
			return nil, f.corrupt("inode %d: %d extents in a fork of %d bytes", in.Ino, n, len(fork))
		}
		for i := uint64(0); i < n; i++ {
			var err error
			if exts, err = f.appendExtent(in, exts, fork[i*16:]); err != nil {
				return nil, err
			}
		}
	case fmtBtree:
		var err error
		if exts, err = f.btreeRootExtents(in, fork, n); err != nil {
			return nil, err
		}
	default:
		return nil, f.corrupt("inode %d: fork format %d has no extents", in.Ino, format)
	}
	if uint64(len(exts)) != n {
		return nil, f.corrupt("inode %d: %d extents where %d are counted", in.Ino, len(exts), n)
	}
	return exts, nil
}

// appendExtent decodes one record, checks it follows the previous one
// and lies inside the file system, and appends it.
func (f *FS) appendExtent(in *Inode, exts []extent, rec []byte) ([]extent, error) {
	off, fsb, count, unwritten := decodeExtent(rec)
	blk, ok := f.fsbToLinear(fsb, count)
	if !ok {
		return nil, f.corrupt("inode %d: extent at file block %d maps %d blocks at %d, outside the file system", in.Ino, off, count, fsb)
	}
	if k := len(exts); k > 0 && off < exts[k-1].off+exts[k-1].count {
		return nil, f.corrupt("inode %d: extents out of order at file block %d", in.Ino, off)
	}
	if off+count > 1<<54 {
		return nil, f.corrupt("inode %d: extent past the largest file offset", in.Ino)
	}
	return append(exts, extent{off: off, blk: blk, count: count, unwritten: unwritten}), nil
}

// btreeRootExtents walks a block map btree from its root in the inode
// (level, numrecs, then keys and pointers each sized for the fork).
func (f *FS) btreeRootExtents(in *Inode, fork []byte, n uint64) ([]extent, error) {
	if len(fork) < 4+16 {
		return nil, f.corrupt("inode %d: btree root in a fork of %d bytes", in.Ino, len(fork))
	}
	be := binary.BigEndian
	level, numrecs := int(be.Uint16(fork)), int(be.Uint16(fork[2:]))
	maxrecs := (len(fork) - 4) / 16
	if level < 1 || level > bmbtMaxLevel || numrecs < 1 || numrecs > maxrecs {
		return nil, f.corrupt("inode %d: btree root of level %d with %d records", in.Ino, level, numrecs)
	}
	var exts []extent
	ptrs := fork[4+maxrecs*8:]
	for i := range numrecs {
		var err error
		if exts, err = f.bmbtBlock(in, be.Uint64(ptrs[i*8:]), level-1, n, exts); err != nil {
			return nil, err
		}
	}
	return exts, nil
}

// bmbtBlock appends the extents under one btree block, which must be at
// level (each step down is one level lower, so the walk ends), and never
// more than n in all.
func (f *FS) bmbtBlock(in *Inode, fsb uint64, level int, n uint64, exts []extent) ([]extent, error) {
	blk, ok := f.fsbToLinear(fsb, 1)
	if !ok {
		return nil, f.corrupt("inode %d: btree block %d outside the file system", in.Ino, fsb)
	}
	b, err := f.readBlocks(blk, 1)
	if err != nil {
		return nil, err
	}
	hdr, err := f.checkBmbtHeader(in, b, blk, level)
	if err != nil {
		return nil, err
	}
	be := binary.BigEndian
	numrecs := int(be.Uint16(b[6:]))
	maxrecs := (len(b) - hdr) / 16
	if numrecs < 1 || numrecs > maxrecs {
		return nil, f.corrupt("inode %d: btree block %d holds %d records", in.Ino, fsb, numrecs)
	}
	if level == 0 {
		if uint64(len(exts)+numrecs) > n {
			return nil, f.corrupt("inode %d: more extents in the btree than the %d counted", in.Ino, n)
		}
		for i := range numrecs {
			if exts, err = f.appendExtent(in, exts, b[hdr+i*16:]); err != nil {
				return nil, err
			}
		}
		return exts, nil
	}
	ptrs := b[hdr+maxrecs*8:]
	for i := range numrecs {
		if exts, err = f.bmbtBlock(in, be.Uint64(ptrs[i*8:]), level-1, n, exts); err != nil {
			return nil, err
		}
	}
	return exts, nil
}

// checkBmbtHeader checks a btree block's magic and level, and on v5 its
// CRC, location, UUID and owner; it returns the header's size.
func (f *FS) checkBmbtHeader(in *Inode, b []byte, blk uint64, level int) (int, error) {
	be := binary.BigEndian
	magic, hdr := uint32(bmapMagic), bmbtHdrV4
	if f.sb.crc() {
		magic, hdr = bmap3Magic, bmbtHdrV5
	}
	if be.Uint32(b) != magic {
		return 0, f.corrupt("inode %d: btree block %d has magic 0x%08x", in.Ino, blk, be.Uint32(b))
	}
	if int(be.Uint16(b[4:])) != level {
		return 0, f.corrupt("inode %d: btree block %d at level %d, expected %d", in.Ino, blk, be.Uint16(b[4:]), level)
	}
	if f.sb.crc() {
		if err := f.checkV5Block(b, bmbtCRCOff, 24, 40, 56, blk, in.Ino, "btree block"); err != nil {
			return 0, err
		}
	}
	return hdr, nil
}

// checkV5Block verifies the self-describing header of v5 metadata: the
// CRC at crcOff, the disk address (in 512-byte units) at blknoOff, the
// UUID at uuidOff and the owning inode at ownerOff.
func (f *FS) checkV5Block(b []byte, crcOff, blknoOff, uuidOff, ownerOff int, blk, owner uint64, what string) error {
	be := binary.BigEndian
	if !checkCRC(b, crcOff) {
		return f.corrupt("inode %d: %s at block %d: checksum mismatch", owner, what, blk)
	}
	if be.Uint64(b[blknoOff:]) != blk<<(f.sb.blockLog-9) {
		return f.corrupt("inode %d: %s at block %d claims to be at sector %d", owner, what, blk, be.Uint64(b[blknoOff:]))
	}
	if !bytes.Equal(b[uuidOff:uuidOff+16], f.sb.metaUUID[:]) {
		return f.corrupt("inode %d: %s at block %d: UUID of another file system", owner, what, blk)
	}
	if be.Uint64(b[ownerOff:]) != owner {
		return f.corrupt("inode %d: %s at block %d belongs to inode %d", owner, what, blk, be.Uint64(b[ownerOff:]))
	}
	return nil
}

// findExtent returns the index of the extent holding file block fb, or
// of the first one after it (len(exts) if none), and whether it holds it.
func findExtent(exts []extent, fb uint64) (int, bool) {
	i := sort.Search(len(exts), func(i int) bool { return exts[i].off+exts[i].count > fb })
	return i, i < len(exts) && exts[i].off <= fb
}
