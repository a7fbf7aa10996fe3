package ext4

import (
	"encoding/binary"
)

// mapIndirect maps logical block lblk of an ext2/ext3 inode through its
// block map: 12 direct pointers, then single, double and triple indirect
// blocks of 32-bit pointers. It returns what mapExtent returns: the
// physical block and the run of contiguous blocks, or 0 and the length
// of the hole. Runs stop at the end of one pointer table, so a lookup
// reads at most three blocks.
func (f *FS) mapIndirect(in *Inode, lblk uint32) (uint64, uint64, error) {
	le := binary.LittleEndian
	if lblk < 12 {
		return f.run(in, in.block[:48], int(lblk))
	}
	p := uint64(f.sb.blockSize / 4)
	off := uint64(lblk) - 12
	var ptr uint32
	levels := 0
	switch span := p; {
	case off < span:
		ptr, levels = le.Uint32(in.block[48:]), 1
	case off-span < span*p:
		off -= span
		ptr, levels = le.Uint32(in.block[52:]), 2
	case off-span-span*p < span*p*p:
		off -= span + span*p
		ptr, levels = le.Uint32(in.block[56:]), 3
	default:
		// Past what a triple indirect block addresses: nothing there.
		return 0, uint64(1)<<32 - uint64(lblk), nil
	}
	// off is the position within the subtree ptr points to, which covers
	// p^levels blocks.
	for ; levels > 0; levels-- {
		sub := uint64(1)
		for range levels {
			sub *= p
		}
		if ptr == 0 {
			return 0, sub - off, nil
		}
		table, err := f.readBlock(uint64(ptr))
		if err != nil {
			return 0, 0, err
		}
		span := sub / p
		idx := off / span
		off %= span
		if levels == 1 {
			return f.run(in, table, int(idx))
		}
		ptr = le.Uint32(table[4*idx:])
	}
	panic("unreachable")
}

// run reads the pointer at index i of a table and counts how many
// following pointers continue it: consecutive blocks, or consecutive
// holes.
func (f *FS) run(in *Inode, table []byte, i int) (uint64, uint64, error) {
	le := binary.LittleEndian
	n := len(table) / 4
	first := le.Uint32(table[4*i:])
	k := 1
	if first == 0 {
		for i+k < n && le.Uint32(table[4*(i+k):]) == 0 {
			k++
		}
		return 0, uint64(k), nil
	}
	for i+k < n && le.Uint32(table[4*(i+k):]) == first+uint32(k) {
		k++
	}
	if !f.validRange(uint64(first), uint64(k)) {
		return 0, 0, f.corrupt("inode %d block map: blocks %d+%d out of range", in.Ino, first, k)
	}
	return uint64(first), uint64(k), nil
}
