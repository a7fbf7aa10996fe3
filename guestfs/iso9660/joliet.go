package iso9660

import (
	"encoding/binary"
	"unicode/utf16"
)

// Joliet is a second tree, found through a supplementary volume
// descriptor whose escape sequence names UCS-2 (level 3: "%/E"), with
// names in big-endian UCS-2. Its directories are its own; file records
// point at the same extents as the primary tree's.

// jolietEscapes are the UCS-2 levels 1, 2 and 3.
var jolietEscapes = []string{"%/@", "%/C", "%/E"}

// ucs2 encodes u big-endian.
func ucs2(u []uint16) []byte {
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.BigEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// fromUCS2 decodes big-endian UCS-2 (an odd last byte is dropped).
func fromUCS2(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// jolietText pads s to n bytes with UCS-2 spaces, for the descriptor's
// text fields.
func jolietText(s string, n int) []byte {
	b := ucs2(utf16.Encode([]rune(s)))
	for len(b) < n {
		b = append(b, 0, ' ')
	}
	return b[:n]
}
