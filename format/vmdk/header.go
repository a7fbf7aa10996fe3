package vmdk

import (
	"encoding/binary"

	"github.com/qimg/qimg/image"
)

// On-disk constants of the hosted sparse extent ("VMDK 4"), as QEMU's
// block/vmdk.c and VMware's "Virtual Disk Format 5.0" define them.
const (
	sectorSize = 512

	magicSparse = "KDMV" // hosted sparse extent
	magicCOWD   = "COWD" // ESX/VMFS sparse extent (VMDK 3): not supported

	flagNLDetect  = 1 << 0  // the newline check bytes are valid
	flagRGD       = 1 << 1  // a redundant grain directory exists
	flagZeroGrain = 1 << 2  // a grain table entry of 1 means "zeroed grain"
	flagCompress  = 1 << 16 // grains are compressed
	flagMarkers   = 1 << 17 // grains and metadata are preceded by markers

	compressNone    = 0
	compressDeflate = 1

	// gdAtEnd in the header's gdOffset says the grain directory is found
	// through the footer near the end of the file (a stream).
	gdAtEnd = ^uint64(0)

	gteZeroed = 1 // grain table entry of a zeroed grain (with flagZeroGrain)

	// Marker types of a stream-optimized extent; a grain marker has a
	// non-zero size instead.
	markerEOS    = 0
	markerGT     = 1
	markerGD     = 2
	markerFooter = 3

	// Limits. QEMU refuses grain tables of more than 512 entries, grains
	// larger than 1 GiB and grain directories of more than 32 Mi entries.
	maxGTEs       = 512
	maxGrainSects = 0x200000
	maxGDEntries  = 32 << 20
	// A compressed grain is inflated into a buffer of one grain, so its
	// size bounds the memory a read takes; VMware and QEMU use 64 KiB.
	maxCompressedGrain = 2 << 20
	// maxSectors bounds the capacity so that byte offsets never overflow.
	maxSectors = (1 << 62) / sectorSize
	// maxDescriptor bounds a descriptor file or embedded descriptor read
	// into memory, as QEMU's vmdk_read_desc does (1 MiB).
	maxDescriptor = 1 << 20
)

// header is the 512-byte header of a hosted sparse extent. All fields are
// little-endian on disk; offsets and sizes are in sectors.
type header struct {
	Version          uint32
	Flags            uint32
	Capacity         uint64 // virtual sectors in this extent
	GrainSize        uint64 // sectors per grain
	DescriptorOffset uint64
	DescriptorSize   uint64
	NumGTEsPerGT     uint32
	RGDOffset        uint64
	GDOffset         uint64
	OverHead         uint64 // sectors before the first grain
	UncleanShutdown  uint8
	CompressAlgo     uint16
}

// parseHeader decodes a header sector; b must hold at least 512 bytes and
// start with the magic.
func parseHeader(b []byte) header {
	le := binary.LittleEndian
	return header{
		Version:          le.Uint32(b[4:]),
		Flags:            le.Uint32(b[8:]),
		Capacity:         le.Uint64(b[12:]),
		GrainSize:        le.Uint64(b[20:]),
		DescriptorOffset: le.Uint64(b[28:]),
		DescriptorSize:   le.Uint64(b[36:]),
		NumGTEsPerGT:     le.Uint32(b[44:]),
		RGDOffset:        le.Uint64(b[48:]),
		GDOffset:         le.Uint64(b[56:]),
		OverHead:         le.Uint64(b[64:]),
		UncleanShutdown:  b[72],
		CompressAlgo:     le.Uint16(b[77:]),
	}
}

