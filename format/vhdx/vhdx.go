package vhdx

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/qimg/qimg/image"
)

// Layout of the header section ([MS-VHDX] 2.1).
const (
	mib            = 1 << 20
	headerSection  = mib       // file identifier, headers, region tables
	header1Offset  = 64 << 10  // first header
	header2Offset  = 128 << 10 // second header
	region1Offset  = 192 << 10 // first region table
	region2Offset  = 256 << 10 // second region table
	headerSize     = 4 << 10   // the CRC covers 4 KiB of each header
	regionSize     = 64 << 10  // and 64 KiB of each region table
	metaTableSize  = 64 << 10  // metadata table: header + 2047 entries
	maxEntries     = 2047      // region and metadata table entry limit
	minBlockSize   = 1 << 20
	maxBlockSize   = 256 << 20
	maxVirtualSize = 64 << 40 // the specification's limit
	// sectorsPerChunk is 2^23: one sector bitmap block covers 2^23
	// logical sectors, which fixes the chunk ratio.
	sectorsPerChunk = 1 << 23
)

// Payload block states (the low 3 bits of a BAT entry).
const (
	stateNotPresent       = 0
	stateUndefined        = 1
	stateZero             = 2
	stateUnmapped         = 3
	stateUnmappedV095     = 5 // UNMAPPED as numbered by draft 0.95, still read by QEMU
	stateFullyPresent     = 6
	statePartiallyPresent = 7

	batStateMask  = 7
	batOffsetMask = ^uint64(mib - 1) // FileOffsetMB, bits 20-63
)

// GUIDs as stored on disk: Microsoft's mixed-endian layout.
var (
	guidBAT          = msGUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
	guidMetadata     = msGUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
	guidFileParams   = msGUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
	guidVirtualSize  = msGUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
	guidPage83       = msGUID("BECA12AB-B2E6-4523-93EF-C309E000C746")
	guidLogicalSect  = msGUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
	guidPhysicalSect = msGUID("CDA348C7-445D-4471-9CC9-E9885251C556")
	guidParentLoc    = msGUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
)

// msGUID turns the textual form of a GUID into its on-disk bytes: the
// first three groups little-endian, the last two as written.
func msGUID(s string) [16]byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		panic("bad GUID " + s)
	}
	var g [16]byte
	g[0], g[1], g[2], g[3] = b[3], b[2], b[1], b[0]
	g[4], g[5] = b[5], b[4]
	g[6], g[7] = b[7], b[6]
	copy(g[8:], b[8:])
	return g
}

