package ext4

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/bits"
	"strings"

	"github.com/qimg/qimg/image"
)

// The superblock always starts 1024 bytes into the file system, whatever
// the block size, and is 1024 bytes long.
const (
	superblockOffset = 1024
	superblockSize   = 1024
	superMagic       = 0xEF53
)

// Compatible features the writer acts on.
const (
	compatHasJournal = 0x4
	compatDirIndex   = 0x20
)

// Incompatible features: a reader that does not understand one must not
// read the file system at all, so Open names any bit it does not know.
const (
	incompatCompression = 0x1
	incompatFiletype    = 0x2
	incompatRecover     = 0x4
	incompatJournalDev  = 0x8
	incompatMetaBG      = 0x10
	incompatExtents     = 0x40
	incompat64bit       = 0x80
	incompatMMP         = 0x100
	incompatFlexBG      = 0x200
	incompatEAInode     = 0x400
	incompatDirdata     = 0x1000
	incompatCsumSeed    = 0x2000
	incompatLargedir    = 0x4000
	incompatInlineData  = 0x8000
	incompatEncrypt     = 0x10000
	incompatCasefold    = 0x20000
)

// Read-only compatible features: safe to read, unsafe to write without
// understanding them (the coming write side refuses unknown ones).
const (
	roCompatSparseSuper  = 0x1
	roCompatLargeFile    = 0x2
	roCompatHugeFile     = 0x8
	roCompatGdtCsum      = 0x10
	roCompatDirNlink     = 0x20
	roCompatExtraIsize   = 0x40
	roCompatQuota        = 0x100
	roCompatBigalloc     = 0x200
	roCompatMetadataCsum = 0x400
	roCompatReadonly     = 0x1000
	roCompatProject      = 0x2000
	roCompatVerity       = 0x8000
	roCompatOrphan       = 0x10000
)

// featureName maps feature bits to the names mke2fs and tune2fs use.
type featureName struct {
	bit  uint32
	name string
}

var compatNames = []featureName{
	{0x1, "dir_prealloc"}, {0x2, "imagic_inodes"}, {0x4, "has_journal"},
	{0x8, "ext_attr"}, {0x10, "resize_inode"}, {0x20, "dir_index"},
	{0x40, "lazy_bg"}, {0x80, "exclude_inode"}, {0x100, "exclude_bitmap"},
	{0x200, "sparse_super2"}, {0x400, "fast_commit"}, {0x800, "stable_inodes"},
	{0x1000, "orphan_file"},
}

var incompatNames = []featureName{
	{incompatCompression, "compression"}, {incompatFiletype, "filetype"},
	{incompatRecover, "needs_recovery"}, {incompatJournalDev, "journal_dev"},
	{incompatMetaBG, "meta_bg"}, {incompatExtents, "extent"},
	{incompat64bit, "64bit"}, {incompatMMP, "mmp"}, {incompatFlexBG, "flex_bg"},
	{incompatEAInode, "ea_inode"}, {incompatDirdata, "dirdata"},
	{incompatCsumSeed, "metadata_csum_seed"}, {incompatLargedir, "large_dir"},
	{incompatInlineData, "inline_data"}, {incompatEncrypt, "encrypt"},
	{incompatCasefold, "casefold"},
}

var roCompatNames = []featureName{
	{roCompatSparseSuper, "sparse_super"}, {roCompatLargeFile, "large_file"},
	{0x4, "btree_dir"}, {roCompatHugeFile, "huge_file"},
	{roCompatGdtCsum, "uninit_bg"}, {roCompatDirNlink, "dir_nlink"},
	{roCompatExtraIsize, "extra_isize"}, {0x80, "snapshot"},
	{roCompatQuota, "quota"}, {roCompatBigalloc, "bigalloc"},
	{roCompatMetadataCsum, "metadata_csum"}, {0x800, "replica"},
	{roCompatReadonly, "read-only"}, {roCompatProject, "project"},
	{0x4000, "shared_blocks"}, {roCompatVerity, "verity"},
	{roCompatOrphan, "orphan_present"},
}

// incompatSupported are the incompatible features the reader implements.
// needs_recovery is accepted: the journal is not replayed (as debugfs
// reads), so the last changes of a guest that crashed may be missing.
// casefold is accepted: names are read as stored and looked up exactly.
const incompatSupported = incompatFiletype | incompatRecover | incompatMetaBG |
	incompatExtents | incompat64bit | incompatMMP | incompatFlexBG |
	incompatEAInode | incompatCsumSeed | incompatLargedir | incompatInlineData |
	incompatCasefold

