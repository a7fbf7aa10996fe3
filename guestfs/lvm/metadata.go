package lvm

import (
	"fmt"
	"strconv"

	"github.com/qimg/qimg/image"
)

// Limits of the text parser. The metadata text comes from the disk, so
// its size and shape are bounded before anything is built from it: real
// metadata is a few KiB and four sections deep (vg, logical_volumes, lv,
// segment); LVM itself caps the metadata area far below MaxMetadataSize.
const (
	// MaxMetadataSize is the largest metadata text read or parsed.
	MaxMetadataSize = 4 << 20
	// maxDepth is how deeply sections may nest.
	maxDepth = 16
	// maxNodes bounds the values and sections of one text, which bounds
	// the memory parsing takes whatever the text looks like.
	maxNodes = 1 << 18
)

// Kind is the type of a Value.
type Kind int

// The kinds of value of the LVM2 text format.
const (
	String Kind = iota
	Int
	Float
	Array
)

// Value is a value of the LVM2 text format: a string, an integer, a
// float (LVM's configuration syntax allows them; VG metadata never uses
// them) or an array of such scalars (arrays do not nest).
type Value struct {
	Kind  Kind
	Str   string
	Int   int64
	Float float64
	Array []Value
}

// Section is a `name { ... }` block of LVM2 text metadata, or the whole
// text (Name ""): its `key = value` settings and its subsections in file
// order. Keys and subsection names are unique within a section.
type Section struct {
	Name     string
	Values   map[string]Value
	Sections []*Section

	index map[string]*Section // Sections by name, kept by the parser
}

// Section returns the subsection called name, or nil.
func (s *Section) Section(name string) *Section {
	if s.index != nil {
		return s.index[name]
	}
	for _, c := range s.Sections { // a Section built by hand
		if c.Name == name {
			return c
		}
	}
	return nil
}

// ParseMetadata parses LVM2 text metadata, the format LVM keeps in the
// metadata areas of physical volumes and in /etc/lvm/backup:
//
//	vg0 {                      # a section
//		id = "Qx3j1O-..."      # a string ("\" and "\\" escaped)
//		seqno = 4              # an integer
//		status = ["READ", "WRITE"]
//		physical_volumes { pv0 { ... } }
//	}
//	contents = "Text Format Volume Group"
//
// name is the file the text comes from, for error messages. A text
// larger than MaxMetadataSize, nested too deeply or with too many values
// is refused as image.ErrLimit; a malformed one as image.ErrCorrupt.
func ParseMetadata(text []byte, name string) (*Section, error) {
	if len(text) > MaxMetadataSize {
		return nil, image.FileErrorf(name, "LVM metadata text of %d bytes, more than %d: %w", len(text), MaxMetadataSize, image.ErrLimit)
	}
	p := &parser{text: text, name: name, line: 1}
	root := &Section{Values: map[string]Value{}}
	if err := p.items(root, 0); err != nil {
		return nil, err
	}
	if tok := p.next(); tok.kind != tEOF {
		return nil, p.errorf(tok, "unexpected %s at top level", tok)
	}
	return root, nil
}

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tPunct // one of { } [ ] = ,
	tBad
)

type token struct {
	kind tokKind
	text string // identifier, unescaped string, number or punctuation
	line int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of text"
	case tString:
		return strconv.Quote(t.text)
	case tBad:
		return t.text
	}
	return "'" + t.text + "'"
}

// parser is a recursive-descent parser over a one-token lookahead.
type parser struct {
	text   []byte
	pos    int
	line   int
	name   string
	nodes  int
	peeked *token
}

func (p *parser) errorf(tok token, format string, args ...any) error {
	return image.FileErrorf(p.name, "LVM metadata line %d: %s: %w", tok.line, fmt.Sprintf(format, args...), image.ErrCorrupt)
}

func (p *parser) count(tok token) error {
	p.nodes++
	if p.nodes > maxNodes {
		return image.FileErrorf(p.name, "LVM metadata line %d: more than %d values: %w", tok.line, maxNodes, image.ErrLimit)
	}
	return nil
}

// items parses `key = value` and `name { ... }` until '}' or the end,
// which it leaves for the caller.
func (p *parser) items(s *Section, depth int) error {
	for {
		tok := p.peek()
		if tok.kind == tEOF || tok.kind == tPunct && tok.text == "}" {
			return nil
		}
		p.next()
		if tok.kind != tIdent && tok.kind != tNumber { // an LV may be called "1"
			return p.errorf(tok, "expected a name, found %s", tok)
		}
		if err := p.count(tok); err != nil {
			return err
		}
		op := p.next()
		switch {
		case op.kind == tPunct && op.text == "=":
			if _, dup := s.Values[tok.text]; dup || s.Section(tok.text) != nil {
				return p.errorf(tok, "%q set twice", tok.text)
			}
			v, err := p.value()
			if err != nil {
				return err
			}
			s.Values[tok.text] = v
		case op.kind == tPunct && op.text == "{":
			if depth+1 >= maxDepth {
				return image.FileErrorf(p.name, "LVM metadata line %d: sections nested more than %d deep: %w", tok.line, maxDepth, image.ErrLimit)
			}
			if _, dup := s.Values[tok.text]; dup || s.Section(tok.text) != nil {
				return p.errorf(tok, "section %q given twice", tok.text)
			}
			c := &Section{Name: tok.text, Values: map[string]Value{}}
			if err := p.items(c, depth+1); err != nil {
				return err
			}
			if end := p.next(); end.kind != tPunct || end.text != "}" {
				return p.errorf(end, "section %q not closed: found %s", tok.text, end)
			}
			s.Sections = append(s.Sections, c)
			if s.index == nil {
				s.index = map[string]*Section{}
			}
			s.index[c.Name] = c
		default:
			return p.errorf(op, "expected '=' or '{' after %q, found %s", tok.text, op)
		}
	}
}

