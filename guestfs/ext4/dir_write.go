package ext4

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/qimg/qimg/image"
)

// direntSize is the space a directory entry with a name of n bytes needs.
func direntSize(n int) int { return (8 + n + 3) &^ 3 }

// encodeRecLen is recLen's inverse.
func encodeRecLen(n int, blockSize int64) uint16 {
	if blockSize < 65536 || n < 65536 {
		return uint16(n)
	}
	if int64(n) == blockSize {
		return 65535
	}
	return uint16(n&65532) | uint16(n>>16)
}

// fileType is the directory entry type of a mode.
func fileType(mode uint16) uint8 {
	switch mode & sIFMT {
	case sIFREG:
		return 1
	case sIFDIR:
		return 2
	case sIFCHR:
		return 3
	case sIFBLK:
		return 4
	case sIFIFO:
		return 5
	case sIFSOCK:
		return 6
	case sIFLNK:
		return 7
	}
	return 0
}

// putDirent writes an entry at b[0:] spanning recLen bytes.
func (f *FS) putDirent(b []byte, ino uint32, recLen int, name []byte, ftype uint8) {
	le := binary.LittleEndian
	le.PutUint32(b, ino)
	le.PutUint16(b[4:], encodeRecLen(recLen, f.sb.blockSize))
	if f.sb.has(incompatFiletype) {
		b[6], b[7] = byte(len(name)), ftype
	} else {
		le.PutUint16(b[6:], uint16(len(name)))
	}
	copy(b[8:], name)
}

// leafArea is how much of a leaf block holds entries: all of it, less
// the checksum tail with metadata_csum.
func (f *FS) leafArea() int {
	if f.sb.metadataCsum() {
		return int(f.sb.blockSize) - 12
	}
	return int(f.sb.blockSize)
}

// sealLeaf writes a leaf block's checksum tail.
func (f *FS) sealLeaf(dir *Inode, b []byte) {
	if !f.sb.metadataCsum() {
		return
	}
	le := binary.LittleEndian
	n := len(b)
	t := b[n-12:]
	clear(t)
	le.PutUint16(t[4:], 12)
	t[7] = 0xDE
	le.PutUint32(t[8:], crc32c(f.inodeSeed(dir), b[:n-12]))
}

// entryAt decodes the record at off: inode, record length, name.
func (f *FS) entryAt(b []byte, off int) (uint32, int, []byte) {
	le := binary.LittleEndian
	e := b[off:]
	n := int(e[6])
	if !f.sb.has(incompatFiletype) {
		n = int(le.Uint16(e[6:]))
	}
	return le.Uint32(e), recLen(le.Uint16(e[4:]), f.sb.blockSize), e[8 : 8+n]
}

// insertInLeaf adds an entry to a leaf block if a record has room for it
// (a deleted one, or the slack after a live one). The block's records
// were checked by the reader.
func (f *FS) insertInLeaf(b []byte, name []byte, ino uint32, ftype uint8) bool {
	need := direntSize(len(name))
	area := f.leafArea()
	for off := 0; off < area; {
		cur, rl, n := f.entryAt(b, off)
		if rl < 8 || off+rl > area {
			return false
		}
		used := 0
		if cur != 0 {
			used = direntSize(len(n))
		}
		if rl-used >= need {
			if cur != 0 {
				binary.LittleEndian.PutUint16(b[off+4:], encodeRecLen(used, f.sb.blockSize))
				off += used
				rl -= used
			}
			f.putDirent(b[off:], ino, rl, name, ftype)
			return true
		}
		off += rl
	}
	return false
}

// dirBlock is one block of a directory.
type dirBlock struct {
	lblk, pblk uint64
}

// dirBlocks lists a directory's blocks in logical order.
func (f *FS) dirBlocks(dir *Inode) ([]dirBlock, error) {
	l, err := f.readLayout(dir)
	if err != nil {
		return nil, err
	}
	var out []dirBlock
	for _, r := range l.runs {
		for i := range r.n {
			out = append(out, dirBlock{r.lblk + i, r.pblk + i})
		}
	}
	return out, nil
}

// checkName refuses names a directory entry cannot hold.
func (f *FS) checkName(name string) error {
	if len(name) == 0 || len(name) > 255 || name == "." || name == ".." || bytes.ContainsAny([]byte(name), "/\x00") {
		return fmt.Errorf("invalid name %q: %w", name, fs.ErrInvalid)
	}
	return nil
}

// addEntry links name to inode ino (of the given mode) in dir.
func (f *FS) addEntry(dir *Inode, name string, ino uint32, mode uint16, now time.Time) error {
	if err := f.editableDir(dir); err != nil {
		return err
	}
	ft := fileType(mode)
	var err error
	if dir.Flags&FlagIndex != 0 && f.sb.compat&compatDirIndex != 0 {
		err = f.htreeAdd(dir, []byte(name), ino, ft)
	} else {
		err = f.linearAdd(dir, []byte(name), ino, ft)
	}
	if err != nil {
		return err
	}
	f.cacheEntry(dir.Ino, name, ino)
	dir.Mtime, dir.Ctime = now, now
	return nil
}