// names lists the features set in v, and unknown bits as hex.
func names(v uint32, table []featureName) []string {
	var out []string
	for _, f := range table {
		if v&f.bit != 0 {
			out = append(out, f.name)
			v &^= f.bit
		}
	}
	for v != 0 {
		b := uint32(1) << bits.TrailingZeros32(v)
		out = append(out, fmt.Sprintf("FEATURE_0x%x", b))
		v &^= b
	}
	return out
}

// castagnoli is the CRC32c table of metadata_csum.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c continues the kernel's ext4_chksum: a CRC32c register without the
// final inversion that hash/crc32 applies, so chained calls compose.
func crc32c(seed uint32, p []byte) uint32 {
	return ^crc32.Update(^seed, castagnoli, p)
}

// superblock holds the fields the reader uses, already checked.
type superblock struct {
	inodesCount    uint32
	blocksCount    uint64
	freeBlocks     uint64
	freeInodes     uint32
	firstDataBlock uint32
	blockSize      int64
	blocksPerGroup uint32
	inodesPerGroup uint32
	inodeSize      uint32
	firstIno       uint32
	descSize       uint32
	groups         uint32
	firstMetaBG    uint32
	compat         uint32
	incompat       uint32
	roCompat       uint32
	uuid           [16]byte
	label          string
	csumSeed       uint32 // seed of metadata checksums (metadata_csum only)

	// What the write side needs besides.
	reservedGDT    uint16    // descriptor blocks reserved for growth, after the descriptors
	journalIno     uint32    // the journal's inode, 0 without has_journal
	hashSeed       [4]uint32 // seed of htree name hashes
	hashVersion    uint8     // default htree hash (legacy, half_md4, tea)
	unsignedDir    bool      // htree hashes treat name bytes as unsigned
	wantExtraIsize uint16    // extra inode bytes new inodes get
}

func (s *superblock) has(incompat uint32) bool   { return s.incompat&incompat != 0 }
func (s *superblock) hasRO(roCompat uint32) bool { return s.roCompat&roCompat != 0 }
func (s *superblock) metadataCsum() bool         { return s.hasRO(roCompatMetadataCsum) }

// groupCsum reports whether group descriptors carry a checksum, which is
// what makes their "uninitialised" flags and unused-inode counts valid.
func (s *superblock) groupCsum() bool {
	return s.hasRO(roCompatMetadataCsum) || s.hasRO(roCompatGdtCsum)
}

