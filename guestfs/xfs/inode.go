package xfs

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"time"

	"github.com/qimg/qimg/internal/unixmode"
)

const (
	inodeMagic   = 0x494e // "IN"
	inodeCRCOff  = 100
	coreSizeV2   = 100 // where the literal area starts on v1/v2 inodes
	coreSizeV3   = 176 // and on v3 inodes
	maxCachedIno = 1 << 14
)

// Fork formats (di_format, di_aformat).
const (
	fmtDev     = 0
	fmtLocal   = 1
	fmtExtents = 2
	fmtBtree   = 3
)

// di_flags and di_flags2 bits the reader acts on.
const (
	FlagRealtime = 0x1     // data lives on the realtime device
	Flag2Bigtime = 0x8     // timestamps are nanoseconds since 1901
	Flag2Nrext64 = 0x10    // 64-bit data and 32-bit attr extent counters
	bigtimeEpoch = 1 << 31 // seconds between 1901-12-13T20:45:52Z and 1970
	nsPerSec     = 1e9
	maxNlink     = 1 << 31 // a link count past this is corruption
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

// Inode is an XFS inode as stored, returned by FileInfo.Sys.
type Inode struct {
	Ino      uint64
	Mode     uint16 // file type and permission bits as on disk (S_IFREG|0644)
	Version  uint8  // 1, 2 or 3 (v5 file systems)
	UID, GID uint32
	Nlink    uint32
	ProjID   uint32
	Size     uint64
	// Blocks counts the file system blocks the inode owns, data and
	// attribute forks and btree blocks together (di_nblocks).
	Blocks     uint64
	Flags      uint16 // di_flags (XFS_DIFLAG_*)
	Flags2     uint64 // di_flags2 (XFS_DIFLAG2_*), v3 only
	Generation uint32
	// Times with nanoseconds; Crtime is the zero Time before v3 inodes.
	Atime, Mtime, Ctime, Crtime time.Time

	format    uint8 // data fork format
	aformat   uint8 // attribute fork format
	nextents  uint64
	anextents uint64
	dataFork  []byte // the data fork's part of the literal area
	attrFork  []byte // the attribute fork's, nil when there is none
}

// IsDir, IsSymlink and IsRegular tell the file type.
func (i *Inode) IsDir() bool     { return i.Mode&sIFMT == sIFDIR }
func (i *Inode) IsSymlink() bool { return i.Mode&sIFMT == sIFLNK }
func (i *Inode) IsRegular() bool { return i.Mode&sIFMT == sIFREG }

// Rdev returns the device number of a character or block device inode
// (XFS stores Linux's encoding: major in the bits above 18).
func (i *Inode) Rdev() (major, minor uint32) {
	if i.format != fmtDev || len(i.dataFork) < 4 {
		return 0, 0
	}
	d := binary.BigEndian.Uint32(i.dataFork)
	return d >> 18, d & (1<<18 - 1)
}

// FileMode converts the on-disk mode to an fs.FileMode.
func (i *Inode) FileMode() fs.FileMode { return unixmode.ToFileMode(uint32(i.Mode)) }

// inodeOffset translates an inode number into its byte offset. The
// number packs the AG, the block in the AG and the slot in the block:
// agno<<(agblklog+inopblog) | agbno<<inopblog | slot.
func (f *FS) inodeOffset(ino uint64) (int64, bool) {
	s := f.sb
	agno := ino >> (s.agBlkLog + s.inoPBlog)
	agbno := (ino >> s.inoPBlog) & (1<<s.agBlkLog - 1)
	slot := ino & (1<<s.inoPBlog - 1)
	if ino == 0 || agno >= s.agCount || agbno >= s.agBlocks {
		return 0, false
	}
	blk := agno*s.agBlocks + agbno
	if blk >= s.dblocks {
		return 0, false
	}
	return int64(blk)*s.blockSize + int64(slot)*int64(s.inodeSize), true
}

// inode returns inode ino, from the cache or the disk. Each caller gets
// its own copy (callers see it through FileInfo.Sys and may change it).
func (f *FS) inode(ino uint64) (*Inode, error) {
	in, err := f.inodes.Load(ino, f.readInode)
	if err != nil {
		return nil, err
	}
	c := *in
	return &c, nil
}

// readInode reads and checks inode ino: magic, version, CRC, number and
// UUID on v3 inodes, fork formats and sizes.
func (f *FS) readInode(ino uint64) (*Inode, error) {
	off, ok := f.inodeOffset(ino)
	if !ok {
		return nil, f.corrupt("inode number %d outside the file system", ino)
	}
	raw := make([]byte, f.sb.inodeSize)
	if err := f.readAt(raw, off); err != nil {
		return nil, err
	}
	be := binary.BigEndian
	if be.Uint16(raw) != inodeMagic {
		return nil, f.corrupt("inode %d: bad magic 0x%04x", ino, be.Uint16(raw))
	}
	in := &Inode{
		Ino:        ino,
		Mode:       be.Uint16(raw[2:]),
		Version:    raw[4],
		format:     raw[5],
		UID:        be.Uint32(raw[8:]),
		GID:        be.Uint32(raw[12:]),
		Nlink:      be.Uint32(raw[16:]),
		ProjID:     uint32(be.Uint16(raw[20:])) | uint32(be.Uint16(raw[22:]))<<16,
		Size:       be.Uint64(raw[56:]),
		Blocks:     be.Uint64(raw[64:]),
		nextents:   uint64(be.Uint32(raw[76:])),
		anextents:  uint64(be.Uint16(raw[80:])),
		aformat:    raw[83],
		Flags:      be.Uint16(raw[90:]),
		Generation: be.Uint32(raw[92:]),
	}
	lit := coreSizeV2
	switch in.Version {
	case 1:
		in.Nlink = uint32(be.Uint16(raw[6:]))
		in.ProjID = 0
	case 2:
		if f.sb.crc() {
			return nil, f.corrupt("inode %d: version 2 on a v5 file system", ino)
		}
	case 3:
		if !f.sb.crc() {
			return nil, f.corrupt("inode %d: version 3 on a v4 file system", ino)
		}
		if err := f.checkInodeV3(in, raw); err != nil {
			return nil, err
		}
		lit = coreSizeV3
	default:
		return nil, f.corrupt("inode %d: version %d", ino, in.Version)
	}
	if in.Mode == 0 {
		return nil, f.corrupt("inode %d is not in use", ino)
	}
	if in.Nlink >= maxNlink || int64(in.Size) < 0 {
		return nil, f.corrupt("inode %d: link count %d, size %d", ino, in.Nlink, in.Size)
	}
	if in.Flags2&Flag2Nrext64 != 0 {
		in.nextents = be.Uint64(raw[24:])
		in.anextents = uint64(be.Uint32(raw[76:]))
	}
	f.inodeTimes(in, raw)
	if err := f.splitForks(in, raw[lit:], raw[82]); err != nil {
		return nil, err
	}
	return in, nil
}

// checkInodeV3 verifies what v3 inodes add: the CRC, the inode's own
// number and the file system's UUID (so a stale inode from another file
// system or place is not taken for this one).
func (f *FS) checkInodeV3(in *Inode, raw []byte) error {
	be := binary.BigEndian
	if !checkCRC(raw, inodeCRCOff) {
		return f.corrupt("inode %d: checksum mismatch", in.Ino)
	}
	if be.Uint64(raw[152:]) != in.Ino {
		return f.corrupt("inode %d claims to be inode %d", in.Ino, be.Uint64(raw[152:]))
	}
	if !bytes.Equal(raw[160:176], f.sb.metaUUID[:]) {
		return f.corrupt("inode %d: UUID of another file system", in.Ino)
	}
	in.Flags2 = be.Uint64(raw[120:])
	return nil
}

// inodeTimes decodes the timestamps: seconds and nanoseconds, or with
// bigtime one count of nanoseconds since the old 32-bit epoch's start.
func (f *FS) inodeTimes(in *Inode, raw []byte) {
	be := binary.BigEndian
	ts := func(off int) time.Time {
		if in.Flags2&Flag2Bigtime != 0 {
			v := be.Uint64(raw[off:])
			return time.Unix(int64(v/nsPerSec)-bigtimeEpoch, int64(v%nsPerSec))
		}
		nsec := int64(be.Uint32(raw[off+4:]))
		if nsec >= nsPerSec {
			nsec = 0
		}
		return time.Unix(int64(int32(be.Uint32(raw[off:]))), nsec)
	}
	in.Atime, in.Mtime, in.Ctime = ts(32), ts(40), ts(48)
	if in.Version == 3 {
		in.Crtime = ts(144)
	}
}

// splitForks divides the literal area between the data fork and, when
// di_forkoff is set, the attribute fork after it, and checks that each
// fork's format suits the file type.
func (f *FS) splitForks(in *Inode, lit []byte, forkoff uint8) error {
	in.dataFork = lit
	if forkoff != 0 {
		split := int(forkoff) * 8
		if split >= len(lit) {
			return f.corrupt("inode %d: attribute fork offset %d past the inode", in.Ino, split)
		}
		in.dataFork, in.attrFork = lit[:split], lit[split:]
		if in.aformat != fmtLocal && in.aformat != fmtExtents && in.aformat != fmtBtree {
			return f.corrupt("inode %d: attribute fork format %d", in.Ino, in.aformat)
		}
	}
	ok := false
	switch in.Mode & sIFMT {
	case sIFCHR, sIFBLK, sIFIFO, sIFSOCK:
		ok = in.format == fmtDev
	case sIFREG:
		ok = in.format == fmtExtents || in.format == fmtBtree
	case sIFDIR, sIFLNK:
		ok = in.format == fmtLocal || in.format == fmtExtents || in.format == fmtBtree
	}
	if !ok {
		return f.corrupt("inode %d: data fork format %d for mode 0%o", in.Ino, in.format, in.Mode)
	}
	if in.format == fmtLocal && in.Size > uint64(len(in.dataFork)) {
		return f.corrupt("inode %d: %d bytes of local data in a fork of %d", in.Ino, in.Size, len(in.dataFork))
	}
	return nil
}
