package partition_test

import (
	"encoding/binary"
	"hash/crc32"
	"unicode/utf16"
)

// Tables built byte by byte, for what no tool writes: 4 KiB sectors and
// hostile tables.

var le = binary.LittleEndian

// putMBREntry writes slot i of the MBR or EBR in sector b.
func putMBREntry(b []byte, i int, status, typ byte, start, num uint32) {
	s := b[446+16*i:]
	s[0], s[4] = status, typ
	le.PutUint32(s[8:], start)
	le.PutUint32(s[12:], num)
	b[510], b[511] = 0x55, 0xaa
}

// mbrDisk is a disk of size bytes with an MBR of signature sig and
// nothing else.
func mbrDisk(size int, sig uint32) memImage {
	d := make(memImage, size)
	le.PutUint32(d[440:], sig)
	d[510], d[511] = 0x55, 0xaa
	return d
}

// gptPart is one GPT entry; type and unique GUIDs are given as on disk.
type gptPart struct {
	typ, uuid   [16]byte
	first, last uint64
	name        string
	attrs       uint64
}

// gptLayout says where a built GPT put its structures.
type gptLayout struct {
	disk          memImage
	ss            int64
	last          int64
	arraySectors  int64
	entries, esiz uint32
}

var linuxFS = [16]byte{0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4}

// buildGPT makes a disk of size bytes in sectors of ss bytes with a
// protective MBR, both GPT copies (entries of esize bytes) and parts.
func buildGPT(ss, size int64, n, esize uint32, parts []gptPart) *gptLayout {
	g := &gptLayout{disk: make(memImage, size), ss: ss, last: size/ss - 1, entries: n, esiz: esize}
	g.arraySectors = (int64(n)*int64(esize) + ss - 1) / ss
	putMBREntry(g.disk, 0, 0, 0xee, 1, uint32(min(g.last, 0xffffffff)))
	arr := make([]byte, int64(n)*int64(esize))
	for i, p := range parts {
		e := arr[i*int(esize):]
		copy(e, p.typ[:])
		copy(e[16:], p.uuid[:])
		le.PutUint64(e[32:], p.first)
		le.PutUint64(e[40:], p.last)
		le.PutUint64(e[48:], p.attrs)
		for j, u := range utf16.Encode([]rune(p.name)) {
			le.PutUint16(e[56+2*j:], u)
		}
	}
	copy(g.disk[2*ss:], arr)
	copy(g.disk[(g.last-g.arraySectors)*ss:], arr)
	g.header(1)
	g.header(g.last)
	return g
}

// firstUsable and lastUsable are the usable sectors of a built GPT.
func (g *gptLayout) firstUsable() int64 { return 2 + g.arraySectors }
func (g *gptLayout) lastUsable() int64  { return g.last - 1 - g.arraySectors }

// header writes the header at lba (1 or last) with its CRCs.
func (g *gptLayout) header(lba int64) {
	h := g.disk[lba*g.ss:][:92]
	copy(h, "EFI PART")
	le.PutUint32(h[8:], 0x10000)
	le.PutUint32(h[12:], 92)
	le.PutUint64(h[24:], uint64(lba))
	alt, arr := g.last, int64(2)
	if lba != 1 {
		alt, arr = 1, g.last-g.arraySectors
	}
	le.PutUint64(h[32:], uint64(alt))
	le.PutUint64(h[40:], uint64(g.firstUsable()))
	le.PutUint64(h[48:], uint64(g.lastUsable()))
	copy(h[56:], "disk-guid-bytes!")
	le.PutUint64(h[72:], uint64(arr))
	le.PutUint32(h[80:], g.entries)
	le.PutUint32(h[84:], g.esiz)
	g.fixCRCs(lba)
}

// fixCRCs recomputes the entry array CRC and header CRC of the copy at
// lba, after a test changed them.
func (g *gptLayout) fixCRCs(lba int64) {
	h := g.disk[lba*g.ss:]
	hsize := int64(le.Uint32(h[12:]))
	arrOff, n := int64(le.Uint64(h[72:]))*g.ss, int64(le.Uint32(h[80:]))*int64(le.Uint32(h[84:]))
	if arrOff >= 0 && n >= 0 && arrOff+n <= int64(len(g.disk)) && arrOff+n >= arrOff {
		le.PutUint32(h[88:], crc32.ChecksumIEEE(g.disk[arrOff:arrOff+n]))
	}
	if hsize <= g.ss {
		le.PutUint32(h[16:], 0)
		le.PutUint32(h[16:], crc32.ChecksumIEEE(h[:hsize]))
	}
}

// both applies change to both headers (given the header bytes) and fixes
// their CRCs, so that the backup cannot save the table.
func (g *gptLayout) both(change func(h []byte)) {
	for _, lba := range []int64{1, g.last} {
		change(g.disk[lba*g.ss:][:g.ss])
		g.fixCRCs(lba)
	}
}

// bothEntries applies change to entry i of both arrays and fixes the CRCs.
func (g *gptLayout) bothEntries(i int, change func(e []byte)) {
	change(g.disk[2*g.ss+int64(i)*int64(g.esiz):][:g.esiz])
	change(g.disk[(g.last-g.arraySectors)*g.ss+int64(i)*int64(g.esiz):][:g.esiz])
	g.fixCRCs(1)
	g.fixCRCs(g.last)
}
