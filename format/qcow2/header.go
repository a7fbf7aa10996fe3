package qcow2

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/qimg/qimg/image"
)

// Magic is the first four bytes of every qcow2 file: "QFI\xfb".
const Magic = 0x514649fb

// Sizes and limits from docs/interop/qcow2.rst and QEMU's block/qcow2.h.
const (
	headerV2Length  = 72
	headerV3Length  = 104
	minClusterBits  = 9
	maxClusterBits  = 21
	maxBackingName  = 1023
	maxL1Bytes      = 32 << 20 // QEMU's QCOW_MAX_L1_SIZE
	maxRefTableSize = 8 << 20  // QEMU's QCOW_MAX_REFTABLE_SIZE
	maxSnapshots    = 65536
	// maxVirtualSize keeps every guest offset computation far from int64
	// overflow; QEMU's own limit (the L1 size) is far lower.
	maxVirtualSize = 1 << 61
)

// Incompatible feature bits.
const (
	IncompatDirty           = 1 << 0
	IncompatCorrupt         = 1 << 1
	IncompatDataFile        = 1 << 2
	IncompatCompressionType = 1 << 3
	IncompatExtendedL2      = 1 << 4
	incompatKnown           = IncompatDirty | IncompatCorrupt | IncompatDataFile |
		IncompatCompressionType | IncompatExtendedL2
)

// Compatible and autoclear feature bits.
const (
	CompatLazyRefcounts        = 1 << 0
	AutoclearBitmaps           = 1 << 0
	AutoclearDataFileRaw       = 1 << 1
	autoclearKnown             = AutoclearBitmaps | AutoclearDataFileRaw
	cryptNone                  = 0
	CryptAES                   = 1
	CryptLUKS                  = 2
	CompressionZlib      uint8 = 0
	CompressionZstd      uint8 = 1
)

// Header extension types.
const (
	extEnd           = 0x00000000
	extBackingFormat = 0xe2792aca
	extFeatureNames  = 0x6803f857
	extBitmaps       = 0x23852875
	extCrypto        = 0x0537be77
	extDataFile      = 0x44415441
)

// Header is the fixed part of a qcow2 header plus its extensions, decoded
// but not interpreted. Field names follow docs/interop/qcow2.rst.
type Header struct {
	Version               uint32
	BackingFileOffset     uint64
	BackingFileSize       uint32
	ClusterBits           uint32
	Size                  uint64
	CryptMethod           uint32
	L1Size                uint32
	L1TableOffset         uint64
	RefcountTableOffset   uint64
	RefcountTableClusters uint32
	NbSnapshots           uint32
	SnapshotsOffset       uint64
	IncompatibleFeatures  uint64
	CompatibleFeatures    uint64
	AutoclearFeatures     uint64
	RefcountOrder         uint32
	HeaderLength          uint32
	CompressionType       uint8
	// ExtraFields holds header bytes past the fields qimg knows (from
	// byte 112 to HeaderLength); the spec says they must be kept.
	ExtraFields []byte

	BackingFile   string
	BackingFormat string
	DataFile      string
	FeatureNames  []FeatureName
	Bitmaps       *BitmapsExtension
	Crypto        *CryptoExtension
	// Unknown holds extensions qimg does not interpret, in file order.
	Unknown []RawExtension
}

// FeatureName is one entry of the feature name table extension.
type FeatureName struct {
	Type uint8 // 0 incompatible, 1 compatible, 2 autoclear
	Bit  uint8
	Name string
}

// BitmapsExtension locates the persistent dirty bitmap directory.
type BitmapsExtension struct {
	NbBitmaps     uint32
	DirectorySize uint64
	DirectoryOff  uint64
}

// CryptoExtension locates the LUKS header inside the image.
type CryptoExtension struct {
	Offset uint64
	Length uint64
}

// RawExtension is a header extension kept as bytes.
type RawExtension struct {
	Type uint32
	Data []byte
}

// ClusterSize is the cluster size in bytes.
func (h *Header) ClusterSize() int64 { return 1 << h.ClusterBits }

// RefcountBits is the width of one refcount entry.
func (h *Header) RefcountBits() int { return 1 << h.RefcountOrder }