// parseSuperblock checks and decodes the 1024 bytes at offset 1024 of a
// file system of size bytes.
func parseSuperblock(b []byte, size int64, name string) (*superblock, error) {
	le := binary.LittleEndian
	corrupt := func(format string, args ...any) error {
		return image.FileErrorf(name, "ext4 superblock: "+format+": %w", append(args, image.ErrCorrupt)...)
	}
	if le.Uint16(b[0x38:]) != superMagic {
		return nil, image.FileErrorf(name, "no ext2/3/4 superblock (bad magic): %w", image.ErrWrongFormat)
	}
	s := &superblock{
		inodesCount:    le.Uint32(b[0x0:]),
		blocksCount:    uint64(le.Uint32(b[0x4:])),
		freeBlocks:     uint64(le.Uint32(b[0xC:])),
		freeInodes:     le.Uint32(b[0x10:]),
		firstDataBlock: le.Uint32(b[0x14:]),
		blocksPerGroup: le.Uint32(b[0x20:]),
		inodesPerGroup: le.Uint32(b[0x28:]),
		inodeSize:      128,
		firstIno:       11,
		descSize:       32,
		compat:         le.Uint32(b[0x5C:]),
		incompat:       le.Uint32(b[0x60:]),
		roCompat:       le.Uint32(b[0x64:]),
	}
	copy(s.uuid[:], b[0x68:0x78])
	s.label = strings.TrimRight(string(b[0x78:0x88]), "\x00")
	revLevel := le.Uint32(b[0x4C:])
	if revLevel == 0 {
		// Revision 0 file systems predate feature flags: the fields
		// below are undefined there.
		s.compat, s.incompat, s.roCompat = 0, 0, 0
	} else {
		s.inodeSize = uint32(le.Uint16(b[0x58:]))
		s.firstIno = le.Uint32(b[0x54:])
	}

	if s.metadataCsum() {
		if b[0x175] != 1 {
			return nil, image.FileErrorf(name, "ext4 superblock: checksum type %d: %w", b[0x175], image.ErrUnsupported)
		}
		if got, want := crc32c(^uint32(0), b[:0x3FC]), le.Uint32(b[0x3FC:]); got != want {
			return nil, corrupt("checksum 0x%08x, computed 0x%08x", want, got)
		}
		if s.has(incompatCsumSeed) {
			s.csumSeed = le.Uint32(b[0x270:])
		} else {
			s.csumSeed = crc32c(^uint32(0), s.uuid[:])
		}
	}
	if bad := s.incompat &^ incompatSupported; bad != 0 {
		return nil, image.FileErrorf(name, "ext4 feature %s: %w",
			strings.Join(names(bad, incompatNames), ", "), image.ErrUnsupported)
	}

	logBlock := le.Uint32(b[0x18:])
	if logBlock > 6 { // 64 KiB, the largest block size of ext4
		return nil, corrupt("block size 2^(10+%d)", logBlock)
	}
	s.blockSize = 1024 << logBlock
	if s.has(incompat64bit) {
		s.blocksCount |= uint64(le.Uint32(b[0x150:])) << 32
		s.freeBlocks |= uint64(le.Uint32(b[0x158:])) << 32
		s.descSize = uint32(le.Uint16(b[0xFE:]))
		if s.descSize < 64 || s.descSize > 1024 || s.descSize&(s.descSize-1) != 0 {
			return nil, corrupt("group descriptor size %d", s.descSize)
		}
	}
	if s.inodeSize < 128 || s.inodeSize > uint32(s.blockSize) || s.inodeSize&(s.inodeSize-1) != 0 {
		return nil, corrupt("inode size %d", s.inodeSize)
	}
	// The first data block is 1 for 1 KiB blocks (block 0 holds the boot
	// sector and the superblock) and 0 otherwise.
	if s.firstDataBlock > 1 || uint64(s.firstDataBlock) >= s.blocksCount {
		return nil, corrupt("first data block %d of %d", s.firstDataBlock, s.blocksCount)
	}
	// A group's bitmaps are one block each, which bounds the groups; with
	// bigalloc the block bitmap counts clusters of several blocks.
	perBit := uint64(1)
	if s.hasRO(roCompatBigalloc) {
		logCluster := le.Uint32(b[0x1C:])
		if logCluster < logBlock || logCluster-logBlock > 16 {
			return nil, corrupt("cluster size 2^(10+%d) for blocks of 2^(10+%d)", logCluster, logBlock)
		}
		perBit = 1 << (logCluster - logBlock)
		if uint64(le.Uint32(b[0x24:]))*perBit != uint64(s.blocksPerGroup) {
			return nil, corrupt("%d blocks per group for %d clusters", s.blocksPerGroup, le.Uint32(b[0x24:]))
		}
	}
	if s.blocksPerGroup == 0 || uint64(s.blocksPerGroup) > 8*uint64(s.blockSize)*perBit {
		return nil, corrupt("%d blocks per group", s.blocksPerGroup)
	}
	if s.inodesPerGroup == 0 || int64(s.inodesPerGroup) > 8*s.blockSize {
		return nil, corrupt("%d inodes per group", s.inodesPerGroup)
	}
	groups := (s.blocksCount - uint64(s.firstDataBlock) + uint64(s.blocksPerGroup) - 1) / uint64(s.blocksPerGroup)
	if groups > 1<<32-1 || groups*uint64(s.inodesPerGroup) != uint64(s.inodesCount) {
		return nil, corrupt("%d inodes for %d groups of %d", s.inodesCount, groups, s.inodesPerGroup)
	}
	s.groups = uint32(groups)
	if s.firstIno < 11 || s.firstIno > s.inodesCount {
		return nil, corrupt("first inode %d", s.firstIno)
	}
	// The file system may be smaller than its image (a partition that
	// was not grown) but never larger: block reads past the image fail
	// anyway, this names the reason at once.
	if s.blocksCount > uint64(size/s.blockSize) {
		return nil, corrupt("%d blocks of %d bytes do not fit in %d bytes", s.blocksCount, s.blockSize, size)
	}
	s.firstMetaBG = le.Uint32(b[0x104:])
	s.reservedGDT = le.Uint16(b[0xCE:])
	if s.compat&compatHasJournal != 0 {
		s.journalIno = le.Uint32(b[0xE0:])
	}
	for i := range s.hashSeed {
		s.hashSeed[i] = le.Uint32(b[0xEC+4*i:])
	}
	s.hashVersion = b[0xFC]
	s.wantExtraIsize = 32
	if w := le.Uint16(b[0x15E:]); w >= 4 && w&3 == 0 {
		s.wantExtraIsize = w
	}
	s.unsignedDir = le.Uint32(b[0x160:])&0x2 != 0
	return s, nil
}
