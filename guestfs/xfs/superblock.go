package xfs

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/bits"

	"github.com/qimg/qimg/image"
)

// The superblock is the first sector of allocation group 0 (each group
// starts with a copy; only the primary is read).
const (
	sbMagic   = 0x58465342 // "XFSB"
	sbMinSize = 264        // the v5 fields end here
	sbCRCOff  = 224
)

// versionnum bits (the low four bits are the version).
const (
	versionDirV2    = 0x2000
	versionMoreBits = 0x8000
)

// features2 bits; ftype on a v4 file system lives here.
const features2Ftype = 0x200

// Incompatible features of v5 file systems: Open refuses any other bit.
const (
	incompatFtype       = 0x1
	incompatSpinodes    = 0x2
	incompatMetaUUID    = 0x4
	incompatBigtime     = 0x8
	incompatNeedsRepair = 0x10
	incompatNrext64     = 0x20
	incompatKnown       = incompatFtype | incompatSpinodes | incompatMetaUUID | incompatBigtime | incompatNeedsRepair | incompatNrext64
)

type featureName struct {
	bit  uint32
	name string
}

// Feature names as mkfs.xfs and xfs_info spell them.
var (
	incompatNames = []featureName{
		{incompatFtype, "ftype"}, {incompatSpinodes, "sparse"}, {incompatMetaUUID, "metauuid"},
		{incompatBigtime, "bigtime"}, {incompatNeedsRepair, "needsrepair"}, {incompatNrext64, "nrext64"},
	}
	roCompatNames = []featureName{
		{0x1, "finobt"}, {0x2, "rmapbt"}, {0x4, "reflink"}, {0x8, "inobtcount"},
	}
)