// ExtendedL2 reports whether L2 entries carry subcluster bitmaps.
func (h *Header) ExtendedL2() bool { return h.IncompatibleFeatures&IncompatExtendedL2 != 0 }

// L2EntrySize is 8, or 16 with extended L2 entries.
func (h *Header) L2EntrySize() int64 {
	if h.ExtendedL2() {
		return 16
	}
	return 8
}

// L2Entries is the number of entries in one L2 table.
func (h *Header) L2Entries() int64 { return h.ClusterSize() / h.L2EntrySize() }

// Compat is the qemu-img name of the version: "0.10" or "1.1".
func (h *Header) Compat() string {
	if h.Version == 2 {
		return "0.10"
	}
	return "1.1"
}

// CompressionName is "zlib" or "zstd" as qemu-img prints it.
func (h *Header) CompressionName() string {
	if h.CompressionType == CompressionZstd {
		return "zstd"
	}
	return "zlib"
}

// ParseHeader decodes a header from the start of a file. buf must hold the
// whole first cluster (or the whole file if it is shorter); every offset and
// length inside is checked against buf before use, so hostile input cannot
// make it read out of bounds or allocate more than len(buf).
func ParseHeader(buf []byte) (*Header, error) {
	if len(buf) < headerV2Length {
		if len(buf) >= 4 && binary.BigEndian.Uint32(buf) == Magic {
			return nil, fmt.Errorf("header truncated (%d bytes): %w", len(buf), image.ErrCorrupt)
		}
		return nil, fmt.Errorf("file too short for a qcow2 header: %w", image.ErrWrongFormat)
	}
	be := binary.BigEndian
	if be.Uint32(buf) != Magic {
		return nil, fmt.Errorf("no qcow2 magic: %w", image.ErrWrongFormat)
	}
	h := &Header{
		Version:               be.Uint32(buf[4:]),
		BackingFileOffset:     be.Uint64(buf[8:]),
		BackingFileSize:       be.Uint32(buf[16:]),
		ClusterBits:           be.Uint32(buf[20:]),
		Size:                  be.Uint64(buf[24:]),
		CryptMethod:           be.Uint32(buf[32:]),
		L1Size:                be.Uint32(buf[36:]),
		L1TableOffset:         be.Uint64(buf[40:]),
		RefcountTableOffset:   be.Uint64(buf[48:]),
		RefcountTableClusters: be.Uint32(buf[56:]),
		NbSnapshots:           be.Uint32(buf[60:]),
		SnapshotsOffset:       be.Uint64(buf[64:]),
		RefcountOrder:         4,
		HeaderLength:          headerV2Length,
	}
	switch h.Version {
	case 2:
	case 3:
		if len(buf) < headerV3Length {
			return nil, fmt.Errorf("version 3 header truncated (%d bytes): %w", len(buf), image.ErrCorrupt)
		}
		h.IncompatibleFeatures = be.Uint64(buf[72:])
		h.CompatibleFeatures = be.Uint64(buf[80:])
		h.AutoclearFeatures = be.Uint64(buf[88:])
		h.RefcountOrder = be.Uint32(buf[96:])
		h.HeaderLength = be.Uint32(buf[100:])
		if h.HeaderLength < headerV3Length || h.HeaderLength%8 != 0 {
			return nil, fmt.Errorf("header_length %d is invalid (must be ≥ 104 and a multiple of 8): %w", h.HeaderLength, image.ErrCorrupt)
		}
		if uint64(h.HeaderLength) > uint64(len(buf)) {
			return nil, fmt.Errorf("header_length %d exceeds the first cluster: %w", h.HeaderLength, image.ErrCorrupt)
		}
		if h.HeaderLength > headerV3Length {
			h.CompressionType = buf[104]
		}
		if h.HeaderLength > 112 {
			h.ExtraFields = bytes.Clone(buf[112:h.HeaderLength])
		}
	default:
		return nil, fmt.Errorf("qcow2 version %d is not supported (only 2 and 3): %w", h.Version, image.ErrUnsupported)
	}
	if h.IncompatibleFeatures&^incompatKnown != 0 && h.ClusterBits >= minClusterBits && h.ClusterBits <= maxClusterBits {
		// The image is refused below. Like QEMU, read its feature name
		// table first (ignoring errors) so the message can name the
		// unknown feature; h is discarded with the error.
		_ = h.parseExtensions(buf)
	}
	if err := h.checkFixed(int64(len(buf))); err != nil {
		return nil, err
	}
	if err := h.parseExtensions(buf); err != nil {
		return nil, err
	}
	if err := h.parseBackingName(buf); err != nil {
		return nil, err
	}
	return h, nil
}

