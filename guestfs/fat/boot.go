package fat

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"strings"

	"github.com/qimg/qimg/image"
)

// The FAT types by their entry width.
const (
	fat12 = 12
	fat16 = 16
	fat32 = 32
)

// Cluster count limits from the Microsoft FAT specification: fewer than
// 4085 clusters is FAT12, fewer than 65525 FAT16.
const (
	maxFAT12Clusters = 4084
	maxFAT16Clusters = 65524
	maxFAT32Clusters = 0x0FFFFFF5 - 2
)

// geometry is what the boot sector (BPB) says, checked.
type geometry struct {
	sectorSize   int64
	clusterSize  int64
	reserved     int64 // sectors before the first FAT
	fats         int
	fatSectors   int64 // sectors per FAT copy
	rootEntries  int64 // slots in the fixed FAT12/16 root directory
	totalSectors int64
	bits         int    // 12, 16 or 32
	clusters     uint32 // data clusters, numbered 2..clusters+1
	rootCluster  uint32 // FAT32 root directory's first cluster
	fsInfo       int64  // FAT32 FSInfo sector, 0 if none
	activeFAT    int    // the copy to read (FAT32 with mirroring off)
	mirrored     bool   // every copy is kept the same
	dirty        bool   // the volume-dirty flag in the boot sector
	label        string // boot sector volume label
}

// fatStart is the byte offset of FAT copy i.
func (g *geometry) fatStart(i int) int64 {
	return (g.reserved + int64(i)*g.fatSectors) * g.sectorSize
}

// fatBytes is the size of one FAT copy.
func (g *geometry) fatBytes() int64 { return g.fatSectors * g.sectorSize }

// rootStart is the byte offset of the fixed FAT12/16 root directory.
func (g *geometry) rootStart() int64 { return g.fatStart(g.fats) }

// rootBytes is the size of the fixed root directory.
func (g *geometry) rootBytes() int64 { return g.rootEntries * slotSize }

// dataStart is the byte offset of cluster 2.
func (g *geometry) dataStart() int64 {
	rootSectors := (g.rootBytes() + g.sectorSize - 1) / g.sectorSize
	return g.rootStart() + rootSectors*g.sectorSize
}

// clusterOffset is the byte offset of cluster c (2..clusters+1).
func (g *geometry) clusterOffset(c uint32) int64 {
	return g.dataStart() + int64(c-2)*g.clusterSize
}

// validCluster says whether c names a data cluster.
func (g *geometry) validCluster(c uint32) bool { return c >= 2 && c-2 < g.clusters }

func le16(b []byte) int64 { return int64(binary.LittleEndian.Uint16(b)) }
func le32(b []byte) int64 { return int64(binary.LittleEndian.Uint32(b)) }

