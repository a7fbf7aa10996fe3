// Package hivetest writes small Windows registry hive files for tests:
// the SOFTWARE and SYSTEM hives of a fake Windows guest, and hives that
// use every list and data layout package guestfs/hive reads. It writes
// what the format needs and no more (no security cells, no class
// names, no transaction logs).
package hivetest

import (
	"encoding/binary"
	"slices"
	"strings"
	"unicode/utf16"
)

// Key is a key to write, with its values and subkeys.
type Key struct {
	Name    string
	Values  []Value
	Subkeys []*Key
}

// Value is a value to write: Type is the registry data type.
type Value struct {
	Name string
	Type uint32
	Data []byte
}

// Options choose the layouts a hive uses.
type Options struct {
	// Minor is the format's minor version (default 5); 3 keeps big
	// values in one cell, 4 on split them over a "db" cell.
	Minor uint32
	// List is the subkey list kind: "lf", "lh" (default), "li", or "ri"
	// (an index root over "lh" lists of at most two keys).
	List string
	// UTF16Names stores every name in UTF-16 (otherwise names that fit
	// in Latin-1 are stored one byte per character, as Windows does).
	UTF16Names bool
}

// SZ is a REG_SZ value.
func SZ(name, s string) Value { return Value{Name: name, Type: 1, Data: utf16z(s)} }

// ExpandSZ is a REG_EXPAND_SZ value.
func ExpandSZ(name, s string) Value { return Value{Name: name, Type: 2, Data: utf16z(s)} }

// MultiSZ is a REG_MULTI_SZ value.
func MultiSZ(name string, ss ...string) Value {
	var b []byte
	for _, s := range ss {
		b = append(b, utf16z(s)...)
	}
	return Value{Name: name, Type: 7, Data: append(b, 0, 0)}
}

// DWord is a REG_DWORD value.
func DWord(name string, n uint32) Value {
	return Value{Name: name, Type: 4, Data: binary.LittleEndian.AppendUint32(nil, n)}
}

// QWord is a REG_QWORD value.
func QWord(name string, n uint64) Value {
	return Value{Name: name, Type: 11, Data: binary.LittleEndian.AppendUint64(nil, n)}
}

// Binary is a REG_BINARY value.
func Binary(name string, b []byte) Value { return Value{Name: name, Type: 3, Data: b} }

