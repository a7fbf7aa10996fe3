package lvm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"

	"github.com/qimg/qimg/image"
)

// On-disk constants of LVM2 (lib/label/label.h, lib/format_text/layout.h).
const (
	sectorSize    = 512
	labelScanSecs = 4 // the label is in one of the first four sectors
	labelID       = "LABELONE"
	labelType     = "LVM2 001"
	mdaMagic      = "\x20LVM2 x[5A%r0N*>"
	mdaHeaderSize = 512
	mdaVersion    = 1
	rawLocnIgnore = 1          // RAW_LOCN_IGNORED: the area is kept but not used
	initialCRC    = 0xf597a6cf // INITIAL_CRC
	idLen         = 32
	maxAreas      = 16 // more than fit in the label sector's remaining bytes
)

var le = binary.LittleEndian

// crc is LVM's calc_crc: CRC-32 (IEEE, reflected) started at initial
// with neither the customary pre- nor post-inversion, which the Go
// package applies, hence the two complements.
func crc(initial uint32, b []byte) uint32 {
	return ^crc32.Update(^initial, crc32.IEEETable, b)
}

// Area is a byte range of a physical volume named by its PV header: a
// data area (where extents start) or a metadata area. A data area of
// Size 0 runs to the end of the device.
type Area struct {
	Offset, Size int64
}

// PVHeader is what the label sector of an LVM2 physical volume says: the
// PV's UUID (as LVM prints it, in dashed groups), the device size when
// it was labelled, and where its data and metadata areas are.
type PVHeader struct {
	// Sector is the sector (0-3) that holds the label; pvcreate uses 1.
	Sector        int
	UUID          string
	DeviceSize    int64
	DataAreas     []Area
	MetadataAreas []Area
}

// ReadPVHeader reads the LVM2 label of img, as pvs finds it: a sector
// starting "LABELONE" among the first four, whose own sector number and
// checksum agree, of type "LVM2 001", followed by the PV header. An image
// with no label is image.ErrWrongFormat; a damaged label or header is
// image.ErrCorrupt. name is the image's name, for error messages.
func ReadPVHeader(img image.Image, name string) (*PVHeader, error) {
	n := min(img.Size(), labelScanSecs*sectorSize)
	buf := make([]byte, max(n, 0))
	if err := readFull(img, name, buf, 0, "the label sectors"); err != nil {
		return nil, err
	}
	for s := 0; (s+1)*sectorSize <= len(buf); s++ {
		sec := buf[s*sectorSize : (s+1)*sectorSize]
		if string(sec[:8]) != labelID {
			continue
		}
		if got := le.Uint64(sec[8:]); got != uint64(s) {
			// LVM ignores a label that claims another sector (a copy
			// of a PV's start written at an offset, say).
			continue
		}
		if sum, want := crc(initialCRC, sec[20:]), le.Uint32(sec[16:]); sum != want {
			return nil, image.FileErrorf(name, "LVM label in sector %d: checksum %#08x, computed %#08x: %w", s, want, sum, image.ErrCorrupt)
		}
		if t := string(sec[24:32]); t != labelType {
			return nil, image.FileErrorf(name, "LVM label of type %q, not %q: %w", t, labelType, image.ErrUnsupported)
		}
		return parsePVHeader(sec, s, name)
	}
	return nil, image.FileErrorf(name, "no LVM2 label in the first %d sectors: %w", labelScanSecs, image.ErrWrongFormat)
}

// parsePVHeader reads struct pv_header, which starts at the label's
// offset_xl: the UUID, the device size, then two lists of (offset, size)
// pairs, each ended by a zero offset: data areas, then metadata areas.
func parsePVHeader(sec []byte, s int, name string) (*PVHeader, error) {
	off := int64(le.Uint32(sec[20:]))
	if off < 32 || off > sectorSize-idLen-8 {
		return nil, image.FileErrorf(name, "LVM label: PV header at offset %d of the label sector: %w", off, image.ErrCorrupt)
	}
	p := sec[off:]
	uuid, err := formatUUID(p[:idLen])
	if err != nil {
		return nil, image.FileErrorf(name, "LVM PV header: %v: %w", err, image.ErrCorrupt)
	}
	h := &PVHeader{Sector: s, UUID: uuid}
	size := le.Uint64(p[idLen:])
	if size > math.MaxInt64 {
		return nil, image.FileErrorf(name, "LVM PV header: device size %d: %w", size, image.ErrCorrupt)
	}
	h.DeviceSize = int64(size)
	p = p[idLen+8:]
	for list := range 2 {
		var areas []Area
		for {
			if len(p) < 16 {
				return nil, image.FileErrorf(name, "LVM PV header: area list runs past the label sector: %w", image.ErrCorrupt)
			}
			o, n := le.Uint64(p), le.Uint64(p[8:])
			p = p[16:]
			if o == 0 {
				break
			}
			if o > math.MaxInt64 || n > math.MaxInt64-o {
				return nil, image.FileErrorf(name, "LVM PV header: area at %d of %d bytes: %w", o, n, image.ErrCorrupt)
			}
			if len(areas) == maxAreas {
				return nil, image.FileErrorf(name, "LVM PV header: more than %d areas: %w", maxAreas, image.ErrCorrupt)
			}
			areas = append(areas, Area{int64(o), int64(n)})
		}
		if list == 0 {
			h.DataAreas = areas
		} else {
			h.MetadataAreas = areas
		}
	}
	return h, nil
}