// readGeometry reads and checks the boot sector of a volume of size
// bytes.
func readGeometry(r io.ReaderAt, size int64, name string) (*geometry, error) {
	bs := make([]byte, 512)
	if _, err := r.ReadAt(bs, 0); err != nil {
		return nil, image.FileErrorf(name, "reading the FAT boot sector: %w", ioErr(err))
	}
	corrupt := func(format string, args ...any) error {
		return image.FileErrorf(name, "FAT boot sector: %s: %w", fmt.Sprintf(format, args...), image.ErrCorrupt)
	}
	g := &geometry{
		sectorSize:  le16(bs[11:]),
		reserved:    le16(bs[14:]),
		fats:        int(bs[16]),
		rootEntries: le16(bs[17:]),
		fatSectors:  le16(bs[22:]),
		mirrored:    true,
	}
	spc := int64(bs[13])
	if g.sectorSize < 512 || g.sectorSize > 4096 || bits.OnesCount64(uint64(g.sectorSize)) != 1 {
		return nil, corrupt("%d bytes per sector (not a power of two from 512 to 4096)", g.sectorSize)
	}
	if spc == 0 || bits.OnesCount64(uint64(spc)) != 1 {
		return nil, corrupt("%d sectors per cluster (not a power of two)", spc)
	}
	g.clusterSize = spc * g.sectorSize
	if g.reserved == 0 {
		return nil, corrupt("no reserved sectors")
	}
	if g.fats < 1 || g.fats > 4 {
		return nil, corrupt("%d FATs (not 1 to 4)", g.fats)
	}
	g.totalSectors = le16(bs[19:])
	if g.totalSectors == 0 {
		g.totalSectors = le32(bs[32:])
	}
	if g.totalSectors*g.sectorSize > size {
		return nil, corrupt("%d sectors of %d bytes do not fit in the %d-byte volume", g.totalSectors, g.sectorSize, size)
	}
	// FAT32 is told by its BPB layout (no 16-bit FAT size), as Linux and
	// fsck.fat do: mkfs.vfat -F 32 makes small FAT32 volumes with fewer
	// clusters than the specification's threshold.
	isFAT32 := g.fatSectors == 0
	if isFAT32 {
		g.fatSectors = le32(bs[36:])
		if g.rootEntries != 0 {
			return nil, corrupt("FAT32 layout with %d fixed root entries", g.rootEntries)
		}
	} else if g.rootEntries == 0 {
		return nil, corrupt("FAT12/16 layout with no root directory entries")
	}
	if g.fatSectors == 0 {
		return nil, corrupt("FAT size 0")
	}
	meta := g.reserved + int64(g.fats)*g.fatSectors + (g.rootBytes()+g.sectorSize-1)/g.sectorSize
	if meta >= g.totalSectors {
		return nil, corrupt("reserved sectors, FATs and root directory (%d sectors) leave no data area in %d sectors", meta, g.totalSectors)
	}
	count := (g.totalSectors - meta) / spc
	if count == 0 {
		return nil, corrupt("no data clusters")
	}
	switch {
	case isFAT32:
		g.bits = fat32
		if count > maxFAT32Clusters {
			count = maxFAT32Clusters // clusters past the FAT's range are unused
		}
	case count <= maxFAT12Clusters:
		g.bits = fat12
	case count <= maxFAT16Clusters:
		g.bits = fat16
	default:
		return nil, corrupt("FAT16 layout with %d clusters (FAT16 has at most %d)", count, maxFAT16Clusters)
	}
	g.clusters = uint32(count)
	if need := ((int64(g.clusters)+2)*int64(g.bits) + 7) / 8; need > g.fatBytes() {
		return nil, corrupt("%d clusters need %d FAT bytes, the FAT has %d", g.clusters, need, g.fatBytes())
	}
	if isFAT32 {
		return g, g.readFAT32(bs, corrupt)
	}
	g.dirty = bs[37]&1 != 0
	if bs[38] == 0x29 {
		g.label = strings.TrimRight(string(bs[43:54]), " ")
	}
	return g, nil
}

// readFAT32 reads the FAT32 part of the BPB.
func (g *geometry) readFAT32(bs []byte, corrupt func(string, ...any) error) error {
	flags := le16(bs[40:])
	if flags&0x80 != 0 {
		g.mirrored = false
		g.activeFAT = int(flags & 0xf)
		if g.activeFAT >= g.fats {
			return corrupt("active FAT %d of %d", g.activeFAT, g.fats)
		}
	}
	if v := le16(bs[42:]); v != 0 {
		return corrupt("FAT32 version %#x", v)
	}
	g.rootCluster = uint32(le32(bs[44:]))
	if !g.validCluster(g.rootCluster) {
		return corrupt("root directory cluster %d outside 2..%d", g.rootCluster, g.clusters+1)
	}
	if s := le16(bs[48:]); s != 0 && s != 0xffff && s < g.reserved {
		g.fsInfo = s
	}
	g.dirty = bs[65]&1 != 0
	if bs[66] == 0x29 {
		g.label = strings.TrimRight(string(bs[71:82]), " ")
	}
	return nil
}

// ioErr turns a short read of a structure the volume must hold into
// corruption.
func ioErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("volume too short: %w", image.ErrCorrupt)
	}
	return err
}