// checkFixed validates the fixed header fields that do not depend on the
// file's size.
func (h *Header) checkFixed(firstCluster int64) error {
	if h.ClusterBits < minClusterBits || h.ClusterBits > maxClusterBits {
		return fmt.Errorf("cluster_bits %d out of range %d..%d: %w", h.ClusterBits, minClusterBits, maxClusterBits, image.ErrCorrupt)
	}
	if h.RefcountOrder > 6 {
		return fmt.Errorf("refcount_order %d out of range 0..6: %w", h.RefcountOrder, image.ErrCorrupt)
	}
	if unknown := h.IncompatibleFeatures &^ incompatKnown; unknown != 0 {
		return fmt.Errorf("unknown incompatible feature %s%s: %w", bitList(unknown), h.featureNamesOf(0, unknown), image.ErrUnsupported)
	}
	if h.Size > maxVirtualSize {
		return fmt.Errorf("virtual size %d is too large: %w", h.Size, image.ErrLimit)
	}
	if h.CompressionType > CompressionZstd {
		return fmt.Errorf("unknown compression type %d: %w", h.CompressionType, image.ErrUnsupported)
	}
	if (h.CompressionType != CompressionZlib) != (h.IncompatibleFeatures&IncompatCompressionType != 0) {
		return fmt.Errorf("compression type %d does not match incompatible bit 3: %w", h.CompressionType, image.ErrCorrupt)
	}
	if h.ExtendedL2() && h.ClusterBits < 14 {
		return fmt.Errorf("extended L2 entries need clusters of at least 16 KiB: %w", image.ErrCorrupt)
	}
	if h.CryptMethod > CryptLUKS {
		return fmt.Errorf("unknown encryption method %d: %w", h.CryptMethod, image.ErrUnsupported)
	}
	if h.AutoclearFeatures&AutoclearDataFileRaw != 0 && h.IncompatibleFeatures&IncompatDataFile == 0 {
		// QEMU ignores the bit in this case; so do we (it is autoclear).
		h.AutoclearFeatures &^= AutoclearDataFileRaw
	}
	if int64(h.HeaderLength) > firstCluster || int64(h.HeaderLength) > h.ClusterSize() {
		return fmt.Errorf("header_length %d exceeds the first cluster: %w", h.HeaderLength, image.ErrCorrupt)
	}
	return nil
}

// parseExtensions walks the extension area that follows the header.
func (h *Header) parseExtensions(buf []byte) error {
	end := min(int64(len(buf)), h.ClusterSize())
	if h.BackingFileOffset != 0 && int64(h.BackingFileOffset) < end {
		end = int64(h.BackingFileOffset)
	}
	off := int64(h.HeaderLength)
	seen := map[uint32]bool{}
	be := binary.BigEndian
	for off+8 <= end {
		typ := be.Uint32(buf[off:])
		length := int64(be.Uint32(buf[off+4:]))
		off += 8
		if typ == extEnd {
			return nil
		}
		if length > end-off {
			return fmt.Errorf("header extension %#x at offset %d: length %d runs past the header cluster: %w", typ, off-8, length, image.ErrCorrupt)
		}
		data := buf[off : off+length]
		if seen[typ] && typ != extEnd {
			return fmt.Errorf("header extension %#x appears twice: %w", typ, image.ErrCorrupt)
		}
		seen[typ] = true
		if err := h.parseExtension(typ, data); err != nil {
			return err
		}
		off += (length + 7) &^ 7
	}
	return nil
}

