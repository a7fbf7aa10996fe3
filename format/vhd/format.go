package vhd

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unicode/utf16"

	"github.com/qimg/qimg/image"
)

// On-disk constants, from the VHD specification and QEMU's block/vpc.c.
const (
	footerSize    = 512
	dynHeaderSize = 1024

	// Disk types in the footer.
	typeFixed        = 2
	typeDynamic      = 3
	typeDifferencing = 4

	// unallocated marks a BAT entry with no block.
	unallocated = 0xFFFFFFFF

	// timestampBase is the VHD epoch, 2000-01-01 00:00:00 UTC, in Unix time.
	timestampBase = 946684800

	// maxSectors is QEMU's limit on the virtual size (2040 GiB): larger
	// images are refused on open and on create.
	maxSectors = 0xff000000
	// maxGeometry is the largest CHS geometry, 65535 x 16 x 255. QEMU
	// takes it as "the size is in current_size" whatever the creator.
	chsMaxC     = 65535
	chsMaxH     = 16
	chsMaxS     = 255
	maxGeometry = chsMaxC * chsMaxH * chsMaxS

	// defaultBlockSize is the block size qemu-img (and Hyper-V) write.
	defaultBlockSize = 2 << 20

	// maxBATEntries is QEMU's bound on max_table_entries (INT_MAX / 4):
	// a larger table is refused before anything is allocated.
	maxBATEntries = 0x7fffffff / 4
	// maxKeptEntries bounds the BAT entries qimg keeps in memory (256
	// MiB): enough for a 2040 GiB disk down to 32 KiB blocks. Smaller
	// blocks on a disk that large exist only in hostile files.
	maxKeptEntries = 1 << 26
)

var (
	cookieFooter = []byte("conectix")
	cookieDyn    = []byte("cxsparse")
)

// footer is the 512-byte Hard Disk Footer. A dynamic disk stores a copy of
// it at offset 0 as well as at the end; a fixed disk only at the end.
type footer struct {
	features      uint32
	version       uint32
	dataOffset    uint64 // the dynamic header's offset; all ones for fixed disks
	timestamp     uint32 // seconds since 2000-01-01 UTC
	creatorApp    [4]byte
	creatorVer    uint32
	creatorOS     [4]byte
	origSize      uint64
	currentSize   uint64
	cyls          uint16
	heads         uint8
	secsPerCyl    uint8
	diskType      uint32
	checksum      uint32
	uuid          [16]byte
	savedState    uint8
	checksumValid bool // set by parseFooter
}

// checksum is the VHD checksum: the ones' complement of the byte sum, with
// the checksum field itself counted as zero by the caller.
func checksum(b []byte) uint32 {
	var s uint32
	for _, c := range b {
		s += uint32(c)
	}
	return ^s
}

// hasCookie reports whether b starts with the footer cookie.
func hasCookie(b []byte) bool { return len(b) >= 8 && bytes.Equal(b[:8], cookieFooter) }

// parseFooter decodes a footer; b must hold 512 bytes starting with the
// cookie. The checksum is verified by the caller, which knows the name.
func parseFooter(b []byte) footer {
	be := binary.BigEndian
	var f footer
	f.features = be.Uint32(b[8:])
	f.version = be.Uint32(b[12:])
	f.dataOffset = be.Uint64(b[16:])
	f.timestamp = be.Uint32(b[24:])
	copy(f.creatorApp[:], b[28:32])
	f.creatorVer = be.Uint32(b[32:])
	copy(f.creatorOS[:], b[36:40])
	f.origSize = be.Uint64(b[40:])
	f.currentSize = be.Uint64(b[48:])
	f.cyls = be.Uint16(b[56:])
	f.heads = b[58]
	f.secsPerCyl = b[59]
	f.diskType = be.Uint32(b[60:])
	f.checksum = be.Uint32(b[64:])
	copy(f.uuid[:], b[68:84])
	f.savedState = b[84]
	var c [footerSize]byte
	copy(c[:], b[:footerSize])
	clear(c[64:68])
	f.checksumValid = checksum(c[:]) == f.checksum
	return f
}