// editableDir refuses directories whose layout the writer does not
// change: inline ones, and casefolded or encrypted names.
func (f *FS) editableDir(dir *Inode) error {
	const casefold = 0x40000000
	switch {
	case dir.Flags&FlagInlineData != 0:
		return image.FileErrorf(f.name, "ext4: directory %d is stored inline; editing inline_data directories is not supported: %w", dir.Ino, image.ErrUnsupported)
	case dir.Flags&(casefold|FlagEncrypt) != 0:
		return image.FileErrorf(f.name, "ext4: directory %d has casefolded or encrypted names, which qimg does not edit: %w", dir.Ino, image.ErrUnsupported)
	}
	return nil
}

func (f *FS) linearAdd(dir *Inode, name []byte, ino uint32, ft uint8) error {
	blocks, err := f.dirBlocks(dir)
	if err != nil {
		return err
	}
	for _, db := range blocks {
		b, err := f.metaBlock(db.pblk)
		if err != nil {
			return err
		}
		if f.insertInLeaf(b, name, ino, ft) {
			f.sealLeaf(dir, b)
			return nil
		}
	}
	b, err := f.appendDirBlock(dir)
	if err != nil {
		return err
	}
	f.putDirent(b, ino, f.leafArea(), name, ft)
	f.sealLeaf(dir, b)
	return nil
}

// appendDirBlock adds an empty leaf block at the end of dir and returns
// it (in the transaction).
func (f *FS) appendDirBlock(dir *Inode) ([]byte, error) {
	old, err := f.readLayout(dir)
	if err != nil {
		return nil, err
	}
	bs := uint64(f.sb.blockSize)
	lblk := (dir.Size + bs - 1) / bs
	spans, err := f.allocBlocks(f.goal(dir, old.runs), 1)
	if err != nil {
		return nil, err
	}
	p := spans[0].start
	runs := append(slices.Clone(old.runs), extent{lblk: lblk, pblk: p, n: 1})
	if err := f.setLayout(dir, old, runs); err != nil {
		return nil, err
	}
	dir.Size = (lblk + 1) * bs
	b := f.newMetaBlock(p)
	f.putDirent(b, 0, f.leafArea(), nil, 0)
	return b, nil
}

// removeEntry unlinks name from dir, returning the inode it named.
func (f *FS) removeEntry(dir *Inode, name string, now time.Time) error {
	if err := f.editableDir(dir); err != nil {
		return err
	}
	blocks, err := f.dirBlocks(dir)
	if err != nil {
		return err
	}
	for _, db := range blocks {
		b, err := f.readBlock(db.pblk)
		if err != nil {
			return err
		}
		off, prev := f.findInBlock(b, []byte(name))
		if off < 0 {
			continue
		}
		if b, err = f.metaBlock(db.pblk); err != nil {
			return err
		}
		_, rl, _ := f.entryAt(b, off)
		if prev >= 0 {
			_, prl, _ := f.entryAt(b, prev)
			binary.LittleEndian.PutUint16(b[prev+4:], encodeRecLen(prl+rl, f.sb.blockSize))
		} else {
			binary.LittleEndian.PutUint32(b[off:], 0)
		}
		f.sealLeaf(dir, b)
		f.cacheEntry(dir.Ino, name, 0)
		dir.Mtime, dir.Ctime = now, now
		return nil
	}
	return f.corrupt("directory %d lost its entry %q", dir.Ino, name)
}

// findInBlock finds a live entry named name in a leaf block: its offset
// and the offset of the record before it (-1 for the first), or -1.
func (f *FS) findInBlock(b []byte, name []byte) (int, int) {
	prev := -1
	for off := 0; off+8 <= len(b); {
		ino, rl, n := f.entryAt(b, off)
		if rl < 8 || off+rl > len(b) || off+8+len(n) > len(b) {
			return -1, -1
		}
		if ino != 0 && bytes.Equal(n, name) {
			return off, prev
		}
		prev = off
		off += rl
	}
	return -1, -1
}

// cacheEntry keeps the lookup cache in step with a change of dir: name
// now names ino (0: removed).
func (f *FS) cacheEntry(dir uint32, name string, ino uint32) {
	f.dirs.Changed(dir, name, ino, ino == 0)
}

// setDotDot points a directory's ".." at parent.
func (f *FS) setDotDot(dir *Inode, parent uint32) error {
	if err := f.editableDir(dir); err != nil {
		return err
	}
	p, _, err := f.mapBlock(dir, 0)
	if err != nil || p == 0 {
		return f.corrupt("directory %d has no first block", dir.Ino)
	}
	b, err := f.metaBlock(p)
	if err != nil {
		return err
	}
	_, rl, n := f.entryAt(b, 0)
	if string(n) != "." || rl+12 > len(b) {
		return f.corrupt("directory %d does not start with . and ..", dir.Ino)
	}
	if _, _, n2 := f.entryAt(b, rl); string(n2) != ".." {
		return f.corrupt("directory %d does not start with . and ..", dir.Ino)
	}
	binary.LittleEndian.PutUint32(b[rl:], parent)
	f.cacheEntry(dir.Ino, "..", parent)
	if dir.Flags&FlagIndex != 0 {
		return f.sealDx(dir, b, dxRootInfo+int(b[dxRootInfo+5]))
	}
	f.sealLeaf(dir, b)
	return nil
}
