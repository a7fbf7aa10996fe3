package xfs

import (
	"bytes"
	"encoding/binary"
)

// Attribute fork structures.
const (
	attrLeafMagic   = 0xfbee
	attr3LeafMagic  = 0x3bee
	daNodeMagic     = 0xfebe
	da3NodeMagic    = 0x3ebe
	attrRemoteMagic = 0x5841524d // "XARM"
	attrLeafHdrV4   = 32
	attrLeafHdrV5   = 80
	daNodeHdrV4     = 16
	daNodeHdrV5     = 64
	daCRCOff        = 12
	daMaxDepth      = 5 // XFS_DA_NODE_MAXDEPTH
	// maxXattrValue is Linux's XATTR_SIZE_MAX: no value is longer.
	maxXattrValue = 65536
	// maxAttrLeaves bounds the leaf blocks of one inode's attributes
	// (a real one needs a handful).
	maxAttrLeaves = 1 << 16
)

// Attribute entry flags.
const (
	attrLocal      = 0x1
	attrRoot       = 0x2 // trusted.
	attrSecure     = 0x4 // security.
	attrIncomplete = 0x80
)

// Xattr is one extended attribute, named with its namespace prefix.
type Xattr struct {
	Name  string
	Value []byte
}

// Xattrs lists the extended attributes of the named file in on-disk
// order, named user., trusted. or security. as Linux names them (POSIX
// ACLs are trusted.SGI_ACL_FILE and trusted.SGI_ACL_DEFAULT, values in
// XFS's on-disk encoding). A final symbolic link is not followed.
func (f *FS) Xattrs(name string) ([]Xattr, error) {
	in, err := f.lookup("xattrs", name, false)
	if err != nil {
		return nil, err
	}
	xs, err := f.xattrs(in)
	if err != nil {
		return nil, pathErr("xattrs", name, err)
	}
	return xs, nil
}

// prefix names an attribute's namespace from its flags.
func prefix(flags uint8) string {
	switch {
	case flags&attrRoot != 0:
		return "trusted."
	case flags&attrSecure != 0:
		return "security."
	}
	return "user."
}

// xattrs reads all attributes of an inode.
func (f *FS) xattrs(in *Inode) ([]Xattr, error) {
	if in.attrFork == nil {
		return nil, nil
	}
	switch in.aformat {
	case fmtLocal:
		return f.shortformAttrs(in)
	case fmtExtents, fmtBtree:
		if in.anextents == 0 {
			return nil, nil
		}
		exts, err := f.forkExtents(in, true)
		if err != nil {
			return nil, err
		}
		return f.leafAttrs(in, exts)
	}
	return nil, f.corrupt("inode %d: attribute fork format %d", in.Ino, in.aformat)
}

// shortformAttrs reads attributes kept in the inode: a total size and a
// count, then entries of name length, value length, flags, name, value.
func (f *FS) shortformAttrs(in *Inode) ([]Xattr, error) {
	b := in.attrFork
	if len(b) < 4 {
		return nil, f.corrupt("inode %d: short form attributes cut short", in.Ino)
	}
	total, count := int(binary.BigEndian.Uint16(b)), int(b[2])
	if total < 4 || total > len(b) {
		return nil, f.corrupt("inode %d: short form attributes of %d bytes in %d", in.Ino, total, len(b))
	}
	b = b[:total]
	var out []Xattr
	off := 4
	for i := 0; i < count; i++ {
		if off+3 > len(b) {
			return nil, f.corrupt("inode %d: short form attribute %d cut short", in.Ino, i)
		}
		nlen, vlen, flags := int(b[off]), int(b[off+1]), b[off+2]
		end := off + 3 + nlen + vlen
		if nlen == 0 || end > len(b) {
			return nil, f.corrupt("inode %d: short form attribute %d of %d+%d bytes", in.Ino, i, nlen, vlen)
		}
		if flags&attrIncomplete == 0 {
			name := b[off+3 : off+3+nlen]
			out = append(out, Xattr{Name: prefix(flags) + string(name), Value: bytes.Clone(b[off+3+nlen : end])})
		}
		off = end
	}
	return out, nil
}

// leafAttrs reads attributes kept in blocks: block 0 of the fork is a
// leaf, or the root of a dabtree whose leftmost path (levels falling by
// one a step) leads to the first leaf; leaves are chained by forward
// pointers, followed until the end, each block at most once.
func (f *FS) leafAttrs(in *Inode, exts []extent) ([]Xattr, error) {
	fb, level := uint64(0), -1
	for depth := 0; ; depth++ {
		b, blk, err := f.attrBlock(in, exts, fb)
		if err != nil {
			return nil, err
		}
		m := binary.BigEndian.Uint16(b[8:])
		if m == attrLeafMagic || m == attr3LeafMagic {
			if level > 0 {
				return nil, f.corrupt("inode %d: attribute leaf at node level %d", in.Ino, level)
			}
			break
		}
		child, l, err := f.attrNode(in, b, blk, m)
		if err != nil {
			return nil, err
		}
		if depth >= daMaxDepth || (level >= 0 && l != level) || l < 1 {
			return nil, f.corrupt("inode %d: attribute node at level %d, depth %d", in.Ino, l, depth)
		}
		fb, level = child, l-1
	}
	var out []Xattr
	seen := map[uint64]bool{}
	for {
		if seen[fb] || len(seen) > maxAttrLeaves {
			return nil, f.corrupt("inode %d: attribute leaves loop at block %d", in.Ino, fb)
		}
		seen[fb] = true
		b, blk, err := f.attrBlock(in, exts, fb)
		if err != nil {
			return nil, err
		}
		var next uint64
		if out, next, err = f.parseAttrLeaf(in, exts, b, blk, out); err != nil {
			return nil, err
		}
		if next == 0 {
			return out, nil
		}
		fb = next
	}
}