// superblock holds the geometry and features the reader uses.
type superblock struct {
	blockSize  int64
	blockLog   uint
	dblocks    uint64
	rblocks    uint64
	uuid       [16]byte
	metaUUID   [16]byte // the UUID stamped in v5 metadata
	rootIno    uint64
	agBlocks   uint64
	agCount    uint64
	agBlkLog   uint
	sectSize   int
	inodeSize  int
	inoPBlog   uint
	version    int // 4 or 5
	dirBlkLog  uint
	label      string
	icount     uint64
	ifree      uint64
	fdblocks   uint64
	versionNum uint16
	features2  uint32
	roCompat   uint32
	incompat   uint32
	logStart   uint64
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checkCRC verifies the CRC32c XFS stores little-endian at off in b,
// computed over b with those four bytes zeroed.
func checkCRC(b []byte, off int) bool {
	want := binary.LittleEndian.Uint32(b[off:])
	c := crc32.Update(0, castagnoli, b[:off])
	c = crc32.Update(c, castagnoli, []byte{0, 0, 0, 0})
	c = crc32.Update(c, castagnoli, b[off+4:])
	return c == want
}

// parseSuperblock checks the primary superblock against itself and the
// image size: every later bound (block numbers, inode numbers) trusts
// this geometry.
func parseSuperblock(b []byte, size int64, name string) (*superblock, error) {
	be := binary.BigEndian
	if be.Uint32(b) != sbMagic {
		return nil, image.FileErrorf(name, "no XFS superblock: %w", image.ErrWrongFormat)
	}
	bad := func(what string, v any) error {
		return image.FileErrorf(name, "xfs: superblock %s %v: %w", what, v, image.ErrCorrupt)
	}
	s := &superblock{
		blockSize:  int64(be.Uint32(b[4:])),
		dblocks:    be.Uint64(b[8:]),
		rblocks:    be.Uint64(b[16:]),
		logStart:   be.Uint64(b[48:]),
		rootIno:    be.Uint64(b[56:]),
		agBlocks:   uint64(be.Uint32(b[84:])),
		agCount:    uint64(be.Uint32(b[88:])),
		versionNum: be.Uint16(b[100:]),
		sectSize:   int(be.Uint16(b[102:])),
		inodeSize:  int(be.Uint16(b[104:])),
		blockLog:   uint(b[120]),
		inoPBlog:   uint(b[123]),
		agBlkLog:   uint(b[124]),
		icount:     be.Uint64(b[128:]),
		ifree:      be.Uint64(b[136:]),
		fdblocks:   be.Uint64(b[144:]),
		dirBlkLog:  uint(b[192]),
		version:    int(be.Uint16(b[100:]) & 0xf),
	}
	copy(s.uuid[:], b[32:48])
	s.metaUUID = s.uuid
	s.label = string(bytes.TrimRight(b[108:120], "\x00"))
	if s.versionNum&versionMoreBits != 0 {
		s.features2 = be.Uint32(b[200:])
	}
	switch s.version {
	case 4:
		if s.versionNum&versionDirV2 == 0 {
			return nil, image.FileErrorf(name, "xfs: version 1 directories: %w", image.ErrUnsupported)
		}
	case 5:
		s.roCompat = be.Uint32(b[212:])
		s.incompat = be.Uint32(b[216:])
		if s.incompat&^incompatKnown != 0 {
			return nil, image.FileErrorf(name, "xfs: unknown incompatible features 0x%x: %w", s.incompat&^incompatKnown, image.ErrUnsupported)
		}
		if s.incompat&incompatMetaUUID != 0 {
			copy(s.metaUUID[:], b[248:264])
		}
	default:
		return nil, image.FileErrorf(name, "xfs: superblock version %d: %w", s.version, image.ErrUnsupported)
	}
	if s.blockSize < 512 || s.blockSize > 65536 || s.blockSize&(s.blockSize-1) != 0 || int64(1)<<s.blockLog != s.blockSize {
		return nil, bad("block size", s.blockSize)
	}
	if s.sectSize < 512 || s.sectSize > 32768 || s.sectSize&(s.sectSize-1) != 0 || int64(s.sectSize) > s.blockSize || 1<<b[121] != s.sectSize {
		return nil, bad("sector size", s.sectSize)
	}
	if s.version == 5 {
		if len(b) < s.sectSize {
			return nil, bad("sector size", s.sectSize)
		}
		if !checkCRC(b[:s.sectSize], sbCRCOff) {
			return nil, bad("checksum", "mismatch")
		}
	}
	if s.inodeSize < 256 || s.inodeSize > 2048 || s.inodeSize&(s.inodeSize-1) != 0 || 1<<b[122] != s.inodeSize ||
		int64(s.inodeSize) > s.blockSize || s.blockSize>>s.inoPBlog != int64(s.inodeSize) || int64(be.Uint16(b[106:])) != s.blockSize/int64(s.inodeSize) {
		return nil, bad("inode size", s.inodeSize)
	}
	if s.agBlocks < 5 || s.agBlkLog != uint(bits.Len64(s.agBlocks-1)) || s.agBlkLog+s.inoPBlog > 32 {
		return nil, bad("AG size", s.agBlocks)
	}
	if s.agCount == 0 || s.dblocks == 0 || s.dblocks > s.agCount*s.agBlocks || s.dblocks <= (s.agCount-1)*s.agBlocks {
		return nil, bad("block count", s.dblocks)
	}
	if s.dblocks > uint64(size)/uint64(s.blockSize) {
		return nil, image.FileErrorf(name, "xfs: %d blocks of %d bytes do not fit in %d bytes: %w", s.dblocks, s.blockSize, size, image.ErrCorrupt)
	}
	if s.blockLog+s.dirBlkLog > 16 {
		return nil, bad("directory block size log", s.dirBlkLog)
	}
	return s, nil
}

// hasFtype reports whether directory entries record the file type.
func (s *superblock) hasFtype() bool {
	if s.version == 5 {
		return s.incompat&incompatFtype != 0
	}
	return s.features2&features2Ftype != 0
}

func (s *superblock) crc() bool     { return s.version == 5 }
func (s *superblock) bigtime() bool { return s.incompat&incompatBigtime != 0 }

// dirBlockSize is the size of one directory block, a power of two
// number of file system blocks.
func (s *superblock) dirBlockSize() int64 { return s.blockSize << s.dirBlkLog }

// features names the v5 feature bits set, as mkfs.xfs names them.
func (s *superblock) features() []string {
	var out []string
	if s.version == 5 {
		out = append(out, "crc")
	}
	for _, n := range incompatNames {
		if s.incompat&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	if s.version == 4 && s.hasFtype() {
		out = append(out, "ftype")
	}
	for _, n := range roCompatNames {
		if s.roCompat&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	return out
}
