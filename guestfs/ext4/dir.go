package ext4

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"

	"github.com/qimg/qimg/guestfs/internal/fstree"

	"github.com/qimg/qimg/image"
)

// maxDirEntries bounds one directory listing, so a hostile directory
// whose blocks all point at one block full of entries cannot exhaust
// memory. Real directories hold a few million entries at the very most.
const maxDirEntries = 1 << 22

// walkDir calls fn for every live entry of directory dir, "." and ".."
// included, in on-disk order, until fn returns false. It scans every
// block linearly: an htree directory's leaves are ordinary directory
// blocks, and its root and inner nodes hide behind entries of inode 0
// (the root's ".." spans the index, a node's single fake entry spans the
// block), which the scan skips as it skips deleted entries.
func (f *FS) walkDir(dir *Inode, fn func(name []byte, ino uint32, ftype uint8) bool) error {
	if dir.Flags&FlagInlineData != 0 {
		data, err := f.inlineData(dir)
		if err != nil {
			return err
		}
		if len(data) < 4 {
			return f.corrupt("inline directory %d too short", dir.Ino)
		}
		// An inline directory stores its parent's number instead of "."
		// and "..", then entries in the rest of i_block, then more in
		// the system.data attribute, each area on its own.
		parent := binary.LittleEndian.Uint32(data)
		if !fn([]byte("."), dir.Ino, 2) || !fn([]byte(".."), parent, 2) {
			return nil
		}
		areas := [][]byte{data[4:min(len(data), 60)]}
		if len(data) > 60 {
			areas = append(areas, data[60:])
		}
		for _, a := range areas {
			if _, err := f.parseDirBlock(dir, a, fn); err != nil {
				return err
			}
		}
		return nil
	}
	bs := uint64(f.sb.blockSize)
	nblocks := (dir.Size + bs - 1) / bs
	// A directory cannot have more blocks than the file system.
	if nblocks > f.sb.blocksCount || nblocks > 1<<32 {
		return f.corrupt("directory %d of %d bytes", dir.Ino, dir.Size)
	}
	for l := uint64(0); l < nblocks; {
		phys, n, err := f.mapBlock(dir, uint32(l))
		if err != nil {
			return err
		}
		if phys == 0 {
			l += n // a hole: nothing there
			continue
		}
		for i := uint64(0); i < n && l < nblocks; i, l = i+1, l+1 {
			b, err := f.readBlock(phys + i)
			if err != nil {
				return err
			}
			if f.sb.metadataCsum() {
				if err := f.checkDirTail(dir, b, l); err != nil {
					return err
				}
			}
			more, err := f.parseDirBlock(dir, b, fn)
			if err != nil || !more {
				return err
			}
		}
	}
	return nil
}

// checkDirTail verifies the checksum a leaf block keeps in a fake last
// entry (inode 0, rec_len 12, file type 0xDE). Index blocks of an htree
// keep theirs elsewhere and are not checked here.
func (f *FS) checkDirTail(dir *Inode, b []byte, lblk uint64) error {
	le := binary.LittleEndian
	n := len(b)
	if dir.Flags&FlagIndex != 0 && (lblk == 0 || le.Uint32(b) == 0 && int64(recLen(le.Uint16(b[4:]), f.sb.blockSize)) == f.sb.blockSize) {
		return nil
	}
	t := b[n-12:]
	if le.Uint32(t) != 0 || le.Uint16(t[4:]) != 12 || t[6] != 0 || t[7] != 0xDE {
		return f.corrupt("directory %d block %d has no checksum tail", dir.Ino, lblk)
	}
	want := le.Uint32(t[8:])
	if got := crc32c(f.inodeSeed(dir), b[:n-12]); got != want {
		return f.corrupt("directory %d block %d checksum 0x%08x, computed 0x%08x", dir.Ino, lblk, want, got)
	}
	return nil
}

// recLen decodes a rec_len field: blocks of 64 KiB need 17 bits, so the
// low two bits (always zero otherwise) carry the top ones.
func recLen(v uint16, blockSize int64) int {
	if blockSize < 65536 {
		return int(v)
	}
	if v == 65535 || v == 0 {
		return int(blockSize)
	}
	return int(v&65532) | int(v&3)<<16
}

// parseDirBlock calls fn for the live entries of one directory block (or
// inline area), checking each record lies inside it. It reports whether
// fn wants more.
func (f *FS) parseDirBlock(dir *Inode, b []byte, fn func([]byte, uint32, uint8) bool) (bool, error) {
	le := binary.LittleEndian
	filetype := f.sb.has(incompatFiletype)
	for off := 0; off < len(b); {
		if len(b)-off < 8 {
			return false, f.corrupt("directory %d: entry at %d cut short", dir.Ino, off)
		}
		e := b[off:]
		ino := le.Uint32(e)
		rl := recLen(le.Uint16(e[4:]), f.sb.blockSize)
		nameLen := int(e[6])
		ftype := e[7]
		if !filetype {
			nameLen |= int(e[7]) << 8
			ftype = 0
		}
		if rl < 8 || rl%4 != 0 || rl > len(e) || nameLen+8 > rl {
			return false, f.corrupt("directory %d: entry at %d has record length %d for a name of %d", dir.Ino, off, rl, nameLen)
		}
		off += rl
		if ino == 0 {
			continue // deleted, or a checksum tail or htree node
		}
		if ino > f.sb.inodesCount {
			return false, f.corrupt("directory %d: entry names inode %d of %d", dir.Ino, ino, f.sb.inodesCount)
		}
		name := e[8 : 8+nameLen]
		if len(name) == 0 || bytes.IndexByte(name, '/') >= 0 || bytes.IndexByte(name, 0) >= 0 {
			return false, f.corrupt("directory %d: entry name %q", dir.Ino, name)
		}
		if !fn(name, ino, ftype) {
			return false, nil
		}
	}
	return true, nil
}

// dirCacheEntries bounds the names the lookup cache holds (see
// fstree.Dirs). Lookups scan whole directories: htree indexes are not
// used.
const dirCacheEntries = 1 << 20

// findEntry looks name up in directory dir.
func (f *FS) findEntry(dir *Inode, name string) (uint32, error) {
	return f.dirs.Lookup(dir.Ino, name, f.entries(dir), f.tooMany(dir))
}

// entries walks directory dir for fstree.
func (f *FS) entries(dir *Inode) fstree.Walk[uint32] {
	return func(fn func(name []byte, ino uint32, ftype uint8) bool) error {
		return f.walkDir(dir, fn)
	}
}

// tooMany reports directory dir holding more than max entries.
func (f *FS) tooMany(dir *Inode) func(max int) error {
	return func(max int) error {
		return image.FileErrorf(f.name, "ext4: directory %d has more than %d entries: %w", dir.Ino, max, image.ErrLimit)
	}
}

// readDir lists a directory sorted by name, without "." and "..".
func (f *FS) readDir(dir *Inode) ([]fs.DirEntry, error) {
	if !dir.IsDir() {
		return nil, fmt.Errorf("not a directory: %w", fs.ErrInvalid)
	}
	return fstree.List[uint32](f.tree(), f.entries(dir), maxDirEntries, f.tooMany(dir))
}
