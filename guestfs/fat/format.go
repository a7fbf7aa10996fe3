package fat

import (
	"crypto/rand"
	"encoding/binary"
	"io"
	"strings"
	"time"

	"github.com/qimg/qimg/image"
)

// The layout Format makes, as mkfs.fat makes it for a small disk: 512-byte
// sectors, one reserved sector, two FATs, a 512-entry root directory.
const (
	fmtSector      = 512
	fmtReserved    = 1
	fmtFATs        = 2
	fmtRootEntries = 512
	fmtMedia       = 0xf8
	// MinFormatSize and MaxFormatSize bound what Format makes: FAT12 up
	// to 16 MiB, FAT16 above, up to FAT16's 2 GiB.
	MinFormatSize = 64 << 10
	MaxFormatSize = 2 << 30
)

// Format writes an empty FAT12 or FAT16 file system of size bytes (a
// multiple of 512) to dev, labelled label (up to 11 characters allowed in
// short names; "" for none): FAT12 up to 16 MiB and FAT16 above, each
// with the smallest cluster (from 512 bytes for FAT12, 2 KiB for FAT16)
// that keeps the cluster count within the type's limit. Only the boot sector, the
// FATs and the root directory are written; the data area is left as it
// is (a new file reads as zeros). The volume serial number is random.
func Format(dev io.WriterAt, size int64, label string) error {
	if size < MinFormatSize || size > MaxFormatSize || size%fmtSector != 0 {
		return image.Errorf(image.ErrInvalidArgument, "fat: cannot format %d bytes: the size must be a multiple of 512 from %d to %d", size, MinFormatSize, MaxFormatSize)
	}
	lab, err := labelBytes(label)
	if err != nil {
		return err
	}
	g := formatGeometry(size / fmtSector)
	var serial [4]byte
	if _, err := rand.Read(serial[:]); err != nil {
		return err
	}
	meta := make([]byte, g.dataStart())
	copy(meta, bootSector(g, lab, serial))
	for i := 0; i < g.fats; i++ {
		fat := meta[g.fatStart(i):]
		if g.bits == fat12 {
			copy(fat, []byte{fmtMedia, 0xff, 0xff})
		} else {
			copy(fat, []byte{fmtMedia, 0xff, 0xff, 0xff}) // entry 1: clean, no errors
		}
	}
	if label != "" {
		root := meta[g.rootStart():]
		copy(root, lab[:])
		root[11] = attrVolume
		date, tm, _ := encodeTime(time.Now().UTC())
		binary.LittleEndian.PutUint16(root[22:], tm)
		binary.LittleEndian.PutUint16(root[24:], date)
	}
	_, err = dev.WriteAt(meta, 0)
	return err
}

// labelBytes checks a label and pads it to 11 bytes. Lower case is kept
// (mkfs.fat keeps it too; cloud-init looks for "cidata" and "config-2"
// in either case).
func labelBytes(label string) ([11]byte, error) {
	var b [11]byte
	copy(b[:], "NO NAME    ")
	if label == "" {
		return b, nil
	}
	if len(label) > 11 || strings.TrimRight(label, " ") != label {
		return b, image.Errorf(image.ErrInvalidArgument, "fat: label %q: at most 11 characters, no trailing space", label)
	}
	for _, c := range []byte(label) {
		if c < 0x20 || c >= 0x7f || strings.IndexByte(`"*+,./:;<=>?[\]|`, c) >= 0 {
			return b, image.Errorf(image.ErrInvalidArgument, "fat: label %q: %q is not allowed in a FAT label", label, c)
		}
	}
	copy(b[:], label+strings.Repeat(" ", 11-len(label)))
	return b, nil
}

// formatGeometry chooses the FAT type, cluster size and FAT size for a
// volume of total sectors.
func formatGeometry(total int64) *geometry {
	g := &geometry{sectorSize: fmtSector, reserved: fmtReserved, fats: fmtFATs,
		rootEntries: fmtRootEntries, totalSectors: total, mirrored: true}
	bits, spc := fat12, int64(1)
	if total*fmtSector > 16<<20 {
		bits, spc = fat16, 4
	}
	for {
		clusters, fatSectors := fitFAT(total, spc, bits)
		limit := int64(maxFAT12Clusters)
		if bits == fat16 {
			limit = maxFAT16Clusters
		}
		if clusters <= limit {
			g.bits, g.clusterSize, g.fatSectors, g.clusters = bits, spc*fmtSector, fatSectors, uint32(clusters)
			return g
		}
		spc *= 2
	}
}

// fitFAT sizes the FAT for every cluster the volume could have without
// it, then counts the clusters that fit beside it, as a reader counts
// them; that FAT is large enough for them.
func fitFAT(total, spc int64, bits int) (clusters, fatSectors int64) {
	rootSectors := int64(fmtRootEntries * slotSize / fmtSector)
	avail := total - fmtReserved - rootSectors
	most := avail / spc
	fatSectors = ((most+2)*int64(bits) + 8*fmtSector - 1) / (8 * fmtSector)
	return (avail - fmtFATs*fatSectors) / spc, fatSectors
}

// bootSector is the first sector of a new volume.
func bootSector(g *geometry, label [11]byte, serial [4]byte) []byte {
	bs := make([]byte, fmtSector)
	copy(bs, []byte{0xeb, 0x3c, 0x90})
	copy(bs[3:], "MSWIN4.1")
	le := binary.LittleEndian
	le.PutUint16(bs[11:], fmtSector)
	bs[13] = byte(g.clusterSize / fmtSector)
	le.PutUint16(bs[14:], fmtReserved)
	bs[16] = fmtFATs
	le.PutUint16(bs[17:], fmtRootEntries)
	if g.totalSectors < 1<<16 {
		le.PutUint16(bs[19:], uint16(g.totalSectors))
	} else {
		le.PutUint32(bs[32:], uint32(g.totalSectors))
	}
	bs[21] = fmtMedia
	le.PutUint16(bs[22:], uint16(g.fatSectors))
	le.PutUint16(bs[24:], 32) // sectors per track and heads, as mkfs.fat
	le.PutUint16(bs[26:], 64) // gives a disk image
	bs[36] = 0x80
	bs[38] = 0x29
	copy(bs[39:43], serial[:])
	copy(bs[43:54], label[:])
	if g.bits == fat12 {
		copy(bs[54:], "FAT12   ")
	} else {
		copy(bs[54:], "FAT16   ")
	}
	copy(bs[62:], []byte{0xcd, 0x18, 0xeb, 0xfe}) // not bootable: int 18h, then halt
	bs[510], bs[511] = 0x55, 0xaa
	return bs
}
