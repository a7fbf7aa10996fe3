package xfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"

	"github.com/qimg/qimg/guestfs/internal/fstree"
)

// Directory data blocks. Block-form directories keep their hash index
// and a tail in their one block; leaf and node directories keep the
// index (and free-space blocks) past dirLeafOffset, where the reader
// does not need to look: every entry lives in a data block.
const (
	dirBlockMagic   = 0x58443242 // "XD2B"
	dirDataMagic    = 0x58443244 // "XD2D"
	dir3BlockMagic  = 0x58444233 // "XDB3"
	dir3DataMagic   = 0x58444433 // "XDD3"
	dirHdrV4        = 16
	dirHdrV5        = 64
	dirCRCOff       = 4
	dirLeafOffset   = 32 << 30 // byte offset of the directory's index
	dirFreeTag      = 0xffff
	maxDirEntries   = 1 << 22 // a listing larger than this is refused
	dirCacheEntries = 1 << 20
)

// dirFunc receives a directory entry; it returns false to stop the walk.
type dirFunc func(name []byte, ino uint64, ftype uint8) bool

// walkDir calls fn for every entry of directory dir, "." and ".."
// included, until fn returns false.
func (f *FS) walkDir(dir *Inode, fn dirFunc) error {
	if !dir.IsDir() {
		return fmt.Errorf("not a directory: %w", fs.ErrInvalid)
	}
	if dir.format == fmtLocal {
		return f.walkShortform(dir, fn)
	}
	return f.walkDataBlocks(dir, fn)
}

// walkShortform reads a directory kept in the inode: a count, the width
// of inode numbers (4 or 8 bytes), the parent, then entries of name
// length, an offset (unused here), the name, the file type and the
// inode number.
func (f *FS) walkShortform(dir *Inode, fn dirFunc) error {
	b := dir.dataFork[:dir.Size]
	if len(b) < 6 {
		return f.corrupt("directory %d: short form of %d bytes", dir.Ino, len(b))
	}
	count, inoSize := int(b[0]), 4
	if b[1] != 0 {
		inoSize = 8
	}
	if len(b) < 2+inoSize {
		return f.corrupt("directory %d: short form of %d bytes", dir.Ino, len(b))
	}
	if !fn([]byte("."), dir.Ino, 2) || !fn([]byte(".."), readIno(b[2:], inoSize), 2) {
		return nil
	}
	ftype := 0
	if f.sb.hasFtype() {
		ftype = 1
	}
	off := 2 + inoSize
	for i := 0; i < count; i++ {
		if off+3 > len(b) {
			return f.corrupt("directory %d: short form entry %d cut short", dir.Ino, i)
		}
		n := int(b[off])
		end := off + 3 + n + ftype + inoSize
		if n == 0 || end > len(b) {
			return f.corrupt("directory %d: short form entry %d of %d bytes", dir.Ino, i, n)
		}
		name := b[off+3 : off+3+n]
		if err := f.checkName(dir, name); err != nil {
			return err
		}
		var t uint8
		if ftype == 1 {
			t = b[off+3+n]
		}
		if !fn(name, readIno(b[off+3+n+ftype:], inoSize), t) {
			return nil
		}
		off = end
	}
	return nil
}

// readIno reads a big-endian inode number of 4 or 8 bytes.
func readIno(b []byte, size int) uint64 {
	if size == 4 {
		return uint64(binary.BigEndian.Uint32(b))
	}
	return binary.BigEndian.Uint64(b)
}

// checkName rejects names a host path could be built from badly: empty,
// with '/' or NUL, or "." and ".." where entries are not those.
func (f *FS) checkName(dir *Inode, name []byte) error {
	if len(name) == 0 || bytes.IndexByte(name, '/') >= 0 || bytes.IndexByte(name, 0) >= 0 {
		return f.corrupt("directory %d: entry name %q", dir.Ino, name)
	}
	return nil
}

// walkDataBlocks reads every data block of a block, leaf, node or btree
// directory, in order, skipping holes left by removed blocks.
func (f *FS) walkDataBlocks(dir *Inode, fn dirFunc) error {
	s := f.sb
	dbs := uint64(s.dirBlockSize())
	if dir.Size > dirLeafOffset || dir.Size%dbs != 0 || dir.Size == 0 {
		return f.corrupt("directory %d of %d bytes", dir.Ino, dir.Size)
	}
	nblocks := dir.Size / uint64(s.blockSize) // file system blocks of data
	if nblocks > s.dblocks {
		return f.corrupt("directory %d of %d bytes", dir.Ino, dir.Size)
	}
	exts, err := f.forkExtents(dir, false)
	if err != nil {
		return err
	}
	per := uint64(1) << s.dirBlkLog // file system blocks per directory block
	next := uint64(0)               // first file block not yet read
	for _, e := range exts {
		first := max(next, e.off&^(per-1))
		for fb := first; fb < e.off+e.count && fb < nblocks; fb += per {
			b, blk, err := f.dirBlock(dir, exts, fb, per)
			if err != nil {
				return err
			}
			more, err := f.parseDataBlock(dir, b, blk, fb == 0, fn)
			if err != nil || !more {
				return err
			}
			next = fb + per
		}
	}
	return nil
}

