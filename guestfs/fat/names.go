package fat

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Directory entry layout.
const (
	slotSize   = 32
	attrRO     = 0x01
	attrHidden = 0x02
	attrSystem = 0x04
	attrVolume = 0x08
	attrDir    = 0x10
	attrArch   = 0x20
	attrLFN    = 0x0f // read-only|hidden|system|volume marks a long-name slot
	freeSlot   = 0xe5 // first byte of a deleted entry
	lowerBase  = 0x08 // NT flags: the 8-character base is lower case
	lowerExt   = 0x10 // NT flags: the extension is lower case
	lfnChars   = 13   // UTF-16 units per long-name slot
	maxLFN     = 255  // UTF-16 units in a long name
	maxLFNSlot = 20   // slots of a 255-unit name
)

// cp437 maps the upper half of code page 437, Linux's default for the
// bytes of short names.
var cp437 = []rune("ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0")

// shortName shows the 11 bytes of a short name as Linux does with its
// default shortname=mixed: upper case unless the NT flags say lower.
func shortName(raw []byte, nt byte) (string, error) {
	var b11 [11]byte
	copy(b11[:], raw)
	if b11[0] == 0x05 {
		b11[0] = freeSlot // 0x05 stands for a leading 0xE5
	}
	part := func(b []byte, lower bool) (string, error) {
		var sb strings.Builder
		for _, c := range []byte(strings.TrimRight(string(b), " ")) {
			switch {
			case c == 0 || c == '/':
				return "", fmt.Errorf("short name %q holds %q", raw, c)
			case c >= 0x80 && lower:
				sb.WriteRune(unicode.ToLower(cp437[c-0x80]))
			case c >= 0x80:
				sb.WriteRune(cp437[c-0x80])
			case lower && c >= 'A' && c <= 'Z':
				sb.WriteByte(c + 'a' - 'A')
			default:
				sb.WriteByte(c)
			}
		}
		return sb.String(), nil
	}
	base, err := part(b11[:8], nt&lowerBase != 0)
	if err != nil {
		return "", err
	}
	ext, err := part(b11[8:], nt&lowerExt != 0)
	if err != nil {
		return "", err
	}
	if base == "" {
		return "", fmt.Errorf("short name %q has no base", raw)
	}
	if ext != "" {
		return base + "." + ext, nil
	}
	return base, nil
}

// checksum is the long-name checksum of an 11-byte short name.
func checksum(short []byte) byte {
	var s byte
	for _, c := range short[:11] {
		s = (s>>1 | s<<7) + c
	}
	return s
}

// lfnOffsets are where a long-name slot keeps its 13 UTF-16 units.
var lfnOffsets = [lfnChars]int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30}

// lfnSlots encodes name as long-name slots in directory order (the
// last part first), for the short name with checksum sum.
func lfnSlots(name string, sum byte) [][slotSize]byte {
	units := utf16.Encode([]rune(name))
	n := (len(units) + lfnChars - 1) / lfnChars
	if len(units)%lfnChars != 0 {
		units = append(units, 0)
		for len(units)%lfnChars != 0 {
			units = append(units, 0xffff)
		}
	}
	slots := make([][slotSize]byte, n)
	for i := range n {
		s := &slots[n-1-i]
		s[0] = byte(i + 1)
		if i == n-1 {
			s[0] |= 0x40
		}
		s[11], s[13] = attrLFN, sum
		for j, off := range lfnOffsets {
			u := units[i*lfnChars+j]
			s[off], s[off+1] = byte(u), byte(u>>8)
		}
	}
	return slots
}

// lfnUnits reads the 13 units of a long-name slot.
func lfnUnits(s []byte) []uint16 {
	out := make([]uint16, lfnChars)
	for j, off := range lfnOffsets {
		out[j] = uint16(s[off]) | uint16(s[off+1])<<8
	}
	return out
}

