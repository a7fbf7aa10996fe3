package ext4

import (
	"encoding/binary"
	"io/fs"
	"time"

	"github.com/qimg/qimg/internal/unixmode"
)

// Well-known inode numbers.
const (
	rootIno = 2
)

// Inode flags the reader acts on.
const (
	FlagIndex      = 0x1000     // directory has an htree index
	FlagHugeFile   = 0x40000    // i_blocks counts file system blocks
	FlagExtents    = 0x80000    // i_block holds an extent tree
	FlagEAInode    = 0x200000   // inode holds an extended attribute value
	FlagInlineData = 0x10000000 // data lives in i_block and system.data
	FlagEncrypt    = 0x800      // contents and names are encrypted
)

// File types of the mode's high bits.
const (
	sIFMT   = 0xF000
	sIFSOCK = 0xC000
	sIFLNK  = 0xA000
	sIFREG  = 0x8000
	sIFBLK  = 0x6000
	sIFDIR  = 0x4000
	sIFCHR  = 0x2000
	sIFIFO  = 0x1000
)

// Inode is an ext2/3/4 inode as stored, returned by FileInfo.Sys.
type Inode struct {
	Ino        uint32
	Mode       uint16 // file type and permission bits as on disk (S_IFREG|0644)
	UID, GID   uint32
	Size       uint64
	Links      uint16
	Flags      uint32 // EXT4_*_FL; see the Flag constants
	Generation uint32
	// Blocks is the space used in 512-byte units (i_blocks, scaled when
	// the huge_file flag counts file system blocks).
	Blocks uint64
	// Times carry nanoseconds and the dates past 2038 of large inodes;
	// Crtime is the zero Time when the inode has no room for it.
	Atime, Mtime, Ctime, Crtime time.Time
	Dtime                       uint32
	FileACL                     uint64 // block of the external xattrs, or 0
	ExtraIsize                  uint16

	block [60]byte // i_block: block map, extent root, inline data or link
	raw   []byte   // the whole on-disk inode, for in-inode xattrs
}

// IsDir, IsSymlink and IsRegular tell the file type.
func (i *Inode) IsDir() bool     { return i.Mode&sIFMT == sIFDIR }
func (i *Inode) IsSymlink() bool { return i.Mode&sIFMT == sIFLNK }
func (i *Inode) IsRegular() bool { return i.Mode&sIFMT == sIFREG }

// Rdev returns the device number of a character or block device inode,
// decoding both the old 8:8 and the new 12:20 encodings.
func (i *Inode) Rdev() (major, minor uint32) {
	le := binary.LittleEndian
	if old := le.Uint32(i.block[0:]); old != 0 {
		return (old >> 8) & 0xff, old & 0xff
	}
	n := le.Uint32(i.block[4:])
	return (n & 0xfff00) >> 8, (n & 0xff) | ((n >> 12) & 0xfff00)
}

// FileMode converts the on-disk mode to an fs.FileMode.
func (i *Inode) FileMode() fs.FileMode { return unixmode.ToFileMode(uint32(i.Mode)) }

// inode returns inode ino, from the cache or the disk. Each caller gets
// its own copy (callers see it through FileInfo.Sys and may change it).
func (f *FS) inode(ino uint32) (*Inode, error) {
	in, err := f.inodes.Load(ino, f.readInode)
	if err != nil {
		return nil, err
	}
	c := *in
	return &c, nil
}

