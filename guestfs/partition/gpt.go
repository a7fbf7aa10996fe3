package partition

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"unicode/utf16"

	"github.com/qimg/qimg/image"
)

// gpt is one copy of a GPT, header and entries, checked.
type gpt struct {
	lba, alternate          int64
	firstUsable, lastUsable int64
	diskGUID                [16]byte
	entryLBA                int64
	numEntries, entrySize   uint32
	entriesCRC              uint32
	partitions              []Partition
}

const gptSignature = "EFI PART"

// readGPT reads the GPT behind a protective MBR. The primary copy is
// used when it is whole; otherwise the backup at the disk's last sector.
// Both are checked to the same rules: header CRC, entry array CRC, and
// every address inside the disk and apart from the other structures.
func (r *reader) readGPT() (*Table, error) {
	r.ss = r.gptSectorSize()
	last := r.size/r.ss - 1
	prim, perr := r.readGPTCopy(1, last, "primary")
	back, berr := r.readGPTCopy(last, last, "backup")
	t := &Table{Scheme: SchemeGPT, SectorSize: r.ss}
	switch {
	case perr == nil:
		if berr == nil {
			berr = compareGPT(prim, back, last)
		}
		if berr != nil {
			t.BackupErr = image.FileErrorf(r.name, "%w", berr)
		}
	case berr == nil:
		prim = back
		t.UsedBackup = true
		t.PrimaryErr = image.FileErrorf(r.name, "%w", perr)
	default:
		return nil, fmt.Errorf("protective MBR but no valid GPT: %w; %w", perr, berr)
	}
	t.DiskGUID = guidString(prim.diskGUID)
	t.Partitions = prim.partitions
	return t, nil
}

// gptSectorSize finds the sector size the GPT was written for: 4096 when
// a header signature sits at byte 4096 or 4096 bytes before the end and
// none at the 512-byte places, 512 otherwise (which also reports a
// damaged GPT in the common unit).
func (r *reader) gptSectorSize() int64 {
	at := func(off int64) bool {
		b, err := r.sector(off, 8, "GPT signature")
		return err == nil && string(b) == gptSignature
	}
	if !at(512) && !at(r.size/512*512-512) && (at(4096) || at(r.size/4096*4096-4096)) {
		return 4096
	}
	return 512
}

// readGPTCopy reads and checks the GPT header at sector lba and its
// entries; last is the disk's last sector.
func (r *reader) readGPTCopy(lba, last int64, which string) (*gpt, error) {
	if last < 2 || lba > last {
		return nil, corrupt("%s GPT header: the disk of %d bytes has no room for it", which, r.size)
	}
	b, err := r.sector(lba*r.ss, r.ss, which+" GPT header")
	if err != nil {
		return nil, err
	}
	g, err := parseGPTHeader(b, lba, last, r.ss)
	if err != nil {
		return nil, fmt.Errorf("%s GPT header at sector %d: %w", which, lba, err)
	}
	arr, err := r.sector(g.entryLBA*r.ss, int64(g.numEntries)*int64(g.entrySize), which+" GPT entry array")
	if err != nil {
		return nil, err
	}
	if crc32.ChecksumIEEE(arr) != g.entriesCRC {
		return nil, corrupt("%s GPT entry array at sector %d: CRC32 mismatch", which, g.entryLBA)
	}
	if g.partitions, err = g.parseEntries(arr, r.ss); err != nil {
		return nil, fmt.Errorf("%s GPT: %w", which, err)
	}
	return g, nil
}

// parseGPTHeader decodes and checks a header read from sector lba, the
// sector size bytes of it. Every field that sizes or places something is
// bounded here, before anything is allocated from it.
func parseGPTHeader(b []byte, lba, last, ss int64) (*gpt, error) {
	le := binary.LittleEndian
	if string(b[:8]) != gptSignature {
		return nil, corrupt("no %q signature", gptSignature)
	}
	hsize := le.Uint32(b[12:])
	if hsize < 92 || int64(hsize) > ss {
		return nil, corrupt("header size %d outside [92, %d]", hsize, ss)
	}
	h := bytes.Clone(b[:hsize])
	clear(h[16:20])
	if crc32.ChecksumIEEE(h) != le.Uint32(b[16:]) {
		return nil, corrupt("header CRC32 mismatch")
	}
	g := &gpt{
		numEntries: le.Uint32(b[80:]), entrySize: le.Uint32(b[84:]), entriesCRC: le.Uint32(b[88:]),
	}
	copy(g.diskGUID[:], b[56:72])
	var ok bool
	if g.lba, ok = lbaField(b[24:], last); !ok || g.lba != lba {
		return nil, corrupt("header says it is at sector %d", le.Uint64(b[24:]))
	}
	g.alternate, _ = lbaField(b[32:], last)
	if err := g.checkLayout(b, last, ss); err != nil {
		return nil, err
	}
	return g, nil
}

