package ext4

import (
	"encoding/binary"
)

const (
	extentMagic    = 0xF30A
	maxExtentDepth = 5 // the kernel's bound; trees this deep address 2^32 blocks
	extentInit     = 32768
)

// mapExtent maps logical block lblk of an extent-mapped inode. It returns
// the physical block and the number of blocks from lblk on that are
// contiguous on disk, or physical 0 and the length of the hole (or
// unwritten extent, which reads as zeros) starting at lblk.
//
// Each lookup descends one path from the root: depths must fall by
// exactly one per level and start at most at maxExtentDepth, so a hostile
// tree can neither loop nor make a lookup cost more than five block reads.
func (f *FS) mapExtent(in *Inode, lblk uint32) (uint64, uint64, error) {
	le := binary.LittleEndian
	node := in.block[:]
	// The node covers logical blocks [lo, hi); what is not in its
	// entries is a hole up to the next entry or hi.
	lo, hi := uint64(0), uint64(1)<<32
	want := -1
	for {
		if le.Uint16(node[0:]) != extentMagic {
			return 0, 0, f.corrupt("inode %d extent node: bad magic", in.Ino)
		}
		entries, max, depth := int(le.Uint16(node[2:])), int(le.Uint16(node[4:])), int(le.Uint16(node[6:]))
		if entries > max || 12+12*max > len(node) {
			return 0, 0, f.corrupt("inode %d extent node: %d of %d entries in %d bytes", in.Ino, entries, max, len(node))
		}
		if want < 0 {
			if depth > maxExtentDepth {
				return 0, 0, f.corrupt("inode %d extent tree depth %d", in.Ino, depth)
			}
		} else if depth != want {
			return 0, 0, f.corrupt("inode %d extent node depth %d, parent expects %d", in.Ino, depth, want)
		}
		ent := func(i int) []byte { return node[12+12*i : 24+12*i] }
		// Find the last entry starting at or before lblk, checking
		// order as the scan goes.
		found, next := -1, hi
		prev := int64(-1)
		for i := 0; i < entries; i++ {
			start := int64(le.Uint32(ent(i)))
			if start <= prev || uint64(start) < lo || uint64(start) >= hi {
				return 0, 0, f.corrupt("inode %d extent node: entry %d out of order", in.Ino, i)
			}
			prev = start
			if uint64(start) > uint64(lblk) {
				next = uint64(start)
				break
			}
			found = i
		}
		if found < 0 {
			return 0, next - uint64(lblk), nil
		}
		e := ent(found)
		start := uint64(le.Uint32(e))
		if depth == 0 {
			n := uint64(le.Uint16(e[4:]))
			unwritten := n > extentInit
			if unwritten {
				n -= extentInit
			}
			phys := uint64(le.Uint16(e[6:]))<<32 | uint64(le.Uint32(e[8:]))
			if n == 0 || start+n > next {
				return 0, 0, f.corrupt("inode %d extent at %d: length %d overlaps", in.Ino, start, n)
			}
			if !f.validRange(phys, n) {
				return 0, 0, f.corrupt("inode %d extent at %d: blocks %d+%d out of range", in.Ino, start, phys, n)
			}
			if uint64(lblk) >= start+n {
				return 0, next - uint64(lblk), nil
			}
			if unwritten {
				return 0, start + n - uint64(lblk), nil
			}
			return phys + uint64(lblk) - start, start + n - uint64(lblk), nil
		}
		child := uint64(le.Uint16(e[8:]))<<32 | uint64(le.Uint32(e[4:]))
		b, err := f.readBlock(child)
		if err != nil {
			return 0, 0, err
		}
		if f.sb.metadataCsum() {
			if err := f.checkExtentTail(in, b); err != nil {
				return 0, 0, err
			}
		}
		node, lo, hi, want = b, start, next, depth-1
	}
}

// checkExtentTail verifies the CRC32c that follows the entries of a
// non-root extent node.
func (f *FS) checkExtentTail(in *Inode, b []byte) error {
	max := int(binary.LittleEndian.Uint16(b[4:]))
	end := 12 + 12*max
	if end+4 > len(b) {
		return f.corrupt("inode %d extent node: no room for its checksum", in.Ino)
	}
	want := binary.LittleEndian.Uint32(b[end:])
	if got := crc32c(f.inodeSeed(in), b[:end]); got != want {
		return f.corrupt("inode %d extent node checksum 0x%08x, computed 0x%08x", in.Ino, want, got)
	}
	return nil
}
