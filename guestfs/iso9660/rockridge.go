package iso9660

import (
	"encoding/binary"
	"io/fs"
	"strings"
	"time"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/unixmode"
)

// Rock Ridge (RRIP, IEEE P1282) rides on SUSP (P1281): each directory
// record's system use field holds entries "XX" len version data. What
// does not fit in the record (it is at most 255 bytes) goes to
// continuation areas found through "CE" entries. Linux refuses a
// continuation area that crosses a block, so each area is at most one
// block and areas chain.

const (
	ceLen      = 28 // a CE entry
	susbMaxLen = 250
)

// RRIP 1.12 as libisofs writes it by default: PX with a serial number.
const (
	erID     = "IEEE_1282"
	erDesc   = "THE IEEE 1282 PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS."
	erSource = "PLEASE CONTACT THE IEEE STANDARDS DEPARTMENT, PISCATAWAY, NJ, USA FOR THE 1282 SPECIFICATION."
)

func both32(b []byte, v uint32) {
	binary.LittleEndian.PutUint32(b, v)
	binary.BigEndian.PutUint32(b[4:], v)
}

func both16(b []byte, v uint16) {
	binary.LittleEndian.PutUint16(b, v)
	binary.BigEndian.PutUint16(b[2:], v)
}

// entry makes one SUSP entry.
func entry(sig string, version byte, data []byte) []byte {
	e := make([]byte, 4+len(data))
	copy(e, sig)
	e[2], e[3] = byte(len(e)), version
	copy(e[4:], data)
	return e
}

func spEntry() []byte { return entry("SP", 1, []byte{0xBE, 0xEF, 0}) }

func erEntry() []byte {
	d := []byte{byte(len(erID)), byte(len(erDesc)), byte(len(erSource)), 1}
	d = append(append(append(d, erID...), erDesc...), erSource...)
	return entry("ER", 1, d)
}

// rrFlags lists the RRIP entries used: PX, NM, SL, TF.
func rrEntry() []byte { return entry("RR", 1, []byte{0x01 | 0x04 | 0x08 | 0x80}) }

func pxEntry(mode fs.FileMode, links, uid, gid, ino uint32) []byte {
	d := make([]byte, 40)
	both32(d[0:], unixmode.FromFileMode(mode))
	both32(d[8:], links)
	both32(d[16:], uid)
	both32(d[24:], gid)
	both32(d[32:], ino)
	return entry("PX", 1, d)
}

// tfEntry records modify, access and attribute-change times.
func tfEntry(t time.Time) []byte {
	d := []byte{0x02 | 0x04 | 0x08}
	for range 3 {
		d = append(d, recTime(t)...)
	}
	return entry("TF", 1, d)
}

// nmEntries splits a name over NM entries, each flagged to continue but
// the last.
func nmEntries(name string) [][]byte {
	var out [][]byte
	for {
		n := min(len(name), susbMaxLen-5)
		flags := byte(0)
		if n < len(name) {
			flags = 1
		}
		out = append(out, entry("NM", 1, append([]byte{flags}, name[:n]...)))
		name = name[n:]
		if name == "" {
			return out
		}
	}
}

// slEntries encodes a symbolic link target as SL component records,
// packed into SL entries; a long component is split over records flagged
// to continue, and every SL entry but the last is flagged to continue.
func slEntries(target string) [][]byte {
	var comps [][]byte
	if strings.HasPrefix(target, "/") {
		comps = append(comps, []byte{0x08, 0})
	}
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "":
			continue
		case ".":
			comps = append(comps, []byte{0x02, 0})
		case "..":
			comps = append(comps, []byte{0x04, 0})
		default:
			for len(c) > 0 {
				n := min(len(c), 200)
				flags := byte(0)
				if n < len(c) {
					flags = 1
				}
				comps = append(comps, append([]byte{flags, byte(n)}, c[:n]...))
				c = c[n:]
			}
		}
	}
	var out [][]byte
	var cur []byte
	for _, c := range comps {
		if len(cur) > 0 && 5+len(cur)+len(c) > susbMaxLen {
			out = append(out, cur)
			cur = nil
		}
		cur = append(cur, c...)
	}
	out = append(out, cur)
	es := make([][]byte, len(out))
	for i, d := range out {
		flags := byte(0)
		if i < len(out)-1 {
			flags = 1
		}
		es[i] = entry("SL", 1, append([]byte{flags}, d...))
	}
	return es
}

// contArea is one continuation area: its entries, its place (set by
// layout) and the area it chains to.
type contArea struct {
	entries    [][]byte
	next       *contArea
	block, off uint32
}

func (c *contArea) size() int {
	n := 0
	for _, e := range c.entries {
		n += len(e)
	}
	if c.next != nil {
		n += ceLen
	}
	return n
}

func ceEntry(c *contArea) []byte {
	d := make([]byte, 24)
	both32(d[0:], c.block)
	both32(d[8:], c.off)
	both32(d[16:], uint32(c.size()))
	return entry("CE", 1, d)
}

// bytes renders the area, its CE last.
func (c *contArea) bytes() []byte {
	var b []byte
	for _, e := range c.entries {
		b = append(b, e...)
	}
	if c.next != nil {
		b = append(b, ceEntry(c.next)...)
	}
	return b
}

// sysUse is one record's system use field: entries kept in the record,
// and the continuation chain for the rest.
type sysUse struct {
	inline [][]byte
	cont   *contArea
}