// encode returns the footer's 512 bytes with a fresh checksum.
func (f *footer) encode() []byte {
	be := binary.BigEndian
	b := make([]byte, footerSize)
	copy(b, cookieFooter)
	be.PutUint32(b[8:], f.features)
	be.PutUint32(b[12:], f.version)
	be.PutUint64(b[16:], f.dataOffset)
	be.PutUint32(b[24:], f.timestamp)
	copy(b[28:32], f.creatorApp[:])
	be.PutUint32(b[32:], f.creatorVer)
	copy(b[36:40], f.creatorOS[:])
	be.PutUint64(b[40:], f.origSize)
	be.PutUint64(b[48:], f.currentSize)
	be.PutUint16(b[56:], f.cyls)
	b[58] = f.heads
	b[59] = f.secsPerCyl
	be.PutUint32(b[60:], f.diskType)
	copy(b[68:84], f.uuid[:])
	b[84] = f.savedState
	f.checksum = checksum(b)
	be.PutUint32(b[64:], f.checksum)
	return b
}

// usesCurrentSize reports whether the virtual size comes from the footer's
// current_size rather than from the CHS geometry. Virtual PC sizes a disk
// by its geometry, Hyper-V and most other tools by current_size; QEMU
// 7.2 (vpc_ignore_current_size) tells them apart by the creator
// application, and takes current_size whenever the geometry is the
// maximum, because such a geometry cannot describe the size.
func (f *footer) usesCurrentSize() bool {
	if int64(f.cyls)*int64(f.heads)*int64(f.secsPerCyl) == maxGeometry {
		return true
	}
	switch string(f.creatorApp[:]) {
	case "win ", // Hyper-V
		"qem2",    // qemu-img with force_size=on
		"d2v ",    // Disk2vhd
		"CTXS",    // XenConverter
		"tap\x00": // XenServer blktap
		return true
	}
	// "vpc " (Virtual PC), "qemu" (qemu-img without force_size) and
	// anything unknown.
	return false
}

// sectors is the virtual size in 512-byte sectors, as QEMU computes it.
func (f *footer) sectors() int64 {
	if f.usesCurrentSize() {
		return int64(f.currentSize / 512)
	}
	return int64(f.cyls) * int64(f.heads) * int64(f.secsPerCyl)
}

// dynHeader is the 1024-byte Dynamic Disk Header of dynamic and
// differencing disks.
type dynHeader struct {
	tableOffset     uint64
	version         uint32
	maxTableEntries uint32
	blockSize       uint32
	parentName      string
}

// parseDynHeader decodes and checks the cookie and checksum of a dynamic
// disk header. QEMU does not verify this checksum; qimg does, as the
// specification asks, because every known writer sets it correctly.
func parseDynHeader(name string, b []byte) (dynHeader, error) {
	be := binary.BigEndian
	var h dynHeader
	if !bytes.Equal(b[:8], cookieDyn) {
		return h, image.FileErrorf(name, "dynamic disk header has no %q cookie: %w", cookieDyn, image.ErrCorrupt)
	}
	var c [dynHeaderSize]byte
	copy(c[:], b[:dynHeaderSize])
	clear(c[36:40])
	if sum := be.Uint32(b[36:]); checksum(c[:]) != sum {
		return h, image.FileErrorf(name, "dynamic disk header checksum is %#08x, should be %#08x: %w", sum, checksum(c[:]), image.ErrCorrupt)
	}
	h.tableOffset = be.Uint64(b[16:])
	h.version = be.Uint32(b[24:])
	h.maxTableEntries = be.Uint32(b[28:])
	h.blockSize = be.Uint32(b[32:])
	// The parent's name is UTF-16 big endian, NUL-padded.
	u := make([]uint16, 0, 256)
	for i := 64; i+1 < 64+512; i += 2 {
		v := be.Uint16(b[i:])
		if v == 0 {
			break
		}
		u = append(u, v)
	}
	h.parentName = string(utf16.Decode(u))
	return h, nil
}

