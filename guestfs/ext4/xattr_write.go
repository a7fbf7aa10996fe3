package ext4

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/qimg/qimg/image"
)

// sealXattrBlock writes an attribute block's metadata_csum: CRC32c of
// its block number and contents with the checksum field zeroed.
func (f *FS) sealXattrBlock(b []byte, blk uint64) {
	if !f.sb.metadataCsum() {
		return
	}
	le := binary.LittleEndian
	var nr [8]byte
	le.PutUint64(nr[:], blk)
	le.PutUint32(b[0x10:], 0)
	le.PutUint32(b[0x10:], crc32c(crc32c(f.sb.csumSeed, nr[:]), b))
}

// dropXattrBlock lets go of an inode's attribute block: one reference
// less, freed with the last.
func (f *FS) dropXattrBlock(in *Inode) error {
	blk := in.FileACL
	in.FileACL = 0
	b, err := f.metaBlock(blk)
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	if le.Uint32(b) != xattrMagic {
		return f.corrupt("inode %d attribute block %d: bad header", in.Ino, blk)
	}
	refs := le.Uint32(b[4:])
	if refs > 1 {
		le.PutUint32(b[4:], refs-1)
		f.sealXattrBlock(b, blk)
		return nil
	}
	return f.freeBlocks(blk, 1)
}

// xattrName splits an attribute name into its on-disk index and suffix.
func xattrName(name string) (uint8, string, bool) {
	best, bestLen := uint8(0), -1
	for idx, p := range xattrPrefixes {
		exact := idx == 2 || idx == 3 || idx == 8 // whole names
		if exact && name == p || !exact && len(name) > len(p) && name[:len(p)] == p {
			if len(p) > bestLen {
				best, bestLen = idx, len(p)
			}
		}
	}
	if bestLen < 0 || len(name)-bestLen > 255 {
		return 0, "", false
	}
	return best, name[bestLen:], true
}

// xattrEntry is an attribute ready to be placed.
type xattrEntry struct {
	idx   uint8
	name  string
	value []byte
}

func (e xattrEntry) entrySize() int { return (16 + len(e.name) + 3) &^ 3 }
func (e xattrEntry) valueSize() int { return (len(e.value) + 3) &^ 3 }

// xattrHash is an entry's hash: its name then its value in 32-bit
// little-endian words, as e2fsprogs and the kernel compute it.
func xattrHash(name string, value []byte) uint32 {
	var h uint32
	for i := 0; i < len(name); i++ {
		h = h<<5 ^ h>>27 ^ uint32(name[i])
	}
	padded := make([]byte, (len(value)+3)&^3)
	copy(padded, value)
	for i := 0; i < len(padded); i += 4 {
		h = h<<16 ^ h>>16 ^ binary.LittleEndian.Uint32(padded[i:])
	}
	return h
}

// packXattrs writes entries into area (entries from the front, values
// from the back, value offsets counted from base) and reports whether
// they fit. The list ends with four zero bytes.
func packXattrs(area []byte, base int, ents []xattrEntry) ([]uint32, bool) {
	le := binary.LittleEndian
	need := 4
	for _, e := range ents {
		need += e.entrySize() + e.valueSize()
	}
	if need > len(area) {
		return nil, false
	}
	clear(area)
	off, vend := 0, len(area)
	var hashes []uint32
	for _, e := range ents {
		vend -= e.valueSize()
		copy(area[vend:], e.value)
		ent := area[off:]
		ent[0], ent[1] = byte(len(e.name)), e.idx
		le.PutUint16(ent[2:], uint16(vend+base))
		le.PutUint32(ent[8:], uint32(len(e.value)))
		h := xattrHash(e.name, e.value)
		le.PutUint32(ent[12:], h)
		hashes = append(hashes, h)
		copy(ent[16:], e.name)
		off += e.entrySize()
	}
	return hashes, true
}

// SetXattr sets the extended attribute attr (with its namespace prefix:
// user., trusted., security., system.) of the named file, not following
// a final symbolic link. Attributes go in the inode while they fit, the
// rest in an attribute block.
func (f *FS) SetXattr(name, attr string, value []byte) error {
	return f.editXattrs("setxattr", name, func(xs []Xattr) ([]Xattr, error) {
		for i := range xs {
			if xs[i].Name == attr {
				xs[i].Value = value
				return xs, nil
			}
		}
		return append(xs, Xattr{Name: attr, Value: value}), nil
	})
}

