package fat

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/qimg/qimg/image"
)

// maxDirBytes bounds a directory as Linux and the specification do:
// 65536 slots.
const maxDirBytes = 65536 * slotSize

// dir is one directory's slots: as on the device (old) and as staged
// (cur). Commit writes the slots that differ, in an order that keeps the
// volume consistent (commit.go).
type dir struct {
	key   uint32   // first cluster; 0 for the fixed FAT12/16 root
	chain []uint32 // clusters, nil for the fixed root
	old   []byte   // device content; zeros for clusters new in this transaction
	cur   []byte   // staged content; the same slice as old until changed
	// oldLen is how much of old lies in clusters used on the device
	// (clusters after it extend the directory in this transaction).
	oldLen  int
	isNew   bool    // the directory is created in this transaction
	root    bool    // the volume's root (fixed or FAT32)
	entries []entry // parsed from cur, nil when stale
}

// entry is one name in a directory: its short entry and where its
// slots lie.
type entry struct {
	name string
	raw  [slotSize]byte // the short entry
	slot int            // index of the short entry
	lfn  int            // long-name slots before it
}

func (e *entry) attr() byte    { return e.raw[11] }
func (e *entry) isDir() bool   { return e.attr()&attrDir != 0 }
func (e *entry) size() uint32  { return binary.LittleEndian.Uint32(e.raw[28:]) }
func (e *entry) short() string { return string(e.raw[:11]) }
func (e *entry) first(bits int) uint32 {
	c := uint32(binary.LittleEndian.Uint16(e.raw[26:]))
	if bits == fat32 {
		c |= uint32(binary.LittleEndian.Uint16(e.raw[20:])) << 16
	}
	return c
}

func (e *entry) setFirst(c uint32) {
	binary.LittleEndian.PutUint16(e.raw[26:], uint16(c))
	binary.LittleEndian.PutUint16(e.raw[20:], uint16(c>>16))
}

func (e *entry) setSize(n uint32) { binary.LittleEndian.PutUint32(e.raw[28:], n) }

func (e *entry) modTime() time.Time {
	return decodeTime(binary.LittleEndian.Uint16(e.raw[24:]), binary.LittleEndian.Uint16(e.raw[22:]), 0)
}

func (e *entry) setModTime(t time.Time) {
	d, tm, _ := encodeTime(t)
	binary.LittleEndian.PutUint16(e.raw[24:], d)
	binary.LittleEndian.PutUint16(e.raw[22:], tm)
}

func (e *entry) setAccessTime(t time.Time) {
	d, _, _ := encodeTime(t)
	binary.LittleEndian.PutUint16(e.raw[18:], d)
}

func (e *entry) setCreateTime(t time.Time) {
	d, tm, h := encodeTime(t)
	e.raw[13] = h
	binary.LittleEndian.PutUint16(e.raw[16:], d)
	binary.LittleEndian.PutUint16(e.raw[14:], tm)
}

// slots is how many slots the directory has.
func (d *dir) slots() int { return len(d.cur) / slotSize }

func isFree(s []byte) bool { return s[0] == 0 || s[0] == freeSlot }

// parse lists the entries of a directory's content. Like Linux and
// fsck.fat it reads every slot (a zero first byte is a free slot, not
// the end); long-name slots whose sequence or checksum does not match
// the short entry after them are ignored, as Linux does. Names holding
// '/' or NUL are corruption.
func parse(buf []byte, key uint32) ([]entry, string, error) {
	var (
		out      []entry
		label    string
		units    []uint16 // long name collected so far, last part first
		want     int      // sequence number of the last long-name slot read, 0 = none
		sum      byte
		lfnStart int
	)
	for i := 0; i+slotSize <= len(buf); i += slotSize {
		s := buf[i : i+slotSize]
		switch {
		case isFree(s):
			want = 0
			continue
		case s[11] == attrLFN:
			seq := int(s[0] & 0x3f)
			switch {
			case s[0]&0x40 != 0 && seq >= 1 && seq <= maxLFNSlot:
				units, want, sum, lfnStart = lfnUnits(s), seq, s[13], i
			case want > 1 && seq == want-1 && s[13] == sum:
				units, want = append(lfnUnits(s), units...), seq
			default: // an orphan: ignored
				units, want = nil, 0
			}
			continue
		}
		e := entry{slot: i / slotSize}
		copy(e.raw[:], s)
		hasLFN := want == 1 && checksum(s) == sum
		if hasLFN {
			e.lfn = (i - lfnStart) / slotSize
		}
		long := units
		units, want = nil, 0
		if e.attr()&attrVolume != 0 {
			if label == "" && e.attr()&attrDir == 0 {
				label = strings.TrimRight(string(s[:11]), " ")
			}
			continue
		}
		if s[0] == '.' && (string(s[:11]) == ".          " || string(s[:11]) == "..         ") {
			continue
		}
		var err error
		if hasLFN {
			e.name, err = decodeLFN(long)
		} else {
			e.name, err = shortName(s[:11], s[12])
		}
		if err != nil {
			return nil, "", fmt.Errorf("directory at cluster %d, slot %d: %w", key, i/slotSize, err)
		}
		out = append(out, e)
	}
	return out, label, nil
}