// Path returns the key at a backslash-separated path below k, making
// the keys missing on the way.
func (k *Key) Path(path string) *Key {
	cur := k
	for name := range strings.SplitSeq(path, `\`) {
		i := slices.IndexFunc(cur.Subkeys, func(s *Key) bool { return strings.EqualFold(s.Name, name) })
		if i < 0 {
			cur.Subkeys = append(cur.Subkeys, &Key{Name: name})
			i = len(cur.Subkeys) - 1
		}
		cur = cur.Subkeys[i]
	}
	return cur
}

func utf16z(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	return append(b, 0, 0)
}

const (
	baseBlock = 4096
	segment   = 16344
)

// writer lays cells out in one hive bin.
type writer struct {
	opt  Options
	bins []byte // from the start of the bin (cell offsets are relative to it)
}

// cell appends an allocated cell holding data and returns its offset.
func (w *writer) cell(data []byte) uint32 {
	off := uint32(len(w.bins))
	size := (4 + len(data) + 7) &^ 7
	c := make([]byte, size)
	binary.LittleEndian.PutUint32(c, uint32(-int32(size)))
	copy(c[4:], data)
	w.bins = append(w.bins, c...)
	return off
}

// Build returns the hive file holding the tree under root.
func Build(root *Key, opt Options) []byte {
	if opt.Minor == 0 {
		opt.Minor = 5
	}
	if opt.List == "" {
		opt.List = "lh"
	}
	w := &writer{opt: opt, bins: make([]byte, 32)}
	rootOff := w.key(root, true)
	// Pad the bin to 4 KiB with one free cell.
	if pad := (-len(w.bins)) & 4095; pad > 0 {
		if pad < 8 {
			pad += 4096
		}
		free := make([]byte, pad)
		binary.LittleEndian.PutUint32(free, uint32(pad))
		w.bins = append(w.bins, free...)
	}
	copy(w.bins, "hbin")
	binary.LittleEndian.PutUint32(w.bins[8:], uint32(len(w.bins)))
	base := make([]byte, baseBlock)
	copy(base, "regf")
	le := binary.LittleEndian
	le.PutUint32(base[4:], 1)
	le.PutUint32(base[8:], 1)
	le.PutUint32(base[20:], 1)
	le.PutUint32(base[24:], opt.Minor)
	le.PutUint32(base[32:], 1)
	le.PutUint32(base[36:], rootOff)
	le.PutUint32(base[40:], uint32(len(w.bins)))
	le.PutUint32(base[44:], 1)
	var x uint32
	for i := 0; i < 508; i += 4 {
		x ^= le.Uint32(base[i:])
	}
	le.PutUint32(base[508:], x)
	return append(base, w.bins...)
}

// key writes k's values and subkeys, then its node, and returns the
// node's offset.
func (w *writer) key(k *Key, root bool) uint32 {
	le := binary.LittleEndian
	var valueList []byte
	for _, v := range k.Values {
		valueList = le.AppendUint32(valueList, w.value(v))
	}
	subs := slices.Clone(k.Subkeys)
	slices.SortFunc(subs, func(a, b *Key) int { return strings.Compare(strings.ToUpper(a.Name), strings.ToUpper(b.Name)) })
	offs := make([]uint32, len(subs))
	for i, s := range subs {
		offs[i] = w.key(s, false)
	}
	name, compressed := w.name(k.Name)
	nk := make([]byte, 76, 76+len(name))
	copy(nk, "nk")
	flags := uint16(0)
	if compressed {
		flags |= 0x20
	}
	if root {
		flags |= 0x4
	}
	le.PutUint16(nk[2:], flags)
	le.PutUint32(nk[16:], 0xFFFFFFFF) // parent: not written
	le.PutUint32(nk[20:], uint32(len(subs)))
	le.PutUint32(nk[28:], 0xFFFFFFFF)
	le.PutUint32(nk[32:], 0xFFFFFFFF)
	if len(subs) > 0 {
		le.PutUint32(nk[28:], w.subkeyList(subs, offs))
	}
	le.PutUint32(nk[36:], uint32(len(k.Values)))
	le.PutUint32(nk[40:], 0xFFFFFFFF)
	if len(valueList) > 0 {
		le.PutUint32(nk[40:], w.cell(valueList))
	}
	le.PutUint32(nk[44:], 0xFFFFFFFF) // security: not written
	le.PutUint32(nk[48:], 0xFFFFFFFF) // class name: none
	le.PutUint16(nk[72:], uint16(len(name)))
	return w.cell(append(nk, name...))
}

func (w *writer) subkeyList(subs []*Key, offs []uint32) uint32 {
	if w.opt.List != "ri" {
		return w.leaf(w.opt.List, subs, offs)
	}
	var leaves []uint32
	for i := 0; i < len(subs); i += 2 {
		j := min(i+2, len(subs))
		leaves = append(leaves, w.leaf("lh", subs[i:j], offs[i:j]))
	}
	return w.cell(list("ri", leaves, nil))
}

func (w *writer) leaf(kind string, subs []*Key, offs []uint32) uint32 {
	var hints []uint32
	for _, s := range subs {
		up := strings.ToUpper(s.Name)
		switch kind {
		case "lh":
			var h uint32
			for _, r := range up {
				h = h*37 + uint32(r)
			}
			hints = append(hints, h)
		case "lf":
			var b [4]byte
			copy(b[:], up)
			hints = append(hints, binary.LittleEndian.Uint32(b[:]))
		}
	}
	if kind == "li" {
		hints = nil
	}
	return w.cell(list(kind, offs, hints))
}

// list is a list cell's data: signature, count, offsets (each followed
// by its hint in "lf" and "lh" lists).
func list(sig string, offs, hints []uint32) []byte {
	le := binary.LittleEndian
	b := le.AppendUint16([]byte(sig), uint16(len(offs)))
	for i, o := range offs {
		b = le.AppendUint32(b, o)
		if hints != nil {
			b = le.AppendUint32(b, hints[i])
		}
	}
	return b
}

func (w *writer) value(v Value) uint32 {
	le := binary.LittleEndian
	name, compressed := w.name(v.Name)
	vk := make([]byte, 20, 20+len(name))
	copy(vk, "vk")
	le.PutUint16(vk[2:], uint16(len(name)))
	le.PutUint32(vk[12:], v.Type)
	if compressed {
		le.PutUint16(vk[16:], 1)
	}
	switch {
	case len(v.Data) <= 4:
		le.PutUint32(vk[4:], uint32(len(v.Data))|0x80000000)
		copy(vk[8:12], v.Data)
	case len(v.Data) > segment && w.opt.Minor >= 4:
		le.PutUint32(vk[4:], uint32(len(v.Data)))
		le.PutUint32(vk[8:], w.bigData(v.Data))
	default:
		le.PutUint32(vk[4:], uint32(len(v.Data)))
		le.PutUint32(vk[8:], w.cell(v.Data))
	}
	return w.cell(append(vk, name...))
}

func (w *writer) bigData(data []byte) uint32 {
	var segs []byte
	n := 0
	for len(data) > 0 {
		k := min(len(data), segment)
		segs = binary.LittleEndian.AppendUint32(segs, w.cell(data[:k]))
		data = data[k:]
		n++
	}
	db := binary.LittleEndian.AppendUint16([]byte("db"), uint16(n))
	db = binary.LittleEndian.AppendUint32(db, w.cell(segs))
	return w.cell(db)
}

// name encodes a name, one byte per character when it fits in Latin-1
// (unless the options ask for UTF-16).
func (w *writer) name(s string) ([]byte, bool) {
	latin := !w.opt.UTF16Names
	for _, r := range s {
		if r > 0xFF {
			latin = false
		}
	}
	if latin {
		b := make([]byte, 0, len(s))
		for _, r := range s {
			b = append(b, byte(r))
		}
		return b, true
	}
	z := utf16z(s)
	return z[:len(z)-2], false
}