// decodeLFN turns collected units into a name, up to the first NUL.
func decodeLFN(units []uint16) (string, error) {
	for i, u := range units {
		if u == 0 {
			units = units[:i]
			break
		}
	}
	name := string(utf16.Decode(units))
	switch {
	case name == "":
		return "", fmt.Errorf("empty long name")
	case name == "." || name == "..":
		return "", fmt.Errorf("long name %q", name)
	case strings.ContainsRune(name, '/'):
		return "", fmt.Errorf("long name %q holds '/'", name)
	}
	return name, nil
}

// validName checks a name given for a new entry, as Linux's vfat
// accepts them (and Windows can use them).
func validName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("name %q", name)
	case !utf8.ValidString(name):
		return fmt.Errorf("name %q is not UTF-8", name)
	case len(utf16.Encode([]rune(name))) > maxLFN:
		return fmt.Errorf("name %q is longer than %d UTF-16 units", name, maxLFN)
	case strings.HasSuffix(name, ".") || strings.HasSuffix(name, " "):
		return fmt.Errorf("name %q ends in a dot or space", name)
	}
	for _, r := range name {
		if r < 0x20 || strings.ContainsRune(`"*/:<>?\|`, r) {
			return fmt.Errorf("name %q holds %q, which FAT forbids", name, r)
		}
	}
	return nil
}

// shortChars are the characters a short name may hold besides A-Z and
// 0-9.
const shortChars = "!#$%&'()-@^_`{}~"

func isShortChar(r rune) bool {
	return r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(shortChars, r)
}

// exact83 returns the short entry bytes and NT case flags of a name that
// is a valid 8.3 name in one case per part, so it needs no long name.
func exact83(name string) (raw [11]byte, nt byte, ok bool) {
	base, ext, dot := strings.Cut(name, ".")
	if base == "" || len(base) > 8 || len(ext) > 3 || dot && ext == "" || strings.Contains(ext, ".") {
		return raw, 0, false
	}
	flag := func(s string, lower byte) (byte, bool) {
		up, low := false, false
		for _, r := range s {
			switch {
			case r >= 'a' && r <= 'z':
				low = true
			case r >= 'A' && r <= 'Z':
				up = true
			case !isShortChar(r):
				return 0, false
			}
		}
		if up && low {
			return 0, false
		}
		if low {
			return lower, true
		}
		return 0, true
	}
	fb, ok1 := flag(base, lowerBase)
	fe, ok2 := flag(ext, lowerExt)
	if !ok1 || !ok2 {
		return raw, 0, false
	}
	copy(raw[:], strings.Repeat(" ", 11))
	copy(raw[:8], strings.ToUpper(base))
	copy(raw[8:], strings.ToUpper(ext))
	return raw, fb | fe, true
}

// basisName makes the upper-case 8.3 basis of a long name: spaces and
// leading dots dropped, characters a short name cannot hold as '_', the
// base cut to 8 and the extension (after the last dot) to 3.
func basisName(name string) (base, ext string) {
	clean := func(s string) string {
		var sb strings.Builder
		for _, r := range strings.ToUpper(s) {
			switch {
			case r == ' ' || r == '.':
			case isShortChar(r):
				sb.WriteRune(r)
			default:
				sb.WriteByte('_')
			}
		}
		return sb.String()
	}
	name = strings.TrimLeft(name, ".")
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		base, ext = clean(name[:i]), clean(name[i+1:])
	} else {
		base = clean(name)
	}
	if len(base) > 8 {
		base = base[:8]
	}
	if len(ext) > 3 {
		ext = ext[:3]
	}
	if base == "" {
		base = "_"
	}
	return base, ext
}

// uniqueShort makes a short name "BASE~N.EXT" for a long name, not in
// taken (the 11-byte names of the directory).
func uniqueShort(name string, taken map[[11]byte]bool) ([11]byte, bool) {
	base, ext := basisName(name)
	for n := 1; n < 1000000; n++ {
		tail := fmt.Sprintf("~%d", n)
		b := base
		if len(b)+len(tail) > 8 {
			b = b[:8-len(tail)]
		}
		var raw [11]byte
		copy(raw[:], strings.Repeat(" ", 11))
		copy(raw[:8], b+tail)
		copy(raw[8:], ext)
		if !taken[raw] {
			return raw, true
		}
	}
	return [11]byte{}, false
}