// attrBlock reads attribute fork block fb.
func (f *FS) attrBlock(in *Inode, exts []extent, fb uint64) ([]byte, uint64, error) {
	i, ok := findExtent(exts, fb)
	if !ok || exts[i].unwritten {
		return nil, 0, f.corrupt("inode %d: attribute block %d not mapped", in.Ino, fb)
	}
	blk := exts[i].blk + fb - exts[i].off
	b, err := f.readBlocks(blk, 1)
	return b, blk, err
}

// attrNode checks a dabtree node and returns the block of its first
// child and its level.
func (f *FS) attrNode(in *Inode, b []byte, blk uint64, magic uint16) (uint64, int, error) {
	be := binary.BigEndian
	want, hdr := uint16(daNodeMagic), daNodeHdrV4
	if f.sb.crc() {
		want, hdr = da3NodeMagic, daNodeHdrV5
	}
	if magic != want {
		return 0, 0, f.corrupt("inode %d: attribute block %d has magic 0x%04x", in.Ino, blk, magic)
	}
	if f.sb.crc() {
		if err := f.checkV5Block(b, daCRCOff, 16, 32, 48, blk, in.Ino, "attribute node"); err != nil {
			return 0, 0, err
		}
	}
	count, level := int(be.Uint16(b[hdr-4:])), int(be.Uint16(b[hdr-2:]))
	if f.sb.crc() {
		count, level = int(be.Uint16(b[56:])), int(be.Uint16(b[58:]))
	}
	if count < 1 || count > (len(b)-hdr)/8 {
		return 0, 0, f.corrupt("inode %d: attribute node %d with %d entries", in.Ino, blk, count)
	}
	return uint64(be.Uint32(b[hdr+4:])), level, nil
}

// parseAttrLeaf appends the attributes of one leaf block to out and
// returns the next leaf's block (0 at the end). Entries give the offset
// of a local name and value, or of a name and the place of a value kept
// in blocks of its own.
func (f *FS) parseAttrLeaf(in *Inode, exts []extent, b []byte, blk uint64, out []Xattr) ([]Xattr, uint64, error) {
	be := binary.BigEndian
	want, hdr, countOff := uint16(attrLeafMagic), attrLeafHdrV4, 12
	if f.sb.crc() {
		want, hdr, countOff = attr3LeafMagic, attrLeafHdrV5, 56
	}
	if m := be.Uint16(b[8:]); m != want {
		return nil, 0, f.corrupt("inode %d: attribute leaf %d has magic 0x%04x", in.Ino, blk, m)
	}
	if f.sb.crc() {
		if err := f.checkV5Block(b, daCRCOff, 16, 32, 48, blk, in.Ino, "attribute leaf"); err != nil {
			return nil, 0, err
		}
	}
	count := int(be.Uint16(b[countOff:]))
	if hdr+count*8 > len(b) {
		return nil, 0, f.corrupt("inode %d: attribute leaf %d with %d entries", in.Ino, blk, count)
	}
	for i := range count {
		e := b[hdr+i*8:]
		idx, flags := int(be.Uint16(e[4:])), e[6]
		if flags&attrIncomplete != 0 {
			continue
		}
		x, err := f.leafEntry(in, exts, b, idx, flags)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, x)
	}
	return out, uint64(be.Uint32(b)), nil
}

// leafEntry decodes the name and value at offset idx of a leaf block.
func (f *FS) leafEntry(in *Inode, exts []extent, b []byte, idx int, flags uint8) (Xattr, error) {
	be := binary.BigEndian
	bad := func() (Xattr, error) {
		return Xattr{}, f.corrupt("inode %d: attribute entry at %d out of its block", in.Ino, idx)
	}
	if flags&attrLocal != 0 {
		if idx+3 > len(b) {
			return bad()
		}
		vlen, nlen := int(be.Uint16(b[idx:])), int(b[idx+2])
		if nlen == 0 || idx+3+nlen+vlen > len(b) {
			return bad()
		}
		name := b[idx+3 : idx+3+nlen]
		return Xattr{Name: prefix(flags) + string(name), Value: bytes.Clone(b[idx+3+nlen : idx+3+nlen+vlen])}, nil
	}
	if idx+9 > len(b) {
		return bad()
	}
	vblk, vlen, nlen := uint64(be.Uint32(b[idx:])), uint64(be.Uint32(b[idx+4:])), int(b[idx+8])
	if nlen == 0 || idx+9+nlen > len(b) {
		return bad()
	}
	if vlen > maxXattrValue {
		return Xattr{}, f.corrupt("inode %d: attribute value of %d bytes", in.Ino, vlen)
	}
	name := prefix(flags) + string(b[idx+9:idx+9+nlen])
	var value []byte
	if vlen > 0 {
		var err error
		if value, err = f.remoteValue(in, exts, vblk, vlen, attrRemoteMagic, "attribute value"); err != nil {
			return Xattr{}, err
		}
	}
	return Xattr{Name: name, Value: value}, nil
}