// RemoveXattr removes an extended attribute; a missing one is an error
// wrapping fs.ErrNotExist.
func (f *FS) RemoveXattr(name, attr string) error {
	return f.editXattrs("removexattr", name, func(xs []Xattr) ([]Xattr, error) {
		for i := range xs {
			if xs[i].Name == attr {
				return append(xs[:i], xs[i+1:]...), nil
			}
		}
		return nil, fmt.Errorf("no attribute %q: %w", attr, fs.ErrNotExist)
	})
}

func (f *FS) editXattrs(op, name string, change func([]Xattr) ([]Xattr, error)) (err error) {
	defer f.atomically()(&err)
	if err := f.writable(op, name); err != nil {
		return err
	}
	in, err := f.lookup(op, name, false)
	if err != nil {
		return err
	}
	in.raw = bytes.Clone(in.raw)
	if in.Flags&FlagInlineData != 0 {
		return pathErr(op, name, image.FileErrorf(f.name, "ext4: inode %d stores data inline; its attributes are not edited: %w", in.Ino, image.ErrUnsupported))
	}
	xs, err := f.xattrs(in)
	if err == nil {
		xs, err = change(xs)
	}
	if err == nil {
		err = f.storeXattrs(in, xs)
	}
	if err == nil {
		in.Ctime = time.Now()
		err = f.writeInode(in)
	}
	return pathErr2(op, name, err)
}

// storeXattrs lays attributes out anew: sorted as the kernel keeps
// them, in the inode while they fit, the rest in a block of this inode's
// own (a shared block loses one reference instead of changing).
func (f *FS) storeXattrs(in *Inode, xs []Xattr) error {
	var ents []xattrEntry
	for _, x := range xs {
		idx, suffix, ok := xattrName(x.Name)
		if !ok {
			return fmt.Errorf("attribute name %q: unknown namespace or too long: %w", x.Name, fs.ErrInvalid)
		}
		if len(x.Value) > maxXattrValue {
			return fmt.Errorf("attribute %q: value of %d bytes: %w", x.Name, len(x.Value), image.ErrLimit)
		}
		ents = append(ents, xattrEntry{idx, suffix, x.Value})
	}
	slices.SortFunc(ents, func(a, b xattrEntry) int {
		return cmp.Or(cmp.Compare(a.idx, b.idx), cmp.Compare(len(a.name), len(b.name)), strings.Compare(a.name, b.name))
	})
	le := binary.LittleEndian
	// In the inode: after the extra fields, a magic then the entries.
	split := 0
	if start := 128 + int(in.ExtraIsize); len(in.raw) > start+4 {
		area := in.raw[start+4:]
		for split = len(ents); split > 0; split-- {
			if _, ok := packXattrs(area, 0, ents[:split]); ok {
				break
			}
		}
		clear(in.raw[start:])
		if split > 0 {
			le.PutUint32(in.raw[start:], xattrMagic)
			packXattrs(area, 0, ents[:split])
		}
	}
	rest := ents[split:]
	perBlock := uint64(f.sb.blockSize / 512)
	if in.FileACL != 0 {
		if err := f.dropXattrBlock(in); err != nil {
			return err
		}
		in.Blocks -= min(in.Blocks, perBlock)
	}
	if len(rest) == 0 {
		return nil
	}
	spans, err := f.allocBlocks(f.groupFirst((in.Ino-1)/f.sb.inodesPerGroup), 1)
	if err != nil {
		return err
	}
	blk := spans[0].start
	b := f.newMetaBlock(blk)
	hashes, ok := packXattrs(b[32:], 32, rest)
	if !ok {
		return fmt.Errorf("attributes of %d bytes do not fit in the inode and one block: %w", len(rest), image.ErrLimit)
	}
	le.PutUint32(b[0:], xattrMagic)
	le.PutUint32(b[4:], 1) // references
	le.PutUint32(b[8:], 1) // blocks
	var h uint32
	for _, eh := range hashes {
		h = h<<16 ^ h>>16 ^ eh
	}
	le.PutUint32(b[12:], h)
	f.sealXattrBlock(b, blk)
	in.FileACL = blk
	in.Blocks += perBlock
	return nil
}