// list returns the parsed entries of the staged content.
func (f *FS) list(d *dir) ([]entry, error) {
	if d.entries == nil {
		es, _, err := parse(d.cur, d.key)
		if err != nil {
			return nil, image.FileErrorf(f.name, "%w: %w", err, image.ErrCorrupt)
		}
		d.entries = es
		if d.entries == nil {
			d.entries = []entry{}
		}
	}
	return d.entries, nil
}

// find looks name up as Windows and Linux do: case-insensitively, by
// long name or by short name.
func (f *FS) find(d *dir, name string) (*entry, error) {
	es, err := f.list(d)
	if err != nil {
		return nil, err
	}
	for i := range es {
		if strings.EqualFold(es[i].name, name) {
			return &es[i], nil
		}
	}
	for i := range es {
		if s, err := shortName(es[i].raw[:11], 0); err == nil && strings.EqualFold(s, name) {
			return &es[i], nil
		}
	}
	return nil, nil
}

// loadDir reads the directory starting at cluster key (0: the fixed
// root), or returns it from the cache.
func (f *FS) loadDir(key uint32) (*dir, error) {
	if d, ok := f.dirs[key]; ok {
		return d, nil
	}
	d := &dir{key: key, root: key == f.rootKey}
	if key == 0 {
		d.old = make([]byte, f.g.rootBytes())
		if _, err := f.dev.ReadAt(d.old, f.g.rootStart()); err != nil {
			return nil, image.FileErrorf(f.name, "reading the root directory: %w", ioErr(err))
		}
	} else {
		limit := int(maxDirBytes/f.g.clusterSize) + 1
		chain, err := f.fat.chain(key, limit+1)
		if err != nil {
			return nil, err
		}
		if len(chain) > limit {
			return nil, image.FileErrorf(f.name, "directory at cluster %d is larger than %d bytes: %w", key, maxDirBytes, image.ErrCorrupt)
		}
		d.chain = chain
		d.old = make([]byte, int64(len(chain))*f.g.clusterSize)
		for i, c := range chain {
			part := d.old[int64(i)*f.g.clusterSize:][:f.g.clusterSize]
			if _, err := f.dev.ReadAt(part, f.g.clusterOffset(c)); err != nil {
				return nil, image.FileErrorf(f.name, "reading directory cluster %d: %w", c, ioErr(err))
			}
		}
	}
	d.cur, d.oldLen = d.old, len(d.old)
	f.dirs[key] = d
	return d, nil
}

// edit makes d's staged content its own copy before a change.
func (d *dir) edit() {
	if &d.cur[0] == &d.old[0] {
		d.cur = append([]byte(nil), d.old...)
	}
	d.entries = nil
}

// slotOf returns slot i of the staged content.
func (d *dir) slotOf(i int) []byte { return d.cur[i*slotSize : (i+1)*slotSize] }

// freeEntry marks the slots of e deleted.
func (d *dir) freeEntry(e *entry) {
	d.edit()
	for i := e.slot - e.lfn; i <= e.slot; i++ {
		d.slotOf(i)[0] = freeSlot
	}
}

// putEntry writes an entry (long-name slots then the short entry) at
// slot at, and marks never-used slots before it deleted, so readers that
// stop at the first never-used slot (Windows, the specification) see it.
func (d *dir) putEntry(at int, slots [][slotSize]byte) {
	d.edit()
	for i := range at {
		if s := d.slotOf(i); s[0] == 0 {
			s[0] = freeSlot
		}
	}
	for i, s := range slots {
		copy(d.slotOf(at+i), s[:])
	}
}

// placeFor finds n consecutive slots free both on the device and as
// staged (slots freed in this transaction are not reused before Commit),
// within one sector when n fits in one, so the entry appears in one
// write. It returns -1 if there is no room.
func (d *dir) placeFor(n int, sectorSlots int) int {
	usable := func(i int) bool {
		return isFree(d.slotOf(i)) && (i*slotSize >= len(d.old) || isFree(d.old[i*slotSize:]))
	}
	run := 0
	for i := 0; i < d.slots(); i++ {
		if n <= sectorSlots && i%sectorSlots == 0 {
			run = 0
		}
		if !usable(i) {
			run = 0
			continue
		}
		if run++; run == n {
			return i - n + 1
		}
	}
	return -1
}

// shortNames lists the 11-byte names in d, as staged and on the device,
// so a new short name clashes with neither.
func (d *dir) shortNames() map[[11]byte]bool {
	taken := map[[11]byte]bool{}
	for _, buf := range [][]byte{d.old, d.cur} {
		for i := 0; i+slotSize <= len(buf); i += slotSize {
			s := buf[i : i+slotSize]
			if !isFree(s) && s[11]&0x3f != attrLFN {
				taken[[11]byte(s[:11])] = true
			}
		}
	}
	return taken
}
