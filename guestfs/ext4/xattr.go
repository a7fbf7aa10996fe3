package ext4

import (
	"encoding/binary"
	"fmt"
)

const (
	xattrMagic = 0xEA020000
	// maxXattrValue is Linux's XATTR_SIZE_MAX: no value is longer, so
	// a value in its own inode (ea_inode) is read up to this and no more.
	maxXattrValue = 65536
)

// Xattr is one extended attribute, named with its namespace prefix.
type Xattr struct {
	Name  string
	Value []byte
}

// xattrPrefixes are the name prefixes of the on-disk name indexes. The
// POSIX ACLs are whole names (their entries have an empty suffix); their
// values are kept in ext4's compact ACL encoding, returned as stored.
var xattrPrefixes = map[uint8]string{
	1: "user.",
	2: "system.posix_acl_access",
	3: "system.posix_acl_default",
	4: "trusted.",
	6: "security.",
	7: "system.",
	8: "system.richacl",
}

// Xattrs lists the extended attributes of the named file, those in the
// inode first then those in its attribute block, in on-disk order. A
// final symbolic link is not followed (links have attributes of their
// own, as lgetxattr sees). The system.data attribute of inline_data
// files is listed as debugfs lists it.
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

// xattrs reads all attributes of an inode.
func (f *FS) xattrs(in *Inode) ([]Xattr, error) {
	var out []Xattr
	le := binary.LittleEndian
	if extra := in.raw[min(len(in.raw), 128+int(in.ExtraIsize)):]; len(extra) >= 4 && le.Uint32(extra) == xattrMagic {
		// In the inode, value offsets count from the first entry.
		xs, err := f.parseXattrs(in, extra[4:], extra[4:], "in inode")
		if err != nil {
			return nil, err
		}
		out = xs
	}
	if in.FileACL != 0 {
		b, err := f.readBlock(in.FileACL)
		if err != nil {
			return nil, err
		}
		if le.Uint32(b) != xattrMagic || le.Uint32(b[8:]) != 1 {
			return nil, f.corrupt("inode %d attribute block %d: bad header", in.Ino, in.FileACL)
		}
		if f.sb.metadataCsum() {
			var nr [8]byte
			le.PutUint64(nr[:], in.FileACL)
			c := crc32c(f.sb.csumSeed, nr[:])
			c = crc32c(c, b[:0x10])
			c = crc32c(c, []byte{0, 0, 0, 0})
			c = crc32c(c, b[0x14:])
			if want := le.Uint32(b[0x10:]); c != want {
				return nil, f.corrupt("attribute block %d checksum 0x%08x, computed 0x%08x", in.FileACL, want, c)
			}
		}
		// In a block, value offsets count from the block's start.
		xs, err := f.parseXattrs(in, b[32:], b, fmt.Sprintf("in block %d", in.FileACL))
		if err != nil {
			return nil, err
		}
		out = append(out, xs...)
	}
	return out, nil
}

// parseXattrs decodes the entries in ents, whose values lie in base,
// up to the four zero bytes that end the list.
func (f *FS) parseXattrs(in *Inode, ents, base []byte, where string) ([]Xattr, error) {
	le := binary.LittleEndian
	var out []Xattr
	for off := 0; ; {
		if len(ents)-off < 4 {
			return nil, f.corrupt("inode %d attributes %s: no end marker", in.Ino, where)
		}
		if le.Uint32(ents[off:]) == 0 {
			return out, nil
		}
		if len(ents)-off < 16 {
			return nil, f.corrupt("inode %d attributes %s: entry cut short", in.Ino, where)
		}
		e := ents[off:]
		nameLen, idx := int(e[0]), e[1]
		valOff, valInum, valSize := int(le.Uint16(e[2:])), le.Uint32(e[4:]), le.Uint32(e[8:])
		if 16+nameLen > len(e) {
			return nil, f.corrupt("inode %d attributes %s: name past the end", in.Ino, where)
		}
		name := xattrPrefixes[idx] + string(e[16:16+nameLen])
		var val []byte
		switch {
		case valInum != 0:
			if !f.sb.has(incompatEAInode) || valSize > maxXattrValue {
				return nil, f.corrupt("inode %d attribute %q: value in inode %d", in.Ino, name, valInum)
			}
			v, err := f.eaInodeValue(valInum, valSize)
			if err != nil {
				return nil, err
			}
			val = v
		case valOff > len(base) || uint64(valSize) > uint64(len(base)-valOff):
			return nil, f.corrupt("inode %d attribute %q: value past the end", in.Ino, name)
		default:
			val = append([]byte(nil), base[valOff:valOff+int(valSize)]...)
		}
		out = append(out, Xattr{Name: name, Value: val})
		off += (16 + nameLen + 3) &^ 3
	}
}

// eaInodeValue reads an attribute value stored as the data of its own
// inode (the ea_inode feature).
func (f *FS) eaInodeValue(ino, size uint32) ([]byte, error) {
	vin, err := f.inode(ino)
	if err != nil {
		return nil, err
	}
	if vin.Flags&FlagEAInode == 0 || vin.Size != uint64(size) {
		return nil, f.corrupt("inode %d does not hold an attribute value of %d bytes", ino, size)
	}
	val := make([]byte, size)
	if err := f.readData(vin, val, 0); err != nil {
		return nil, err
	}
	return val, nil
}

// inlineData returns the data of an inline_data inode: i_block followed
// by the value of its system.data attribute. A file's data is cut to its
// size; a directory's keeps all of i_block.
func (f *FS) inlineData(in *Inode) ([]byte, error) {
	xs, err := f.xattrs(in)
	if err != nil {
		return nil, err
	}
	data := append([]byte(nil), in.block[:]...)
	for _, x := range xs {
		if x.Name == "system.data" {
			data = append(data, x.Value...)
			break
		}
	}
	if in.IsDir() {
		return data, nil
	}
	if in.Size > uint64(len(data)) {
		return nil, f.corrupt("inline inode %d of %d bytes holds %d", in.Ino, in.Size, len(data))
	}
	return data[:in.Size], nil
}