// splitSU keeps what fits in room bytes of the record and chains the
// rest through block-sized continuation areas.
func splitSU(es [][]byte, room int) sysUse {
	total := 0
	for _, e := range es {
		total += len(e)
	}
	if total <= room {
		return sysUse{inline: es}
	}
	var su sysUse
	used, i := 0, 0
	for ; i < len(es) && used+len(es[i])+ceLen <= room; i++ {
		su.inline = append(su.inline, es[i])
		used += len(es[i])
	}
	var prev *contArea
	for i < len(es) {
		c := &contArea{}
		rest := 0
		for _, e := range es[i:] {
			rest += len(e)
		}
		used = 0
		for ; i < len(es); i++ {
			if used+rest > sector && used+len(es[i])+ceLen > sector {
				break
			}
			c.entries = append(c.entries, es[i])
			used += len(es[i])
			rest -= len(es[i])
		}
		if prev == nil {
			su.cont = c
		} else {
			prev.next = c
		}
		prev = c
	}
	return su
}

func (s sysUse) len() int {
	n := 0
	for _, e := range s.inline {
		n += len(e)
	}
	if s.cont != nil {
		n += ceLen
	}
	return n
}

func (s sysUse) bytes() []byte {
	var b []byte
	for _, e := range s.inline {
		b = append(b, e...)
	}
	if s.cont != nil {
		b = append(b, ceEntry(s.cont)...)
	}
	return b
}

// rrInfo is what the Rock Ridge entries of one record say.
type rrInfo struct {
	name      string
	mode      fs.FileMode
	hasMode   bool
	mtime     time.Time
	target    string
	child     uint32 // CL: the directory moved away lives here
	relocated bool   // RE: this is the moved directory, shown through CL
	nameDone  bool
	slDone    bool
	slParts   []string
	slCont    bool // the last component continues in the next record
}

// parseSU reads a system use field and the continuation areas it chains
// to. dot is set for "." records, whose SP entry is not skipped.
func (rd *reader) parseSU(su []byte, rr *rrInfo, dot bool) error {
	if !dot && rd.skip <= len(su) {
		su = su[rd.skip:]
	}
	for hops := 0; ; hops++ {
		var next *extent
		var off uint32
		for len(su) >= 4 {
			n := int(su[2])
			if n < 4 || n > len(su) {
				break // padding or a damaged tail: keep what was read
			}
			e := su[:n]
			su = su[n:]
			d := e[4:]
			switch string(e[:2]) {
			case "ST":
				su = nil
			case "CE":
				if len(d) >= 24 {
					next = &extent{binary.LittleEndian.Uint32(d[0:]), binary.LittleEndian.Uint32(d[16:])}
					off = binary.LittleEndian.Uint32(d[8:])
				}
			case "NM":
				if len(d) >= 1 && !rr.nameDone && d[0]&0x06 == 0 {
					rr.name += string(d[1:])
					rr.nameDone = d[0]&1 == 0
				}
			case "PX":
				if len(d) >= 8 {
					rr.mode, rr.hasMode = unixmode.ToFileMode(binary.LittleEndian.Uint32(d)), true
				}
			case "TF":
				rr.mtime = parseTF(d)
			case "SL":
				if len(d) >= 1 && !rr.slDone {
					rd.parseSL(d[1:], rr)
					rr.slDone = d[0]&1 == 0
				}
			case "CL":
				if len(d) >= 8 {
					rr.child = binary.LittleEndian.Uint32(d)
				}
			case "RE":
				rr.relocated = true
			}
		}
		if next == nil {
			break
		}
		if hops >= maxCE {
			return image.FileErrorf(rd.name, "more than %d Rock Ridge continuation areas: %w", maxCE, image.ErrLimit)
		}
		if off > sector || next.size > sector-off { // as Linux: within one block
			return rd.corrupt("Rock Ridge continuation area of %d bytes at offset %d", next.size, off)
		}
		b, err := rd.readAt(int64(next.block)*sector+int64(off), int(next.size))
		if err != nil {
			return err
		}
		su = b
	}
	if rr.slParts != nil {
		rr.target = strings.Join(rr.slParts, "/")
		if rr.target == "" {
			rr.target = "/"
		}
	}
	return nil
}

// parseSL appends the component records of one SL entry.
func (rd *reader) parseSL(d []byte, rr *rrInfo) {
	for len(d) >= 2 {
		flags, n := d[0], int(d[1])
		if 2+n > len(d) {
			return
		}
		text := string(d[2 : 2+n])
		d = d[2+n:]
		switch {
		case flags&0x02 != 0:
			text = "."
		case flags&0x04 != 0:
			text = ".."
		case flags&0x08 != 0:
			text = ""
		}
		if rr.slCont && len(rr.slParts) > 0 {
			rr.slParts[len(rr.slParts)-1] += text
		} else {
			rr.slParts = append(rr.slParts, text)
		}
		rr.slCont = flags&0x01 != 0
	}
}

// parseTF returns the modification time of a TF entry's data.
func parseTF(d []byte) time.Time {
	if len(d) < 1 {
		return time.Time{}
	}
	flags, d := d[0], d[1:]
	size := 7
	if flags&0x80 != 0 {
		size = 17
	}
	for bit := byte(1); bit < 0x80; bit <<= 1 {
		if flags&bit == 0 {
			continue
		}
		if len(d) < size {
			return time.Time{}
		}
		if bit == 0x02 {
			if size == 7 {
				return parseRecTime(d)
			}
			return parseVDTime(d)
		}
		d = d[size:]
	}
	return time.Time{}
}
