package qfmt

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Dict is a JSON object whose members are given in QAPI schema order (the
// order QEMU inserts them). JSON writes them in the order QEMU's QDict
// iterates: by hash bucket, and within a bucket the last inserted first.
type Dict []Member

// Member is one key of a Dict.
type Member struct {
	Key   string
	Value any // Dict, []any, string, bool, int64, uint64, int
}

// Add appends a member and returns the dict.
func (d Dict) Add(key string, value any) Dict { return append(d, Member{key, value}) }

// Get returns the value stored under key.
func (d Dict) Get(key string) (any, bool) {
	for _, m := range d {
		if m.Key == key {
			return m.Value, true
		}
	}
	return nil, false
}

// tdbHash is QEMU's qdict hash function (qobject/qdict.c).
func tdbHash(name string) uint32 {
	value := uint32(0x238F13AF) * uint32(len(name))
	for i := 0; i < len(name); i++ {
		value += uint32(name[i]) << (uint(i) * 5 % 24)
	}
	return 1103515243*value + 12345
}

const qdictBuckets = 512

// Ordered returns the members in QDict iteration order.
func (d Dict) Ordered() []Member {
	type item struct {
		m      Member
		bucket uint32
		seq    int
	}
	items := make([]item, len(d))
	for i, m := range d {
		items[i] = item{m, tdbHash(m.Key) % qdictBuckets, i}
	}
	sort.SliceStable(items, func(i, j int) bool {
		if items[i].bucket != items[j].bucket {
			return items[i].bucket < items[j].bucket
		}
		return items[i].seq > items[j].seq // QLIST_INSERT_HEAD
	})
	out := make([]Member, len(items))
	for i, it := range items {
		out[i] = it.m
	}
	return out
}

// JSON renders v as qobject_to_json_pretty does (four-space indent), without
// a trailing newline.
func JSON(v any) string {
	var b strings.Builder
	writeJSON(&b, v, 0)
	return b.String()
}

func writeJSON(b *strings.Builder, v any, level int) {
	indent := func(l int) { b.WriteString(strings.Repeat("    ", l)) }
	switch x := v.(type) {
	case Dict:
		if len(x) == 0 { // QEMU's writer breaks the line even then
			b.WriteString("{\n")
			indent(level)
			b.WriteString("}")
			return
		}
		b.WriteString("{\n")
		for i, m := range x.Ordered() {
			if i > 0 {
				b.WriteString(",\n")
			}
			indent(level + 1)
			b.WriteString(Quote(m.Key))
			b.WriteString(": ")
			writeJSON(b, m.Value, level+1)
		}
		b.WriteString("\n")
		indent(level)
		b.WriteString("}")
	case []any:
		if len(x) == 0 {
			b.WriteString("[\n")
			indent(level)
			b.WriteString("]")
			return
		}
		b.WriteString("[\n")
		for i, e := range x {
			if i > 0 {
				b.WriteString(",\n")
			}
			indent(level + 1)
			writeJSON(b, e, level+1)
		}
		b.WriteString("\n")
		indent(level)
		b.WriteString("]")
	case []Dict:
		l := make([]any, len(x))
		for i := range x {
			l[i] = x[i]
		}
		writeJSON(b, l, level)
	case string:
		b.WriteString(Quote(x))
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case uint64:
		b.WriteString(strconv.FormatUint(x, 10))
	case uint32:
		b.WriteString(strconv.FormatUint(uint64(x), 10))
	default:
		panic(fmt.Sprintf("qfmt.JSON: unsupported type %T", v))
	}
}

// Quote quotes a string as QEMU's JSON writer does: only printable ASCII
// is written as is; everything else becomes an uppercase \uXXXX escape
// (surrogate pairs beyond the BMP), and invalid UTF-8 becomes U+FFFD.
func Quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		s = s[n:]
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			switch {
			case r > 0xFFFF:
				r -= 0x10000
				fmt.Fprintf(&b, `\u%04X\u%04X`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
			case r < 0x20 || r >= 0x7F:
				fmt.Fprintf(&b, `\u%04X`, r)
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// DumpHuman renders a dict as qemu-img's human "Format specific
// information" block (dump_qdict): keys in QDict order with dashes turned
// into spaces, nested values indented by four more spaces.
func DumpHuman(b *strings.Builder, d Dict, level int) {
	for _, m := range d.Ordered() {
		key := strings.ReplaceAll(m.Key, "-", " ")
		fmt.Fprintf(b, "%s%s:", strings.Repeat("    ", level), key)
		switch m.Value.(type) {
		case Dict, []any, []Dict:
			b.WriteString("\n")
		default:
			b.WriteString(" ")
		}
		dumpHumanValue(b, m.Value, level+1)
	}
}

func dumpHumanValue(b *strings.Builder, v any, level int) {
	switch x := v.(type) {
	case Dict:
		DumpHuman(b, x, level)
	case []Dict:
		l := make([]any, len(x))
		for i := range x {
			l[i] = x[i]
		}
		dumpHumanValue(b, l, level)
	case []any:
		for i, e := range x {
			fmt.Fprintf(b, "%s[%d]:", strings.Repeat("    ", level), i)
			switch e.(type) {
			case Dict, []any, []Dict:
				b.WriteString("\n")
			default:
				b.WriteString(" ")
			}
			dumpHumanValue(b, e, level+1)
		}
	case string:
		b.WriteString(x + "\n")
	case bool:
		b.WriteString(strconv.FormatBool(x) + "\n")
	default:
		fmt.Fprintf(b, "%v\n", x)
	}
}

// CompactJSON renders d on one line as qobject_to_json does (QEMU's
// "json:{...}" file names): members in QDict order, separated by ", ",
// values strings or nested dicts.
func CompactJSON(d Dict) string {
	var b strings.Builder
	b.WriteString("{")
	for i, m := range d.Ordered() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(Quote(m.Key) + ": ")
		switch v := m.Value.(type) {
		case Dict:
			b.WriteString(CompactJSON(v))
		case string:
			b.WriteString(Quote(v))
		default:
			panic(fmt.Sprintf("qfmt.CompactJSON: unsupported type %T", v))
		}
	}
	b.WriteString("}")
	return b.String()
}
