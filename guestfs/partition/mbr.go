package partition

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
)

// mbrEntry is one of the four 16-byte slots of an MBR or EBR.
type mbrEntry struct {
	status     byte
	typ        byte
	start, num uint32 // in 512-byte sectors
}

// used follows the Linux kernel and libfdisk: a slot with sectors is a
// partition whatever its type byte says.
func (e mbrEntry) used() bool { return e.num != 0 }

// extended tells the types Linux follows as a chain of EBRs: DOS, Windows
// (LBA) and Linux extended.
func (e mbrEntry) extended() bool { return e.typ == 0x05 || e.typ == 0x0f || e.typ == 0x85 }

type mbr struct {
	signature uint32
	entries   [4]mbrEntry
}

// parseMBR decodes a boot sector. Like Linux it takes a sector without the
// 55 AA signature, or with a status byte other than 0 and 0x80 (a FAT
// boot sector without a table), as no table at all.
func parseMBR(b []byte) (mbr, bool) {
	var m mbr
	if b[510] != 0x55 || b[511] != 0xaa {
		return m, false
	}
	m.signature = binary.LittleEndian.Uint32(b[440:])
	m.entries = parseEntries(b)
	for _, e := range m.entries {
		if e.status != 0 && e.status != 0x80 {
			return m, false
		}
	}
	return m, true
}

// parseEntries decodes the four slots of an MBR or EBR.
func parseEntries(b []byte) [4]mbrEntry {
	var es [4]mbrEntry
	for i := range es {
		s := b[446+16*i:]
		es[i] = mbrEntry{status: s[0], typ: s[4],
			start: binary.LittleEndian.Uint32(s[8:]), num: binary.LittleEndian.Uint32(s[12:])}
	}
	return es
}

// protective reports a GPT's protective MBR: any slot of type EE, as
// Linux also accepts hybrid MBRs.
func (m mbr) protective() bool {
	for _, e := range m.entries {
		if e.typ == 0xee {
			return true
		}
	}
	return false
}

// readMBR builds the table of an MBR: its primaries, then the logical
// partitions of its extended partition.
func (r *reader) readMBR(m mbr) (*Table, error) {
	r.ss = 512
	t := &Table{Scheme: SchemeMBR, SectorSize: 512, DiskSignature: m.signature}
	var ext *Partition
	for i, e := range m.entries {
		if !e.used() {
			continue
		}
		p := r.mbrPartition(t, i+1, e, 0)
		if err := r.inside(p, fmt.Sprintf("MBR partition %d", p.Number), 512, r.size); err != nil {
			return nil, err
		}
		if p.Extended {
			if ext != nil {
				return nil, corrupt("MBR has two extended partitions (%d and %d)", ext.Number, p.Number)
			}
			ext = &p
		}
		t.Partitions = append(t.Partitions, p)
	}
	if err := disjoint(t.Partitions); err != nil {
		return nil, err
	}
	if ext != nil {
		logical, err := r.readEBRChain(t, *ext)
		if err != nil {
			return nil, err
		}
		t.Partitions = append(t.Partitions, logical...)
	}
	return t, nil
}

// mbrPartition makes the partition of slot e, whose start counts from
// sector base.
func (r *reader) mbrPartition(t *Table, n int, e mbrEntry, base int64) Partition {
	return Partition{
		Number:   n,
		Start:    (base + int64(e.start)) * 512,
		Size:     int64(e.num) * 512,
		Type:     fmt.Sprintf("%x", e.typ),
		UUID:     fmt.Sprintf("%08x-%02x", t.DiskSignature, n),
		Bootable: e.status == 0x80,
		Extended: e.extended() && base == 0,
	}
}

// readEBRChain follows the extended partition's chain of EBRs. Each EBR
// holds one logical partition (its start relative to the EBR) and a link
// to the next EBR (relative to the extended partition's start). As in
// libfdisk, further slots are ignored and an EBR without a partition
// takes no number. The chain must stay inside the extended partition,
// never revisit an EBR and be at most MaxEBRChain long.
func (r *reader) readEBRChain(t *Table, ext Partition) ([]Partition, error) {
	var logical []Partition
	seen := map[int64]bool{}
	extBase, extEnd := ext.Start/512, (ext.Start+ext.Size)/512
	for lba := extBase; ; {
		if len(seen) == MaxEBRChain {
			return nil, corrupt("extended partition's EBR chain is longer than %d links", MaxEBRChain)
		}
		seen[lba] = true
		es, err := r.readEBR(lba)
		if err != nil {
			return nil, err
		}
		data, link := ebrSlots(es)
		if data.used() {
			p := r.mbrPartition(t, 5+len(logical), data, lba)
			p.Logical = true
			what := fmt.Sprintf("logical partition %d (EBR at sector %d)", p.Number, lba)
			if err := r.inside(p, what, (lba+1)*512, extEnd*512); err != nil {
				return nil, err
			}
			logical = append(logical, p)
		}
		if !link.used() {
			return logical, r.logicalsApart(logical, seen)
		}
		next := extBase + int64(link.start)
		if next <= extBase || next >= extEnd || seen[next] {
			return nil, corrupt("EBR at sector %d links to sector %d: outside the extended partition or a loop", lba, next)
		}
		lba = next
	}
}

// readEBR reads the EBR at sector lba, which must carry the signature.
func (r *reader) readEBR(lba int64) ([4]mbrEntry, error) {
	b, err := r.sector(lba*512, 512, fmt.Sprintf("EBR at sector %d", lba))
	if err != nil {
		return [4]mbrEntry{}, err
	}
	if b[510] != 0x55 || b[511] != 0xaa {
		return [4]mbrEntry{}, corrupt("EBR at sector %d has no 55 AA signature", lba)
	}
	return parseEntries(b), nil
}

// ebrSlots picks an EBR's first partition and first link.
func ebrSlots(es [4]mbrEntry) (data, link mbrEntry) {
	var haveData, haveLink bool
	for _, e := range es {
		switch {
		case !e.used():
		case e.extended() && !haveLink:
			link, haveLink = e, true
		case !e.extended() && !haveData:
			data, haveData = e, true
		}
	}
	return data, link
}

// logicalsApart checks that logical partitions overlap neither each other
// nor any EBR of the chain, which a write to them would destroy.
func (r *reader) logicalsApart(logical []Partition, ebrs map[int64]bool) error {
	for _, p := range logical {
		for lba := range ebrs {
			if lba*512 >= p.Start && lba*512 < p.Start+p.Size {
				return corrupt("logical partition %d covers the EBR at sector %d", p.Number, lba)
			}
		}
	}
	return disjoint(logical)
}

// inside checks that p lies in [lo, hi) bytes: past the structure that
// describes it and inside the disk or container.
func (r *reader) inside(p Partition, what string, lo, hi int64) error {
	if p.Start < lo || p.Size > hi-p.Start {
		return corrupt("%s [sector %d, +%d) overlaps its partition table or lies outside sectors [%d, %d)",
			what, p.Start/r.ss, p.Size/r.ss, lo/r.ss, hi/r.ss)
	}
	return nil
}

// disjoint checks that no two of ps overlap.
func disjoint(ps []Partition) error {
	sorted := slices.Clone(ps)
	slices.SortFunc(sorted, func(a, b Partition) int { return cmp.Compare(a.Start, b.Start) })
	for i := 1; i < len(sorted); i++ {
		a, b := sorted[i-1], sorted[i]
		if a.Start+a.Size > b.Start {
			return corrupt("partitions %d and %d overlap", a.Number, b.Number)
		}
	}
	return nil
}