// dirBlock reads the directory block at file block fb, per file system
// blocks that may lie in several extents, and returns it with the linear
// block of its first part (its address, as v5 headers record it).
func (f *FS) dirBlock(dir *Inode, exts []extent, fb, per uint64) ([]byte, uint64, error) {
	var out []byte
	var first uint64
	for got := uint64(0); got < per; {
		i, ok := findExtent(exts, fb+got)
		if !ok || exts[i].unwritten {
			return nil, 0, f.corrupt("directory %d: block %d is not all mapped", dir.Ino, fb)
		}
		e := exts[i]
		n := min(e.off+e.count-(fb+got), per-got)
		b, err := f.readBlocks(e.blk+fb+got-e.off, n)
		if err != nil {
			return nil, 0, err
		}
		if got == 0 {
			first, out = e.blk+fb-e.off, b
		} else {
			out = append(out, b...)
		}
		got += n
	}
	return out, first, nil
}

// parseDataBlock checks one directory data block (its magic, and on v5
// its CRC, address and owner) and calls fn for its entries. The first
// block of a block-form directory ends with its hash index.
func (f *FS) parseDataBlock(dir *Inode, b []byte, blk uint64, first bool, fn dirFunc) (bool, error) {
	be := binary.BigEndian
	blockMagic, dataMagic, hdr := uint32(dirBlockMagic), uint32(dirDataMagic), dirHdrV4
	if f.sb.crc() {
		blockMagic, dataMagic, hdr = dir3BlockMagic, dir3DataMagic, dirHdrV5
	}
	end := len(b)
	switch m := be.Uint32(b); {
	case m == blockMagic && first:
		count := uint64(be.Uint32(b[end-8:]))
		if count > uint64(end-8-hdr)/8 {
			return false, f.corrupt("directory %d: block index of %d entries", dir.Ino, count)
		}
		end -= 8 + int(count)*8
	case m == dataMagic:
	default:
		return false, f.corrupt("directory %d: data block at %d has magic 0x%08x", dir.Ino, blk, m)
	}
	if f.sb.crc() {
		if err := f.checkV5Block(b, dirCRCOff, 8, 24, 40, blk, dir.Ino, "directory block"); err != nil {
			return false, err
		}
	}
	return f.parseEntries(dir, b, hdr, end, fn)
}

// parseEntries walks the records of a data block between hdr and end:
// free spans (tag 0xffff, length) and entries (inode, name length, name,
// file type, padding to 8 bytes, then their own offset as a tag).
func (f *FS) parseEntries(dir *Inode, b []byte, off, end int, fn dirFunc) (bool, error) {
	be := binary.BigEndian
	ftype := 0
	if f.sb.hasFtype() {
		ftype = 1
	}
	for off < end {
		if end-off < 8 {
			return false, f.corrupt("directory %d: record at %d cut short", dir.Ino, off)
		}
		if be.Uint16(b[off:]) == dirFreeTag {
			n := int(be.Uint16(b[off+2:]))
			if n < 8 || n%8 != 0 || n > end-off {
				return false, f.corrupt("directory %d: free space of %d bytes at %d", dir.Ino, n, off)
			}
			off += n
			continue
		}
		if end-off < 16 {
			return false, f.corrupt("directory %d: entry at %d cut short", dir.Ino, off)
		}
		n := int(b[off+8])
		size := (8 + 1 + n + ftype + 2 + 7) &^ 7
		if n == 0 || size > end-off {
			return false, f.corrupt("directory %d: entry at %d with a name of %d bytes", dir.Ino, off, n)
		}
		if int(be.Uint16(b[off+size-2:])) != off {
			return false, f.corrupt("directory %d: entry at %d tagged %d", dir.Ino, off, be.Uint16(b[off+size-2:]))
		}
		name := b[off+9 : off+9+n]
		if err := f.checkName(dir, name); err != nil {
			return false, err
		}
		var t uint8
		if ftype == 1 {
			t = b[off+9+n]
		}
		if !fn(name, be.Uint64(b[off:]), t) {
			return false, nil
		}
		off += size
	}
	return true, nil
}

// findEntry looks name up in directory dir (fstree.Dirs: each directory
// is scanned once into a map; the hash index is not used).
func (f *FS) findEntry(dir *Inode, name string) (uint64, error) {
	return f.dirs.Lookup(dir.Ino, name, f.entries(dir), f.tooMany(dir))
}

// entries walks directory dir for fstree.
func (f *FS) entries(dir *Inode) fstree.Walk[uint64] {
	return func(fn func(name []byte, ino uint64, ftype uint8) bool) error {
		return f.walkDir(dir, fn)
	}
}

// tooMany reports directory dir holding more than max entries.
func (f *FS) tooMany(dir *Inode) func(max int) error {
	return func(max int) error {
		return f.limit("directory %d has more than %d entries", dir.Ino, max)
	}
}

// readDir lists a directory sorted by name, without "." and "..".
func (f *FS) readDir(dir *Inode) ([]fs.DirEntry, error) {
	return fstree.List[uint64](f.tree(), f.entries(dir), maxDirEntries, f.tooMany(dir))
}
