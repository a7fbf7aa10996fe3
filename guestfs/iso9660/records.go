package iso9660

import (
	"encoding/binary"
	"fmt"
	"time"
)

const sector = 2048

// Directory record flags (ECMA-119 9.1.6).
const (
	flagDir         = 0x02
	flagMultiExtent = 0x80
)

// recTime is the 7-byte time of directory records and TF entries, UTC.
func recTime(t time.Time) []byte {
	t = t.UTC()
	return []byte{byte(t.Year() - 1900), byte(t.Month()), byte(t.Day()),
		byte(t.Hour()), byte(t.Minute()), byte(t.Second()), 0}
}

// parseRecTime reads recTime's form, with its offset from UTC in 15
// minute steps.
func parseRecTime(b []byte) time.Time {
	if len(b) < 7 || b[1] == 0 {
		return time.Time{}
	}
	loc := time.FixedZone("", int(int8(b[6]))*15*60)
	return time.Date(1900+int(b[0]), time.Month(b[1]), int(b[2]), int(b[3]), int(b[4]), int(b[5]), 0, loc)
}

// vdTime is the 17-byte time of volume descriptors; the zero time is
// "not specified".
func vdTime(t time.Time) []byte {
	if t.IsZero() {
		return append([]byte("0000000000000000"), 0)
	}
	t = t.UTC()
	s := fmt.Sprintf("%04d%02d%02d%02d%02d%02d%02d", t.Year(), t.Month(), t.Day(),
		t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1e7)
	return append([]byte(s), 0)
}

// dirRecord encodes one directory record; ident is the identifier
// already encoded for its tree.
func dirRecord(ident []byte, extent, size uint32, dir bool, t time.Time, su []byte) []byte {
	n := 33 + len(ident)
	if n%2 == 1 {
		n++
	}
	n += len(su)
	if n%2 == 1 {
		n++
	}
	r := make([]byte, n)
	r[0] = byte(n)
	both32(r[2:], extent)
	both32(r[10:], size)
	copy(r[18:], recTime(t))
	if dir {
		r[25] = flagDir
	}
	both16(r[28:], 1) // volume sequence number
	r[32] = byte(len(ident))
	copy(r[33:], ident)
	copy(r[33+len(ident)+(1-len(ident)%2):], su)
	return r
}

// recordLen is len(dirRecord(...)) without building it.
func recordLen(identLen, suLen int) int {
	n := 33 + identLen
	n += n % 2
	n += suLen
	return n + n%2
}

// suRoom is the system use room a record of identLen has.
func suRoom(identLen int) int {
	n := 33 + identLen
	n += n % 2
	return 254 - n
}

// pathEntry encodes one path table entry in the byte order of bo.
func pathEntry(bo binary.ByteOrder, ident []byte, extent uint32, parent uint16) []byte {
	n := 8 + len(ident)
	n += n % 2
	e := make([]byte, n)
	e[0] = byte(len(ident))
	bo.PutUint32(e[2:], extent)
	bo.PutUint16(e[6:], parent)
	copy(e[8:], ident)
	return e
}

// volumeDescriptor is what differs between the primary and the Joliet
// descriptor; the rest is shared.
type volumeDescriptor struct {
	typ          byte
	escape       string // "%/E" for Joliet level 3
	text         func(string, int) []byte
	volumeID     string
	blocks       uint32
	pathSize     uint32
	lPath, mPath uint32
	root         []byte
	t            time.Time
}

func (v volumeDescriptor) bytes() []byte {
	b := make([]byte, sector)
	b[0] = v.typ
	copy(b[1:], "CD001")
	b[6] = 1
	copy(b[8:40], v.text("", 32))
	copy(b[40:72], v.text(v.volumeID, 32))
	both32(b[80:], v.blocks)
	copy(b[88:], v.escape)
	both16(b[120:], 1)
	both16(b[124:], 1)
	both16(b[128:], sector)
	both32(b[132:], v.pathSize)
	binary.LittleEndian.PutUint32(b[140:], v.lPath)
	binary.BigEndian.PutUint32(b[148:], v.mPath)
	copy(b[156:190], v.root)
	copy(b[190:318], v.text("", 128))
	copy(b[318:446], v.text("", 128))
	copy(b[446:574], v.text("", 128))
	copy(b[574:702], v.text("QIMG", 128))
	copy(b[702:739], v.text("", 37))
	copy(b[739:776], v.text("", 37))
	copy(b[776:813], v.text("", 37))
	copy(b[813:], vdTime(v.t))
	copy(b[830:], vdTime(v.t))
	copy(b[847:], vdTime(time.Time{}))
	copy(b[864:], vdTime(v.t))
	b[881] = 1
	return b
}

// asciiText pads s with spaces to n bytes.
func asciiText(s string, n int) []byte {
	b := []byte(fmt.Sprintf("%-*s", n, s))
	return b[:n]
}

// parseVDTime reads vdTime's form; anything unreadable is the zero time.
func parseVDTime(b []byte) time.Time {
	if len(b) < 17 {
		return time.Time{}
	}
	t, err := time.Parse("20060102150405", string(b[:14]))
	if err != nil {
		return time.Time{}
	}
	return t.Add(time.Duration(b[14]-'0')*100*time.Millisecond + time.Duration(b[15]-'0')*10*time.Millisecond).
		In(time.FixedZone("", int(int8(b[16]))*15*60)).Add(-time.Duration(int(int8(b[16]))*15) * time.Minute)
}