// lbaField decodes a 64-bit sector number that must lie on the disk.
func lbaField(b []byte, last int64) (int64, bool) {
	v := binary.LittleEndian.Uint64(b)
	return int64(v), v <= uint64(last)
}

// checkLayout checks the usable range and the entry array: the array
// is bounded (MaxGPTEntryArray) and lies between a header and the usable
// range, where partitions cannot overwrite it.
func (g *gpt) checkLayout(b []byte, last, ss int64) error {
	var ok1, ok2, ok3 bool
	g.firstUsable, ok1 = lbaField(b[40:], last)
	g.lastUsable, ok2 = lbaField(b[48:], last)
	g.entryLBA, ok3 = lbaField(b[72:], last)
	if !ok1 || !ok2 || !ok3 || g.firstUsable < 2 || g.lastUsable >= last || g.firstUsable > g.lastUsable+1 {
		return corrupt("usable sectors [%d, %d] or entry array at %d outside the disk's sectors [2, %d)",
			uint64(g.firstUsable), uint64(g.lastUsable), uint64(g.entryLBA), last)
	}
	units := g.entrySize / 128
	if g.entrySize%128 != 0 || units == 0 || units&(units-1) != 0 {
		return corrupt("entry size %d is not 128 times a power of two", g.entrySize)
	}
	n := int64(g.numEntries) * int64(g.entrySize)
	if n > MaxGPTEntryArray {
		return fmt.Errorf("entry array of %d entries of %d bytes exceeds %d bytes: %w",
			g.numEntries, g.entrySize, MaxGPTEntryArray, image.ErrLimit)
	}
	start, end := g.entryLBA, g.entryLBA+(n+ss-1)/ss // end exclusive
	before := start >= 2 && end <= g.firstUsable
	after := start > g.lastUsable && end <= last
	if !before && !after {
		return corrupt("entry array at sectors [%d, %d) overlaps a header or the usable sectors [%d, %d]",
			start, end, g.firstUsable, g.lastUsable)
	}
	return nil
}

// parseEntries decodes the used entries (type GUID not zero), each inside
// the usable range and none overlapping another. Numbers are entry
// indexes plus one, as Linux numbers GPT partitions.
func (g *gpt) parseEntries(arr []byte, ss int64) ([]Partition, error) {
	var ps []Partition
	for i := range int(g.numEntries) {
		e := arr[i*int(g.entrySize):][:128]
		if allZero(e[:16]) {
			continue
		}
		p, err := g.entry(e, i+1, ss)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	if err := disjoint(ps); err != nil {
		return nil, err
	}
	return ps, nil
}

// entry decodes entry number n.
func (g *gpt) entry(e []byte, n int, ss int64) (Partition, error) {
	le := binary.LittleEndian
	first, last := le.Uint64(e[32:]), le.Uint64(e[40:])
	if first < uint64(g.firstUsable) || last > uint64(g.lastUsable) || first > last {
		return Partition{}, corrupt("partition %d at sectors [%d, %d] lies outside the usable sectors [%d, %d]",
			n, first, last, g.firstUsable, g.lastUsable)
	}
	return Partition{
		Number:     n,
		Start:      int64(first) * ss,
		Size:       int64(last-first+1) * ss,
		Type:       guidString([16]byte(e[:16])),
		UUID:       guidString([16]byte(e[16:32])),
		Attributes: le.Uint64(e[48:]),
		Name:       utf16Name(e[56:128]),
	}, nil
}

// compareGPT reports how a valid backup disagrees with the primary, as
// the Linux kernel does before using the primary alone.
func compareGPT(p, b *gpt, last int64) error {
	switch {
	case p.alternate != last:
		return corrupt("primary GPT places its backup at sector %d, not the last sector %d", p.alternate, last)
	case p.diskGUID != b.diskGUID, p.firstUsable != b.firstUsable, p.lastUsable != b.lastUsable,
		p.numEntries != b.numEntries, p.entrySize != b.entrySize, p.entriesCRC != b.entriesCRC:
		return corrupt("backup GPT at sector %d disagrees with the primary", last)
	}
	return nil
}

// guidString spells a GUID as sfdisk does: upper case, its first three
// fields stored little-endian.
func guidString(g [16]byte) string {
	le := binary.LittleEndian
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X", le.Uint32(g[0:]), le.Uint16(g[4:]), le.Uint16(g[6:]), g[8:10], g[10:])
}

// utf16Name decodes a name of UTF-16LE code units ending at the first
// NUL; unpaired surrogates become U+FFFD.
func utf16Name(b []byte) string {
	units := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		u := binary.LittleEndian.Uint16(b[i:])
		if u == 0 {
			break
		}
		units = append(units, u)
	}
	return string(utf16.Decode(units))
}

func allZero(b []byte) bool { return !slices.ContainsFunc(b, func(c byte) bool { return c != 0 }) }