// guidString formats on-disk GUID bytes the way Windows prints them.
func guidString(g [16]byte) string {
	le := binary.LittleEndian
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X", le.Uint32(g[0:]), le.Uint16(g[4:]), le.Uint16(g[6:]), g[8:10], g[10:])
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crcValid checks a structure whose CRC-32C field at offset 4 was zero
// when the CRC was computed. buf is modified and restored.
func crcValid(buf []byte) bool {
	want := binary.LittleEndian.Uint32(buf[4:])
	var saved [4]byte
	copy(saved[:], buf[4:8])
	clear(buf[4:8])
	got := crc32.Checksum(buf, castagnoli)
	copy(buf[4:8], saved[:])
	return got == want
}

// Detect reports whether head, the first bytes of a file (4096 of them,
// zero padded if the file is shorter), starts with the VHDX file
// identifier, as QEMU's vhdx_probe decides.
func Detect(head []byte) bool {
	return len(head) >= 8 && string(head[:8]) == "vhdxfile"
}

// Params are the VHDX metadata items and header fields a caller may want
// to show (qemu-img info shows BlockSize as cluster_size).
type Params struct {
	// BlockSize is the payload block size, a power of two from 1 MiB to
	// 256 MiB.
	BlockSize int64
	// LogicalSectorSize and PhysicalSectorSize are 512 or 4096.
	LogicalSectorSize  uint32
	PhysicalSectorSize uint32
	// LeaveBlocksAllocated is set in fixed disks: blocks are never freed.
	LeaveBlocksAllocated bool
	// VirtualDiskSize is the size stored in the metadata, in bytes.
	VirtualDiskSize uint64
	// Page83 is the disk's SCSI page 83 identifier, formatted as a GUID.
	Page83 string
	// Sequence is the sequence number of the current header, and
	// CurrentHeader which copy (1 or 2) it is.
	Sequence      uint64
	CurrentHeader int
	// DataWriteGUID changes whenever guest-visible data changes.
	DataWriteGUID string
}

// Image is an open VHDX image. It implements image.Image; ReadAt and
// Extent may be called from many goroutines at once.
type Image struct {
	r        io.ReaderAt
	closer   io.Closer
	name     string
	fileSize int64
	size     int64 // virtual size in bytes
	params   Params
	bits     uint     // log2 of the block size
	bat      []uint64 // payload entries only, one per block
	batOff   uint64   // where the BAT region starts in the file
	// qemuRegions are the file ranges QEMU registers, in its order: the
	// log, then every region table entry; Check tests blocks against them.
	qemuRegions []span
	// forCheck leaves blocks past the end of the file or overlapping
	// other structures for Check to report instead of refusing the image.
	forCheck bool
}

var _ image.Image = (*Image)(nil)

// Open opens the VHDX image at path read-only.
func Open(path string) (*Image, error) {
	return image.OpenFile(path, NewReader, (*Image).ownFile)
}

// NewReader reads a VHDX image of size bytes held by r (a file, a
// download, a member of an archive); name is used in error messages. Close
// does not close r.
func NewReader(r io.ReaderAt, size int64, name string) (*Image, error) {
	return newReader(r, size, name, false)
}

// OpenForCheck opens the VHDX image at path for Check, as qemu-img check
// opens it: BAT entries that Open refuses (blocks past the end of the
// file or over other structures) are left for Check to report.
func OpenForCheck(path string) (*Image, error) {
	return image.OpenFile(path, NewCheckReader, (*Image).ownFile)
}

// NewCheckReader reads an image held by r for Check, as OpenForCheck
// opens a file.
func NewCheckReader(r io.ReaderAt, size int64, name string) (*Image, error) {
	return newReader(r, size, name, true)
}

func newReader(r io.ReaderAt, size int64, name string, forCheck bool) (*Image, error) {
	if size < 0 {
		return nil, image.FileErrorf(name, "negative file size %d: %w", size, image.ErrInvalidArgument)
	}
	img := &Image{r: r, name: name, fileSize: size, forCheck: forCheck}
	if err := img.open(); err != nil {
		return nil, err
	}
	return img, nil
}

// Size is the virtual disk size in bytes.
func (img *Image) Size() int64 { return img.size }

// Params returns the image's metadata.
func (img *Image) Params() Params { return img.params }

// Subformat is "fixed" for a disk whose blocks stay allocated (the
// leave-blocks-allocated flag, which qemu-img sets for subformat=fixed)
// and "dynamic" otherwise, as qemu-img's subformat option names them.
func (img *Image) Subformat() string {
	if img.params.LeaveBlocksAllocated {
		return "fixed"
	}
	return "dynamic"
}

// Close releases the file if Open opened it.
func (img *Image) Close() error {
	if img.closer != nil {
		c := img.closer
		img.closer = nil
		return c.Close()
	}
	return nil
}

func (img *Image) errorf(class error, format string, args ...any) error {
	return image.FileErrorf(img.name, "%s: %w", fmt.Sprintf(format, args...), class)
}

// readMeta reads a small metadata structure at off. Bytes past the end of
// the file read as zeros, as they do in QEMU, so a truncated structure
// fails its own checks (signature, CRC) rather than an I/O error.
func (img *Image) readMeta(off, n int64) ([]byte, error) {
	buf := make([]byte, n)
	if off >= img.fileSize {
		return buf, nil
	}
	k := min(n, img.fileSize-off)
	if _, err := img.r.ReadAt(buf[:k], off); err != nil && !errors.Is(err, io.EOF) {
		return nil, image.FileErrorf(img.name, "reading %d bytes at %d: %w", k, off, err)
	}
	return buf, nil
}

// span is a byte range of the file holding a structure.
type span struct {
	what       string
	start, end uint64
}

func (s span) overlaps(start, end uint64) bool { return start < s.end && s.start < end }

// header is the part of a VHDX header this package uses.
type header struct {
	seq           uint64
	dataWriteGUID [16]byte
	logGUID       [16]byte
	logVersion    uint16
	version       uint16
	logLength     uint32
	logOffset     uint64
	raw           []byte // the first 80 bytes, to compare two headers
}

// parseHeader validates one header copy: checksum, signature, version
// (QEMU's rules for a valid header). The returned string says why not.
func parseHeader(buf []byte) (*header, string) {
	if string(buf[:4]) != "head" {
		return nil, "no \"head\" signature"
	}
	if !crcValid(buf) {
		return nil, "bad CRC-32C"
	}
	le := binary.LittleEndian
	h := &header{
		seq:        le.Uint64(buf[8:]),
		logVersion: le.Uint16(buf[64:]),
		version:    le.Uint16(buf[66:]),
		logLength:  le.Uint32(buf[68:]),
		logOffset:  le.Uint64(buf[72:]),
		raw:        bytes.Clone(buf[:80]),
	}
	copy(h.dataWriteGUID[:], buf[32:48])
	copy(h.logGUID[:], buf[48:64])
	if h.version != 1 {
		return nil, fmt.Sprintf("version %d, not 1", h.version)
	}
	return h, ""
}

func (img *Image) open() error {
	sig, err := img.readMeta(0, 8)
	if err != nil {
		return err
	}
	if !Detect(sig) {
		return img.errorf(image.ErrWrongFormat, "no \"vhdxfile\" signature: not a VHDX image")
	}

	// Headers: the valid one with the higher sequence number is current.
	var hs [2]*header
	var why [2]string
	for i, off := range []int64{header1Offset, header2Offset} {
		buf, err := img.readMeta(off, headerSize)
		if err != nil {
			return err
		}
		hs[i], why[i] = parseHeader(buf)
	}
	cur := 0
	switch {
	case hs[0] == nil && hs[1] == nil:
		return img.errorf(image.ErrCorrupt, "no valid VHDX header (header 1: %s; header 2: %s)", why[0], why[1])
	case hs[0] == nil:
		cur = 1
	case hs[1] == nil:
		cur = 0
	case hs[1].seq > hs[0].seq:
		cur = 1
	case hs[0].seq == hs[1].seq && !bytes.Equal(hs[0].raw, hs[1].raw):
		// Two different headers claiming the same sequence number: no
		// way to tell which is current (QEMU refuses too; identical
		// copies, as Disk2VHD writes them, are fine).
		return img.errorf(image.ErrCorrupt, "both headers have sequence number %d but differ", hs[0].seq)
	}
	h := hs[cur]
	img.params.Sequence = h.seq
	img.params.CurrentHeader = cur + 1
	img.params.DataWriteGUID = guidString(h.dataWriteGUID)

	img.qemuRegions = []span{{"log", h.logOffset, h.logOffset + uint64(h.logLength)}}
	spans := []span{{what: "header section", start: 0, end: headerSection}}
	if err := img.checkLog(h); err != nil {
		return err
	}
	if h.logLength > 0 {
		spans = append(spans, span{"log", h.logOffset, h.logOffset + uint64(h.logLength)})
	}

	bat, meta, spans, err := img.regions(spans)
	if err != nil {
		return err
	}
	if err := img.metadata(meta); err != nil {
		return err
	}
	return img.loadBAT(bat, spans)
}

// checkLog refuses an image whose log may hold unapplied updates.
func (img *Image) checkLog(h *header) error {
	if h.logVersion != 0 {
		return img.errorf(image.ErrUnsupported, "log version %d (only version 0 is defined)", h.logVersion)
	}
	if h.logOffset < mib || h.logOffset%mib != 0 {
		return img.errorf(image.ErrCorrupt, "log offset %d is not a multiple of 1 MiB past the header section", h.logOffset)
	}
	if h.logLength%mib != 0 {
		return img.errorf(image.ErrCorrupt, "log length %d is not a multiple of 1 MiB", h.logLength)
	}
	if h.logLength > 0 && (h.logOffset > uint64(img.fileSize) || uint64(h.logLength) > uint64(img.fileSize)-h.logOffset) {
		return img.errorf(image.ErrCorrupt, "log [%d,+%d) extends past the end of the file (%d bytes)", h.logOffset, h.logLength, img.fileSize)
	}
	if h.logGUID != [16]byte{} && h.logLength != 0 {
		return img.errorf(image.ErrUnsupported, "VHDX log is dirty: replay it by opening the image once in Hyper-V or qemu, qimg does not replay logs (log GUID %s)", guidString(h.logGUID))
	}
	return nil
}

// region is a region table entry.
type region struct {
	off, length uint64
}

// regions reads the region table (the first copy with a valid checksum)
// and returns the BAT and metadata regions, with every region added to
// spans after checking it overlaps nothing already there.
func (img *Image) regions(spans []span) (bat, meta region, _ []span, _ error) {
	var buf []byte
	var why [2]string
	for i, off := range []int64{region1Offset, region2Offset} {
		b, err := img.readMeta(off, regionSize)
		if err != nil {
			return bat, meta, nil, err
		}
		switch {
		case string(b[:4]) != "regi":
			why[i] = "no \"regi\" signature"
		case !crcValid(b):
			why[i] = "bad CRC-32C"
		case binary.LittleEndian.Uint32(b[8:]) > maxEntries:
			why[i] = fmt.Sprintf("%d entries (at most %d allowed)", binary.LittleEndian.Uint32(b[8:]), maxEntries)
		default:
			buf = b
		}
		if buf != nil {
			break
		}
	}
	if buf == nil {
		return bat, meta, nil, img.errorf(image.ErrCorrupt, "no valid region table (table 1: %s; table 2: %s)", why[0], why[1])
	}
	le := binary.LittleEndian
	n := int(le.Uint32(buf[8:]))
	var haveBAT, haveMeta bool
	fixed := len(spans)
	type entry struct {
		guid [16]byte
		span
	}
	ents := make([]entry, 0, n)
	for i := range n {
		e := buf[16+32*i : 48+32*i]
		var g [16]byte
		copy(g[:], e[:16])
		off, length, bits := le.Uint64(e[16:]), uint64(le.Uint32(e[24:])), le.Uint32(e[28:])
		if off > 1<<62 {
			return bat, meta, nil, img.errorf(image.ErrCorrupt, "region %s at offset %d is past any file", guidString(g), off)
		}
		img.qemuRegions = append(img.qemuRegions, span{"region", off, off + length})
		switch g {
		case guidBAT:
			if haveBAT {
				return bat, meta, nil, img.errorf(image.ErrCorrupt, "two BAT regions in the region table")
			}
			haveBAT, bat = true, region{off, length}
			ents = append(ents, entry{g, span{"BAT", off, off + length}})
		case guidMetadata:
			if haveMeta {
				return bat, meta, nil, img.errorf(image.ErrCorrupt, "two metadata regions in the region table")
			}
			haveMeta, meta = true, region{off, length}
			ents = append(ents, entry{g, span{"metadata region", off, off + length}})
		default:
			if bits&1 != 0 {
				return bat, meta, nil, img.errorf(image.ErrUnsupported, "required region %s is not known to qimg", guidString(g))
			}
			ents = append(ents, entry{g, span{"region " + guidString(g), off, off + length}})
		}
	}
	if !haveBAT || !haveMeta {
		return bat, meta, nil, img.errorf(image.ErrCorrupt, "region table lacks the BAT or the metadata region")
	}
	// No region may overlap the header section, the log or another
	// region. Sorted by start, any overlap shows between neighbours,
	// which keeps this O(n log n) for 2047 entries.
	ents = slices.DeleteFunc(ents, func(e entry) bool { return e.start == e.end })
	slices.SortFunc(ents, func(a, b entry) int { return cmp.Compare(a.start, b.start) })
	for i, e := range ents {
		for _, s := range spans[:fixed] {
			if s.overlaps(e.start, e.end) {
				return bat, meta, nil, img.errorf(image.ErrCorrupt, "%s [%d,%d) overlaps the %s", e.what, e.start, e.end, s.what)
			}
		}
		if i > 0 && ents[i-1].end > e.start {
			return bat, meta, nil, img.errorf(image.ErrCorrupt, "%s [%d,%d) overlaps the %s", e.what, e.start, e.end, ents[i-1].what)
		}
	}
	for _, e := range ents {
		if e.guid == guidBAT || e.guid == guidMetadata {
			spans = append(spans, e.span)
		}
	}
	return bat, meta, spans, nil
}

// metadata reads the metadata table and the items this package needs.
func (img *Image) metadata(meta region) error {
	le := binary.LittleEndian
	if meta.length < 32 {
		return img.errorf(image.ErrCorrupt, "metadata region of %d bytes is too small for its table", meta.length)
	}
	if meta.off >= uint64(img.fileSize) {
		return img.errorf(image.ErrCorrupt, "metadata region at %d is past the end of the file (%d bytes)", meta.off, img.fileSize)
	}
	tbl, err := img.readMeta(int64(meta.off), min(metaTableSize, int64(meta.length)))
	if err != nil {
		return err
	}
	if string(tbl[:8]) != "metadata" {
		return img.errorf(image.ErrCorrupt, "metadata table at %d has no \"metadata\" signature", meta.off)
	}
	n := int(le.Uint16(tbl[10:]))
	if n > maxEntries || 32+32*n > len(tbl) {
		return img.errorf(image.ErrCorrupt, "metadata table has %d entries, more than fit", n)
	}
	type item struct {
		off, length uint32
	}
	items := map[[16]byte]item{}
	for i := range n {
		e := tbl[32+32*i : 64+32*i]
		var g [16]byte
		copy(g[:], e[:16])
		it := item{le.Uint32(e[16:]), le.Uint32(e[20:])}
		flags := le.Uint32(e[24:])
		switch g {
		case guidFileParams, guidVirtualSize, guidPage83, guidLogicalSect, guidPhysicalSect, guidParentLoc:
			if _, dup := items[g]; dup {
				return img.errorf(image.ErrCorrupt, "metadata item %s appears twice", guidString(g))
			}
			items[g] = it
		default:
			if flags&4 != 0 {
				return img.errorf(image.ErrUnsupported, "required metadata item %s is not known to qimg", guidString(g))
			}
		}
	}
	// get reads a known item, checking it lies inside the region and is
	// at least as long as its fixed-size content.
	get := func(g [16]byte, what string, need uint32) ([]byte, error) {
		it, ok := items[g]
		if !ok {
			return nil, img.errorf(image.ErrCorrupt, "metadata lacks the %s item", what)
		}
		if it.length < need {
			return nil, img.errorf(image.ErrCorrupt, "%s metadata item is %d bytes, needs %d", what, it.length, need)
		}
		if uint64(it.off)+uint64(need) > meta.length {
			return nil, img.errorf(image.ErrCorrupt, "%s metadata item at %d is outside the metadata region (%d bytes)", what, it.off, meta.length)
		}
		abs := meta.off + uint64(it.off)
		if abs+uint64(need) > uint64(img.fileSize) {
			return nil, img.errorf(image.ErrCorrupt, "%s metadata item at %d is past the end of the file (%d bytes)", what, abs, img.fileSize)
		}
		return img.readMeta(int64(abs), int64(need))
	}
	fp, err := get(guidFileParams, "file parameters", 8)
	if err != nil {
		return err
	}
	bs, flags := le.Uint32(fp), le.Uint32(fp[4:])
	if flags&2 != 0 {
		return img.errorf(image.ErrUnsupported, "differencing VHDX (has a parent disk): qimg reads only dynamic and fixed VHDX images")
	}
	img.params.LeaveBlocksAllocated = flags&1 != 0
	if bs < minBlockSize || bs > maxBlockSize || bs&(bs-1) != 0 {
		return img.errorf(image.ErrCorrupt, "block size %d is not a power of two from 1 MiB to 256 MiB", bs)
	}
	img.params.BlockSize = int64(bs)
	for img.bits = 0; 1<<img.bits < bs; img.bits++ {
	}

	vs, err := get(guidVirtualSize, "virtual disk size", 8)
	if err != nil {
		return err
	}
	img.params.VirtualDiskSize = le.Uint64(vs)
	if img.params.VirtualDiskSize > maxVirtualSize {
		return img.errorf(image.ErrLimit, "virtual disk size %d is larger than 64 TiB", img.params.VirtualDiskSize)
	}
	// QEMU counts whole 512-byte sectors; the specification requires a
	// multiple of the logical sector size anyway.
	img.size = int64(img.params.VirtualDiskSize) &^ 511

	ls, err := get(guidLogicalSect, "logical sector size", 4)
	if err != nil {
		return err
	}
	img.params.LogicalSectorSize = le.Uint32(ls)
	if l := img.params.LogicalSectorSize; l != 512 && l != 4096 {
		return img.errorf(image.ErrCorrupt, "logical sector size %d is neither 512 nor 4096", l)
	}
	ps, err := get(guidPhysicalSect, "physical sector size", 4)
	if err != nil {
		return err
	}
	// Informational only (QEMU does not check it either).
	img.params.PhysicalSectorSize = le.Uint32(ps)
	p83, err := get(guidPage83, "page 83 data", 16)
	if err != nil {
		return err
	}
	img.params.Page83 = guidString([16]byte(p83))
	return nil
}

// batChunk is how many bytes of BAT are read at a time, so that loading
// the table costs one copy of it in memory, not two.
const batChunk = 1 << 20

// loadBAT reads the payload entries of the BAT and checks every
// FULLY_PRESENT block against the file size and the other structures.
func (img *Image) loadBAT(bat region, spans []span) error {
	bs := uint64(img.params.BlockSize)
	blocks := (uint64(img.size) + bs - 1) / bs
	ratio := uint64(sectorsPerChunk) * uint64(img.params.LogicalSectorSize) / bs
	entries := uint64(0)
	if blocks > 0 {
		entries = blocks + (blocks-1)/ratio // a bitmap entry after every ratio payload entries
	}
	if entries > bat.length/8 {
		return img.errorf(image.ErrCorrupt, "BAT region of %d bytes is too small for %d entries", bat.length, entries)
	}
	if bat.off > uint64(img.fileSize) || entries*8 > uint64(img.fileSize)-bat.off {
		return img.errorf(image.ErrCorrupt, "BAT [%d,+%d) extends past the end of the file (%d bytes)", bat.off, entries*8, img.fileSize)
	}
	img.batOff = bat.off
	img.bat = make([]uint64, blocks)
	buf := make([]byte, min(batChunk, entries*8))
	le := binary.LittleEndian
	for first := uint64(0); first < entries; {
		n := min(uint64(len(buf))/8, entries-first)
		chunk := buf[:n*8]
		if _, err := img.r.ReadAt(chunk, int64(bat.off+first*8)); err != nil && !errors.Is(err, io.EOF) {
			return image.FileErrorf(img.name, "reading the BAT: %w", err)
		}
		for j := range n {
			i := first + j
			// Entry i is a sector bitmap entry when (i+1) is a multiple
			// of ratio+1; payload block b sits at b + b/ratio.
			if (i+1)%(ratio+1) == 0 {
				continue
			}
			b := i - i/(ratio+1)
			if b < blocks {
				img.bat[b] = le.Uint64(chunk[j*8:])
			}
		}
		first += n
	}
	for b, e := range img.bat {
		if e&batStateMask != stateFullyPresent || img.forCheck {
			continue
		}
		off := e & batOffsetMask
		// Only the part of the last block inside the virtual disk must
		// be in the file: QEMU once wrote partial last blocks.
		n := min(bs, uint64(img.size)-uint64(b)*bs)
		if off >= uint64(img.fileSize) || n > uint64(img.fileSize)-off {
			return img.errorf(image.ErrCorrupt, "block %d at file offset %d is past the end of the file (%d bytes); the image has probably been truncated", b, off, img.fileSize)
		}
		for _, s := range spans {
			if s.overlaps(off, off+bs) {
				return img.errorf(image.ErrCorrupt, "block %d at file offset %d overlaps the %s", b, off, s.what)
			}
		}
	}
	return nil
}

// ownFile makes Close close f, the file the image was opened from.
func (img *Image) ownFile(f *os.File) { img.closer = f }
