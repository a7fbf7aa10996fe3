package ext4

import (
	"encoding/binary"

	"github.com/qimg/qimg/image"
)

// Group descriptor flags.
const (
	bgInodeUninit = 0x1 // the group's inode table was never written
)

// group is what the reader needs of a block group descriptor.
type group struct {
	inodeTable   uint64 // first block of the inode table
	flags        uint16
	itableUnused uint32 // inodes at the end of the table never used
}

// hasSuper reports whether group g holds a superblock backup (and so a
// copy of the descriptors): every group without sparse_super, else groups
// 0, 1 and powers of 3, 5 and 7.
func (s *superblock) hasSuper(g uint32) bool {
	if g <= 1 || !s.hasRO(roCompatSparseSuper) {
		return true
	}
	if g&1 == 0 {
		return false
	}
	for _, base := range []uint32{3, 5, 7} {
		n := base
		for n < g {
			n *= base
		}
		if n == g {
			return true
		}
	}
	return false
}

// descOffset is the byte offset of group g's descriptor. Descriptors
// follow the superblock, except with meta_bg, where each "meta group" of
// as many groups as one block of descriptors holds its own block of them
// in its first group (after that group's superblock backup, if any).
func (f *FS) descOffset(g uint32) uint64 {
	s := f.sb
	bs := uint64(s.blockSize)
	perBlock := uint32(bs) / s.descSize
	idx := g / perBlock
	var block uint64
	if s.has(incompatMetaBG) && idx >= s.firstMetaBG {
		first := idx * perBlock
		block = uint64(s.firstDataBlock) + uint64(first)*uint64(s.blocksPerGroup)
		if s.hasSuper(first) {
			block++
		}
	} else {
		block = uint64(s.firstDataBlock) + 1 + uint64(idx)
	}
	return block*bs + uint64(g%perBlock)*uint64(s.descSize)
}

// maxCachedGroups bounds the descriptors kept once read: every inode read
// needs its group's, and a hostile group count must not cost memory.
const maxCachedGroups = 1 << 16

// group reads and checks the descriptor of group g. Descriptors are read
// on demand rather than all at Open, so a hostile group count costs no
// memory, and kept in a bounded cache.
func (f *FS) group(g uint32) (group, error) {
	s := f.sb
	if g >= s.groups {
		return group{}, f.corrupt("group %d of %d", g, s.groups)
	}
	f.groupMu.Lock()
	gr, ok := f.groups[g]
	f.groupMu.Unlock()
	if ok {
		return gr, nil
	}
	off := f.descOffset(g)
	if off/uint64(s.blockSize) >= s.blocksCount {
		return group{}, f.corrupt("descriptor of group %d past the last block", g)
	}
	var buf [1024]byte
	d := buf[:s.descSize]
	if err := f.readAt(d, int64(off)); err != nil {
		return group{}, err
	}
	le := binary.LittleEndian
	if s.metadataCsum() {
		var gn [4]byte
		le.PutUint32(gn[:], g)
		c := crc32c(s.csumSeed, gn[:])
		c = crc32c(c, d[:0x1E])
		c = crc32c(c, []byte{0, 0})
		c = crc32c(c, d[0x20:])
		if want := le.Uint16(d[0x1E:]); uint16(c) != want {
			return group{}, f.corrupt("group %d descriptor checksum 0x%04x, computed 0x%04x", g, want, uint16(c))
		}
	}
	gr = group{
		inodeTable:   uint64(le.Uint32(d[0x8:])),
		flags:        le.Uint16(d[0x12:]),
		itableUnused: uint32(le.Uint16(d[0x1C:])),
	}
	if s.descSize >= 64 {
		gr.inodeTable |= uint64(le.Uint32(d[0x28:])) << 32
		gr.itableUnused |= uint32(le.Uint16(d[0x32:])) << 16
	}
	tableBlocks := (uint64(s.inodesPerGroup)*uint64(s.inodeSize) + uint64(s.blockSize) - 1) / uint64(s.blockSize)
	if gr.inodeTable == 0 || gr.inodeTable > s.blocksCount || s.blocksCount-gr.inodeTable < tableBlocks {
		return group{}, f.corrupt("group %d inode table at block %d", g, gr.inodeTable)
	}
	f.groupMu.Lock()
	if len(f.groups) >= maxCachedGroups {
		clear(f.groups)
	}
	f.groups[g] = gr
	f.groupMu.Unlock()
	return gr, nil
}

// corrupt makes an ErrCorrupt error naming the image.
func (f *FS) corrupt(format string, args ...any) error {
	return image.FileErrorf(f.name, "ext4: "+format+": %w", append(args, image.ErrCorrupt)...)
}