// value parses a scalar or an array of scalars.
func (p *parser) value() (Value, error) {
	tok := p.next()
	if tok.kind != tPunct || tok.text != "[" {
		return p.scalar(tok)
	}
	arr := Value{Kind: Array, Array: []Value{}}
	for {
		t := p.next()
		if t.kind == tPunct && t.text == "]" {
			return arr, nil
		}
		if len(arr.Array) > 0 {
			// Elements are separated by commas; LVM writes none after
			// the last, but its own parser would accept one.
			if t.kind != tPunct || t.text != "," {
				return Value{}, p.errorf(t, "expected ',' or ']' in an array, found %s", t)
			}
			if t = p.next(); t.kind == tPunct && t.text == "]" {
				return arr, nil
			}
		}
		if err := p.count(t); err != nil {
			return Value{}, err
		}
		v, err := p.scalar(t)
		if err != nil {
			return Value{}, err
		}
		arr.Array = append(arr.Array, v)
	}
}

func (p *parser) scalar(tok token) (Value, error) {
	switch tok.kind {
	case tString:
		return Value{Kind: String, Str: tok.text}, nil
	case tNumber:
		if i, err := strconv.ParseInt(tok.text, 10, 64); err == nil {
			return Value{Kind: Int, Int: i}, nil
		}
		if f, err := strconv.ParseFloat(tok.text, 64); err == nil {
			return Value{Kind: Float, Float: f}, nil
		}
		return Value{}, p.errorf(tok, "bad number %s", tok)
	}
	return Value{}, p.errorf(tok, "expected a value, found %s", tok)
}

func (p *parser) peek() token {
	if p.peeked == nil {
		t := p.lex()
		p.peeked = &t
	}
	return *p.peeked
}

func (p *parser) next() token {
	t := p.peek()
	p.peeked = nil
	return t
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// isIdent tells the bytes of names: LVM's own tokenizer takes anything up
// to white space or punctuation, so this does too (LV and VG names are
// [a-zA-Z0-9+_.-], section and key names [a-z_0-9]).
func isIdent(c byte) bool {
	return c > ' ' && c < 0x7f && c != '#' && c != '=' && c != '{' && c != '}' &&
		c != '[' && c != ']' && c != ',' && c != '"' && c != '\''
}

func (p *parser) lex() token {
	for p.pos < len(p.text) {
		c := p.text[p.pos]
		if c == '\n' {
			p.line++
		}
		if isSpace(c) {
			p.pos++
			continue
		}
		if c == '#' {
			for p.pos < len(p.text) && p.text[p.pos] != '\n' {
				p.pos++
			}
			continue
		}
		break
	}
	if p.pos >= len(p.text) {
		return token{kind: tEOF, line: p.line}
	}
	start, line := p.pos, p.line
	c := p.text[p.pos]
	switch {
	case c == '{' || c == '}' || c == '[' || c == ']' || c == '=' || c == ',':
		p.pos++
		return token{kind: tPunct, text: string(c), line: line}
	case c == '"':
		// A string ends at the next unescaped quote; a backslash takes
		// the next byte literally (LVM escapes only " and \).
		buf := make([]byte, 0, 32)
		for p.pos++; p.pos < len(p.text); p.pos++ {
			c := p.text[p.pos]
			switch c {
			case '"':
				p.pos++
				return token{kind: tString, text: string(buf), line: line}
			case '\\':
				if p.pos+1 < len(p.text) {
					p.pos++
					c = p.text[p.pos]
				}
			case '\n':
				p.line++
			}
			buf = append(buf, c)
		}
		return token{kind: tBad, text: "a string that is never closed", line: line}
	case c == '-' || c == '+' || c >= '0' && c <= '9':
		for p.pos < len(p.text) && isIdent(p.text[p.pos]) {
			p.pos++
		}
		text := string(p.text[start:p.pos])
		// A name may start with a digit or '-' too (an LV called "1"
		// is legal): it is a number only if it parses as one.
		if _, err := strconv.ParseFloat(text, 64); err == nil {
			return token{kind: tNumber, text: text, line: line}
		}
		return token{kind: tIdent, text: text, line: line}
	case isIdent(c):
		for p.pos < len(p.text) && isIdent(p.text[p.pos]) {
			p.pos++
		}
		return token{kind: tIdent, text: string(p.text[start:p.pos]), line: line}
	}
	p.pos++
	return token{kind: tBad, text: fmt.Sprintf("byte %#02x", c), line: line}
}