func (h *Header) parseExtension(typ uint32, data []byte) error {
	be := binary.BigEndian
	switch typ {
	case extBackingFormat:
		h.BackingFormat = string(data)
	case extDataFile:
		h.DataFile = string(data)
	case extFeatureNames:
		for i := 0; i+48 <= len(data); i += 48 {
			name := data[i+2 : i+48]
			if n := bytes.IndexByte(name, 0); n >= 0 {
				name = name[:n]
			}
			h.FeatureNames = append(h.FeatureNames, FeatureName{Type: data[i], Bit: data[i+1], Name: string(name)})
		}
	case extBitmaps:
		if len(data) < 24 {
			return fmt.Errorf("bitmaps extension too short (%d bytes): %w", len(data), image.ErrCorrupt)
		}
		h.Bitmaps = &BitmapsExtension{
			NbBitmaps:     be.Uint32(data),
			DirectorySize: be.Uint64(data[8:]),
			DirectoryOff:  be.Uint64(data[16:]),
		}
	case extCrypto:
		if len(data) < 16 {
			return fmt.Errorf("encryption header extension too short (%d bytes): %w", len(data), image.ErrCorrupt)
		}
		h.Crypto = &CryptoExtension{Offset: be.Uint64(data), Length: be.Uint64(data[8:])}
	default:
		h.Unknown = append(h.Unknown, RawExtension{Type: typ, Data: bytes.Clone(data)})
	}
	return nil
}

func (h *Header) parseBackingName(buf []byte) error {
	if h.BackingFileOffset == 0 {
		if h.BackingFileSize != 0 {
			return fmt.Errorf("backing_file_size %d without backing_file_offset: %w", h.BackingFileSize, image.ErrCorrupt)
		}
		return nil
	}
	if h.BackingFileSize > maxBackingName {
		return fmt.Errorf("backing file name is %d bytes (limit %d): %w", h.BackingFileSize, maxBackingName, image.ErrCorrupt)
	}
	limit := min(uint64(len(buf)), uint64(h.ClusterSize()))
	// Compare without adding first: a huge offset would wrap the sum.
	if h.BackingFileOffset > limit || uint64(h.BackingFileSize) > limit-h.BackingFileOffset {
		return fmt.Errorf("backing file name at offset %d runs past the first cluster: %w", h.BackingFileOffset, image.ErrCorrupt)
	}
	h.BackingFile = string(buf[h.BackingFileOffset : h.BackingFileOffset+uint64(h.BackingFileSize)])
	return nil
}

// bitList names the set bits of mask: "bit 10 (0x400)" or
// "bits 10, 12 (0x1400)".
func bitList(mask uint64) string {
	var bits []string
	for b := 0; b < 64; b++ {
		if mask&(1<<b) != 0 {
			bits = append(bits, fmt.Sprint(b))
		}
	}
	if len(bits) == 1 {
		return fmt.Sprintf("bit %s (%#x)", bits[0], mask)
	}
	return fmt.Sprintf("bits %s (%#x)", strings.Join(bits, ", "), mask)
}

