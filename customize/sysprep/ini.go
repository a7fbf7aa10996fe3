package sysprep

import "strings"

// iniEntry is one line of an INI-style file (a NetworkManager keyfile,
// a systemd-networkd unit): its section and, for a key=value line, the
// key and value with surrounding blanks trimmed.
type iniEntry struct {
	text    string // the line as written, without its end of line
	eol     string
	section string
	key     string // "" for a section header, comment or blank line
	value   string
	// cont are the lines of a systemd value continued with a trailing
	// backslash, which belong to this entry.
	cont []string
}

// parseINI splits a file into entries. Comment lines start with '#' or
// ';'. continued turns on systemd's line continuation.
func parseINI(data []byte, continued bool) []iniEntry {
	var out []iniEntry
	section := ""
	lines := splitLines(data)
	for i := 0; i < len(lines); i++ {
		line := string(lines[i])
		if line == "" {
			continue
		}
		text := strings.TrimRight(line, "\r\n")
		e := iniEntry{text: text, eol: line[len(text):], section: section}
		trimmed := strings.TrimSpace(text)
		switch {
		case trimmed == "" || trimmed[0] == '#' || trimmed[0] == ';':
		case trimmed[0] == '[' && strings.HasSuffix(trimmed, "]"):
			section = trimmed[1 : len(trimmed)-1]
			e.section = section
		default:
			k, v, ok := strings.Cut(trimmed, "=")
			if !ok {
				break
			}
			e.key, e.value = strings.TrimSpace(k), strings.TrimSpace(v)
			for continued && strings.HasSuffix(e.value, "\\") && i+1 < len(lines) {
				i++
				next := string(lines[i])
				e.cont = append(e.cont, next)
				e.value = strings.TrimSuffix(e.value, "\\") + " " + strings.TrimSpace(next)
			}
		}
		out = append(out, e)
	}
	return out
}

// bytes is the entry as written, continuation lines included.
func (e iniEntry) bytes() string {
	return e.text + e.eol + strings.Join(e.cont, "")
}

// joinINI writes entries back.
func joinINI(entries []iniEntry) []byte {
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e.bytes())
	}
	return []byte(b.String())
}