// readInode reads inode ino, checking that it exists, is in use and (with
// metadata_csum) that its checksum matches.
func (f *FS) readInode(ino uint32) (*Inode, error) {
	s := f.sb
	if ino == 0 || ino > s.inodesCount {
		return nil, f.corrupt("inode %d of %d", ino, s.inodesCount)
	}
	g, idx := (ino-1)/s.inodesPerGroup, (ino-1)%s.inodesPerGroup
	gr, err := f.group(g)
	if err != nil {
		return nil, err
	}
	// Inodes of a group never initialised, or past its high-water mark,
	// read as zeros whatever the disk holds: they are free.
	if s.groupCsum() && (gr.flags&bgInodeUninit != 0 || idx >= s.inodesPerGroup-min(gr.itableUnused, s.inodesPerGroup)) {
		return nil, f.corrupt("inode %d is not in use (uninitialised)", ino)
	}
	raw := make([]byte, s.inodeSize)
	if err := f.readAt(raw, int64(gr.inodeTable)*s.blockSize+int64(idx)*int64(s.inodeSize)); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	in := &Inode{
		Ino:        ino,
		Mode:       le.Uint16(raw[0x0:]),
		UID:        uint32(le.Uint16(raw[0x2:])) | uint32(le.Uint16(raw[0x78:]))<<16,
		GID:        uint32(le.Uint16(raw[0x18:])) | uint32(le.Uint16(raw[0x7A:]))<<16,
		Size:       uint64(le.Uint32(raw[0x4:])) | uint64(le.Uint32(raw[0x6C:]))<<32,
		Dtime:      le.Uint32(raw[0x14:]),
		Links:      le.Uint16(raw[0x1A:]),
		Flags:      le.Uint32(raw[0x20:]),
		Generation: le.Uint32(raw[0x64:]),
		FileACL:    uint64(le.Uint32(raw[0x68:])) | uint64(le.Uint16(raw[0x76:]))<<32,
		raw:        raw,
	}
	copy(in.block[:], raw[0x28:0x64])
	blocks := uint64(le.Uint32(raw[0x1C:]))
	if s.hasRO(roCompatHugeFile) {
		blocks |= uint64(le.Uint16(raw[0x74:])) << 32
		if in.Flags&FlagHugeFile != 0 {
			blocks *= uint64(s.blockSize / 512)
		}
	}
	in.Blocks = blocks
	if s.inodeSize > 128 {
		in.ExtraIsize = le.Uint16(raw[0x80:])
		if in.ExtraIsize&3 != 0 || 128+uint32(in.ExtraIsize) > s.inodeSize {
			return nil, f.corrupt("inode %d extra size %d", ino, in.ExtraIsize)
		}
	}
	if in.Mode == 0 || in.Links == 0 && in.Dtime != 0 {
		return nil, f.corrupt("inode %d is not in use", ino)
	}
	if s.metadataCsum() {
		if err := f.checkInodeCsum(in); err != nil {
			return nil, err
		}
	}
	// fits reports whether a field of the large inode at off..off+n lies
	// within i_extra_isize and so holds data.
	fits := func(off, n uint32) bool { return off+n <= 128+uint32(in.ExtraIsize) }
	ts := func(secOff, extraOff uint32) time.Time {
		sec := int64(int32(le.Uint32(raw[secOff:])))
		var nsec int64
		if fits(extraOff, 4) {
			extra := le.Uint32(raw[extraOff:])
			sec += int64(extra&3) << 32 // epoch bits extend past 2038
			nsec = int64(extra >> 2)
			if nsec > 999999999 {
				nsec = 0
			}
		}
		return time.Unix(sec, nsec)
	}
	in.Atime = ts(0x8, 0x8C)
	in.Ctime = ts(0xC, 0x84)
	in.Mtime = ts(0x10, 0x88)
	if fits(0x90, 4) {
		in.Crtime = ts(0x90, 0x94)
	}
	return in, nil
}

// checkInodeCsum verifies an inode's metadata_csum.
func (f *FS) checkInodeCsum(in *Inode) error {
	le := binary.LittleEndian
	got, hi := f.inodeCsum(in)
	want := uint32(le.Uint16(in.raw[0x7C:]))
	if hi {
		want |= uint32(le.Uint16(in.raw[0x82:])) << 16
	}
	if got != want {
		return f.corrupt("inode %d checksum 0x%x, computed 0x%x", in.Ino, want, got)
	}
	return nil
}

// inodeCsum computes an inode's metadata_csum: CRC32c of the inode
// number, generation and the whole on-disk inode with the checksum fields
// zeroed; only the low 16 bits are kept when the inode has no room for
// the high ones (hi false).
func (f *FS) inodeCsum(in *Inode) (sum uint32, hi bool) {
	raw := in.raw
	hi = len(raw) > 128 && in.ExtraIsize >= 4 // i_checksum_hi at 0x82
	got := crc32c(f.inodeSeed(in), raw[:0x7C])
	got = crc32c(got, []byte{0, 0})
	if hi {
		got = crc32c(got, raw[0x7E:0x82])
		got = crc32c(got, []byte{0, 0})
		got = crc32c(got, raw[0x84:])
	} else {
		got = crc32c(got, raw[0x7E:])
		got &= 0xFFFF
	}
	return got, hi
}

// inodeSeed is the per-inode seed of inode, extent and directory block
// checksums: the file system seed continued with the inode number and
// generation.
func (f *FS) inodeSeed(in *Inode) uint32 {
	var b [8]byte
	binary.LittleEndian.PutUint32(b[0:], in.Ino)
	binary.LittleEndian.PutUint32(b[4:], in.Generation)
	return crc32c(f.sb.csumSeed, b[:])
}