// featureNamesOf renders the names the image gives to bits in mask, for
// error messages such as QEMU's "Unsupported qcow2 feature(s): …".
func (h *Header) featureNamesOf(typ uint8, mask uint64) string {
	var names []string
	for _, f := range h.FeatureNames {
		if f.Type == typ && f.Bit < 64 && mask&(1<<f.Bit) != 0 {
			names = append(names, f.Name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf(" (%q)", names)
}

// Encode serialises the header and its extensions into one cluster-sized
// buffer, the layout qimg writes at offset 0: fixed fields, extensions,
// end marker, then the backing file name. It fails if it does not fit.
func (h *Header) Encode() ([]byte, error) {
	cs := h.ClusterSize()
	buf := make([]byte, cs)
	be := binary.BigEndian
	be.PutUint32(buf, Magic)
	be.PutUint32(buf[4:], h.Version)
	be.PutUint32(buf[20:], h.ClusterBits)
	be.PutUint64(buf[24:], h.Size)
	be.PutUint32(buf[32:], h.CryptMethod)
	be.PutUint32(buf[36:], h.L1Size)
	be.PutUint64(buf[40:], h.L1TableOffset)
	be.PutUint64(buf[48:], h.RefcountTableOffset)
	be.PutUint32(buf[56:], h.RefcountTableClusters)
	be.PutUint32(buf[60:], h.NbSnapshots)
	be.PutUint64(buf[64:], h.SnapshotsOffset)
	off := int64(headerV2Length)
	if h.Version >= 3 {
		if h.HeaderLength < headerV3Length {
			h.HeaderLength = 112
		}
		be.PutUint64(buf[72:], h.IncompatibleFeatures)
		be.PutUint64(buf[80:], h.CompatibleFeatures)
		be.PutUint64(buf[88:], h.AutoclearFeatures)
		be.PutUint32(buf[96:], h.RefcountOrder)
		be.PutUint32(buf[100:], h.HeaderLength)
		if h.HeaderLength > headerV3Length {
			buf[104] = h.CompressionType
		}
		if h.HeaderLength > 112 {
			copy(buf[112:h.HeaderLength], h.ExtraFields)
		}
		off = int64(h.HeaderLength)
	}
	exts := h.extensions()
	for _, e := range exts {
		need := 8 + (int64(len(e.Data))+7)&^7
		if off+need+8 > cs {
			return nil, fmt.Errorf("header extensions do not fit in one %d-byte cluster: %w", cs, image.ErrLimit)
		}
		be.PutUint32(buf[off:], e.Type)
		be.PutUint32(buf[off+4:], uint32(len(e.Data)))
		copy(buf[off+8:], e.Data)
		off += need
	}
	if off+8 > cs {
		return nil, fmt.Errorf("header of %d bytes leaves no room for the end of extensions in one %d-byte cluster: %w", off, cs, image.ErrLimit)
	}
	off += 8 // end-of-extensions marker (zeros)
	if h.BackingFile != "" {
		if len(h.BackingFile) > maxBackingName || off+int64(len(h.BackingFile)) > cs {
			return nil, fmt.Errorf("backing file name of %d bytes does not fit: %w", len(h.BackingFile), image.ErrLimit)
		}
		h.BackingFileOffset = uint64(off)
		h.BackingFileSize = uint32(len(h.BackingFile))
		copy(buf[off:], h.BackingFile)
		off += int64(len(h.BackingFile))
	} else {
		h.BackingFileOffset, h.BackingFileSize = 0, 0
	}
	be.PutUint64(buf[8:], h.BackingFileOffset)
	be.PutUint32(buf[16:], h.BackingFileSize)
	return buf[:off], nil
}

// extensions lists the header extensions to write, known ones first in the
// order QEMU writes them, then unknown ones unchanged.
func (h *Header) extensions() []RawExtension {
	be := binary.BigEndian
	var exts []RawExtension
	if h.BackingFormat != "" {
		exts = append(exts, RawExtension{extBackingFormat, []byte(h.BackingFormat)})
	}
	if h.DataFile != "" {
		exts = append(exts, RawExtension{extDataFile, []byte(h.DataFile)})
	}
	if h.Crypto != nil {
		d := make([]byte, 16)
		be.PutUint64(d, h.Crypto.Offset)
		be.PutUint64(d[8:], h.Crypto.Length)
		exts = append(exts, RawExtension{extCrypto, d})
	}
	if h.Version >= 3 && len(h.FeatureNames) > 0 {
		d := make([]byte, 48*len(h.FeatureNames))
		for i, f := range h.FeatureNames {
			d[i*48] = f.Type
			d[i*48+1] = f.Bit
			copy(d[i*48+2:i*48+48], f.Name)
		}
		exts = append(exts, RawExtension{extFeatureNames, d})
	}
	if h.Bitmaps != nil {
		d := make([]byte, 24)
		be.PutUint32(d, h.Bitmaps.NbBitmaps)
		be.PutUint64(d[8:], h.Bitmaps.DirectorySize)
		be.PutUint64(d[16:], h.Bitmaps.DirectoryOff)
		exts = append(exts, RawExtension{extBitmaps, d})
	}
	return append(exts, h.Unknown...)
}

// defaultFeatureNames is the table QEMU writes into new v3 images so that
// other tools can name the bits in error messages.
func defaultFeatureNames() []FeatureName {
	return []FeatureName{
		{0, 0, "dirty bit"},
		{0, 1, "corrupt bit"},
		{0, 2, "external data file"},
		{0, 3, "compression type"},
		{0, 4, "extended L2 entries"},
		{1, 0, "lazy refcounts"},
		{2, 0, "bitmaps"},
		{2, 1, "raw external data"},
	}
}