// encodeDynHeader returns a dynamic disk header as qemu-img writes it.
func encodeDynHeader(tableOffset uint64, entries, blockSize uint32) []byte {
	be := binary.BigEndian
	b := make([]byte, dynHeaderSize)
	copy(b, cookieDyn)
	// The specification says 0xFFFFFFFF, but Microsoft's tools (and
	// qemu-img) write all 64 bits set.
	be.PutUint64(b[8:], ^uint64(0))
	be.PutUint64(b[16:], tableOffset)
	be.PutUint32(b[24:], 0x00010000)
	be.PutUint32(b[28:], entries)
	be.PutUint32(b[32:], blockSize)
	be.PutUint32(b[36:], checksum(b))
	return b
}

// bitmapSize is the size of the sector bitmap in front of each block, as
// QEMU computes it: one bit per sector, rounded up to whole sectors. For
// blocks smaller than 4 KiB QEMU's formula gives 0 (no bitmap); qimg
// follows it so that it finds the data where QEMU does.
func bitmapSize(blockSize int64) int64 { return (blockSize/(8*512) + 511) &^ 511 }

// geometry is QEMU's calculate_geometry: the CHS algorithm of the VHD
// specification, which for disks of 65535 x 16 x 63 sectors and more uses
// 255 sectors per track. The geometry may describe fewer sectors than
// asked for; roundedSize searches upwards for one that does not.
func geometry(totalSectors int64) (cyls uint16, heads, secs uint8) {
	total := min(totalSectors, maxGeometry)
	var cth, h, s int64
	if total >= 65535*16*63 {
		s, h = 255, 16
		cth = total / s
	} else {
		s = 17
		cth = total / s
		h = max((cth+1023)/1024, 4)
		if cth >= h*1024 || h > 16 {
			s, h = 31, 16
			cth = total / s
		}
		if cth >= h*1024 {
			s, h = 63, 16
			cth = total / s
		}
	}
	return uint16(cth / h), uint8(h), uint8(s)
}

// roundedSize is QEMU's calculate_rounded_image_size: the geometry and
// the number of sectors of a new disk of size bytes (a multiple of 512).
// Without force, the size is rounded up to the next size a CHS geometry
// describes exactly, so that a converted disk is never truncated; sizes
// beyond the largest geometry keep their size and get the maximum
// geometry. With force the geometry is the maximum and the size is kept.
func roundedSize(size int64, force bool) (cyls uint16, heads, secs uint8, sectors int64, err error) {
	if force {
		cyls, heads, secs = chsMaxC, chsMaxH, chsMaxS
	} else {
		total := min(maxGeometry, size/512)
		for i := int64(0); total > int64(cyls)*int64(heads)*int64(secs); i++ {
			cyls, heads, secs = geometry(total + i)
		}
	}
	if int64(cyls)*int64(heads)*int64(secs) == maxGeometry {
		sectors = size / 512
		if sectors > maxSectors {
			return 0, 0, 0, 0, fmt.Errorf("disk size %d is too large, the maximum is 2040 GiB: %w", size, image.ErrInvalidArgument)
		}
	} else {
		sectors = int64(cyls) * int64(heads) * int64(secs)
	}
	return cyls, heads, secs, sectors, nil
}

// VirtualSize returns the virtual size in bytes that a VHD created for a
// disk of size bytes gets, as `qemu-img create -f vpc` and `qemu-img
// convert -O vpc` compute it: size rounded up to whole sectors, then (unless
// forceSize) up to a size a CHS geometry describes exactly.
func VirtualSize(size int64, forceSize bool) (int64, error) {
	if size < 0 {
		return 0, fmt.Errorf("negative disk size %d: %w", size, image.ErrInvalidArgument)
	}
	_, _, _, sectors, err := roundedSize((size+511)&^511, forceSize)
	return sectors * 512, err
}