// formatUUID turns the 32 characters of an LVM id into the dashed form
// LVM prints and writes in its metadata (6-4-4-4-4-4-6).
func formatUUID(id []byte) (string, error) {
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '!' || c == '#') {
			return "", errors.New("UUID " + quoteBytes(id) + " has characters LVM never uses")
		}
	}
	var b bytes.Buffer
	for i, n := range []int{6, 4, 4, 4, 4, 4, 6} {
		if i > 0 {
			b.WriteByte('-')
		}
		b.Write(id[:n])
		id = id[n:]
	}
	return b.String(), nil
}

func quoteBytes(b []byte) string {
	const hex = "0123456789abcdef"
	out := []byte{'"'}
	for _, c := range b {
		if c >= ' ' && c < 0x7f && c != '"' && c != '\\' {
			out = append(out, c)
		} else {
			out = append(out, '\\', 'x', hex[c>>4], hex[c&15])
		}
	}
	return string(append(out, '"'))
}

// ReadMetadata returns the current metadata text of each metadata area
// of the PV that is in use: none for a PV in no volume group (pvcreate
// alone) or whose areas are all marked ignored, usually one, two when
// the PV keeps a second copy at its end. Each text is checked against
// its checksum and cut at its terminating NUL.
//
// A metadata area starts with a 512-byte mda_header (checksum, magic,
// version, its own position and size, then raw_locn entries); the first
// raw_locn gives the offset (from the area's start), size and checksum of
// the text. The rest of the area is a circular buffer: a text that runs
// past its end continues right after the mda_header.
func ReadMetadata(img image.Image, name string, h *PVHeader) ([][]byte, error) {
	var texts [][]byte
	for i, a := range h.MetadataAreas {
		text, err := readMDA(img, name, i, a)
		if err != nil {
			return nil, err
		}
		if text != nil {
			texts = append(texts, text)
		}
	}
	return texts, nil
}

func readMDA(img image.Image, name string, i int, a Area) ([]byte, error) {
	bad := func(format string, args ...any) error {
		return image.FileErrorf(name, "LVM metadata area %d at %d: "+format, append([]any{i, a.Offset}, args...)...)
	}
	if a.Size <= mdaHeaderSize {
		return nil, bad("%d bytes, too small for its header: %w", a.Size, image.ErrCorrupt)
	}
	hdr := make([]byte, mdaHeaderSize)
	if err := readFull(img, name, hdr, a.Offset, "an LVM metadata area header"); err != nil {
		return nil, err
	}
	if sum, want := crc(initialCRC, hdr[4:]), le.Uint32(hdr); sum != want {
		return nil, bad("header checksum %#08x, computed %#08x: %w", want, sum, image.ErrCorrupt)
	}
	if string(hdr[4:20]) != mdaMagic {
		return nil, bad("bad magic %s: %w", quoteBytes(hdr[4:20]), image.ErrCorrupt)
	}
	if v := le.Uint32(hdr[20:]); v != mdaVersion {
		return nil, bad("header version %d: %w", v, image.ErrUnsupported)
	}
	if start, size := le.Uint64(hdr[24:]), le.Uint64(hdr[32:]); start != uint64(a.Offset) || size != uint64(a.Size) {
		return nil, bad("header says it is at %d, %d bytes, the PV header at %d, %d bytes: %w", start, size, a.Offset, a.Size, image.ErrCorrupt)
	}
	// raw_locns[0] is the committed metadata; [1], if any, is a
	// precommitted copy that no command finished writing.
	rl := hdr[40:]
	off, size, sum, flags := le.Uint64(rl), le.Uint64(rl[8:]), le.Uint32(rl[16:]), le.Uint32(rl[20:])
	if off == 0 || flags&rawLocnIgnore != 0 {
		return nil, nil
	}
	if size == 0 || size > MaxMetadataSize {
		return nil, bad("metadata text of %d bytes: %w", size, limitOrCorrupt(size))
	}
	if off < mdaHeaderSize || off >= uint64(a.Size) || size > uint64(a.Size)-mdaHeaderSize {
		return nil, bad("metadata text at %d, %d bytes, outside the area: %w", off, size, image.ErrCorrupt)
	}
	text := make([]byte, size)
	first := min(size, uint64(a.Size)-off)
	if err := readFull(img, name, text[:first], a.Offset+int64(off), "LVM metadata text"); err != nil {
		return nil, err
	}
	// With size at most the area less its header, a wrapped part ends
	// before the text's start: the two never overlap.
	if wrap := size - first; wrap > 0 {
		if err := readFull(img, name, text[first:], a.Offset+mdaHeaderSize, "LVM metadata text"); err != nil {
			return nil, err
		}
	}
	if got := crc(initialCRC, text); got != sum {
		return nil, bad("metadata text checksum %#08x, computed %#08x: %w", sum, got, image.ErrCorrupt)
	}
	if z := bytes.IndexByte(text, 0); z >= 0 {
		text = text[:z]
	}
	return text, nil
}

func limitOrCorrupt(size uint64) error {
	if size == 0 {
		return image.ErrCorrupt
	}
	return image.ErrLimit
}

// readFull reads len(b) bytes at off; running past the image's end is
// corruption (a structure that points outside the disk).
func readFull(img image.Image, name string, b []byte, off int64, what string) error {
	if len(b) == 0 {
		return nil
	}
	if off < 0 || off > img.Size() || int64(len(b)) > img.Size()-off {
		return image.FileErrorf(name, "%s at %d (%d bytes) past the end of the image (%d bytes): %w", what, off, len(b), img.Size(), image.ErrCorrupt)
	}
	n, err := img.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = image.FileErrorf(name, "%s at %d: short read: %w", what, off, image.ErrCorrupt)
	}
	return err
}