// encode writes the header into a 512-byte sector, with the magic and the
// newline check bytes VMware uses to detect text-mode transfer damage.
func (h *header) encode() []byte {
	b := make([]byte, sectorSize)
	le := binary.LittleEndian
	copy(b, magicSparse)
	le.PutUint32(b[4:], h.Version)
	le.PutUint32(b[8:], h.Flags)
	le.PutUint64(b[12:], h.Capacity)
	le.PutUint64(b[20:], h.GrainSize)
	le.PutUint64(b[28:], h.DescriptorOffset)
	le.PutUint64(b[36:], h.DescriptorSize)
	le.PutUint32(b[44:], h.NumGTEsPerGT)
	le.PutUint64(b[48:], h.RGDOffset)
	le.PutUint64(b[56:], h.GDOffset)
	le.PutUint64(b[64:], h.OverHead)
	b[72] = h.UncleanShutdown
	copy(b[73:77], "\n \r\n")
	le.PutUint16(b[77:], h.CompressAlgo)
	return b
}

// marker is the 16-byte prefix of a stream-optimized metadata sector:
// val is the number of sectors that follow, size 0, then the type.
func encodeMarker(val uint64, typ uint32) []byte {
	b := make([]byte, sectorSize)
	binary.LittleEndian.PutUint64(b, val)
	binary.LittleEndian.PutUint32(b[12:], typ)
	return b
}

// check validates the fields a reader relies on before anything is
// allocated from them. fileSize is the extent file's size in bytes.
func (h *header) check(name string, fileSize int64) error {
	if h.Version > 3 {
		return image.FileErrorf(name, "VMDK version %d: %w", h.Version, image.ErrUnsupported)
	}
	switch h.CompressAlgo {
	case compressNone, compressDeflate:
	default:
		return image.FileErrorf(name, "compression algorithm %d: %w", h.CompressAlgo, image.ErrUnsupported)
	}
	if h.NumGTEsPerGT == 0 {
		return image.FileErrorf(name, "grain table of 0 entries: %w", image.ErrCorrupt)
	}
	if h.NumGTEsPerGT > maxGTEs {
		return image.FileErrorf(name, "grain table of %d entries (at most %d): %w", h.NumGTEsPerGT, maxGTEs, image.ErrLimit)
	}
	if h.GrainSize == 0 {
		return image.FileErrorf(name, "grain size 0: %w", image.ErrCorrupt)
	}
	if h.GrainSize > maxGrainSects {
		return image.FileErrorf(name, "grain of %d sectors (at most %d): %w", h.GrainSize, maxGrainSects, image.ErrLimit)
	}
	if h.compressed() && h.GrainSize*sectorSize > maxCompressedGrain {
		return image.FileErrorf(name, "compressed grain of %d bytes (at most %d): %w", h.GrainSize*sectorSize, maxCompressedGrain, image.ErrLimit)
	}
	if h.Capacity > maxSectors {
		return image.FileErrorf(name, "capacity of %d sectors: %w", h.Capacity, image.ErrLimit)
	}
	fileSectors := uint64((fileSize + sectorSize - 1) / sectorSize)
	if h.OverHead > fileSectors {
		// QEMU: "File truncated, expecting at least ... bytes".
		return image.FileErrorf(name, "file truncated: %d bytes, grains start at %d: %w", fileSize, h.OverHead*sectorSize, image.ErrCorrupt)
	}
	gdEntries := h.gdEntries()
	if gdEntries > maxGDEntries {
		return image.FileErrorf(name, "grain directory of %d entries (at most %d): %w", gdEntries, maxGDEntries, image.ErrLimit)
	}
	if h.GDOffset > fileSectors || h.GDOffset*sectorSize+gdEntries*4 > uint64(fileSize) {
		return image.FileErrorf(name, "grain directory (sector %d, %d entries) past end of file (%d bytes): %w", h.GDOffset, gdEntries, fileSize, image.ErrCorrupt)
	}
	if h.GDOffset == 0 && gdEntries > 0 {
		return image.FileErrorf(name, "grain directory at sector 0: %w", image.ErrCorrupt)
	}
	return nil
}

func (h *header) compressed() bool { return h.CompressAlgo == compressDeflate }

// gdEntries is the number of grain tables needed to cover the capacity.
// Valid after the GTE and grain size checks (no overflow: both bounded).
func (h *header) gdEntries() uint64 {
	span := uint64(h.NumGTEsPerGT) * h.GrainSize
	return (h.Capacity + span - 1) / span
}
