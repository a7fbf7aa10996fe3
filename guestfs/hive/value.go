package hive

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"
	"strings"
	"unicode/utf16"

	"github.com/qimg/qimg/image"
)

// Type is a value's data type.
type Type uint32

// The data types of registry values.
const (
	None           Type = 0
	String         Type = 1 // REG_SZ: UTF-16LE, NUL-terminated
	ExpandString   Type = 2 // REG_EXPAND_SZ
	Binary         Type = 3
	DWord          Type = 4 // little-endian uint32
	DWordBigEndian Type = 5
	Link           Type = 6
	MultiString    Type = 7 // REG_MULTI_SZ: strings, each NUL-terminated
	QWord          Type = 11
	vkDataInline        = 0x80000000 // data of at most 4 bytes, in the offset field
	vkCompName          = 0x1
	bigDataSegment      = 16344 // bytes of data in each segment of a "db" cell
	vkName              = 20
	maxValueName        = 32767 // bytes: Windows allows 16383 characters
	// MaxValues bounds the values of one key.
	MaxValues = 1 << 16
)

// Value is a registry value.
type Value struct {
	k    *Key
	name string
	typ  Type
	vk   []byte
}

// Name is the value's name; "" is the key's default value.
func (v *Value) Name() string { return v.name }

// Type is the value's data type.
func (v *Value) Type() Type { return v.typ }

// Values lists the key's values in the hive's order.
func (k *Key) Values() ([]*Value, error) {
	count := le32(k.nk[nkValueCount:])
	if count == 0 {
		return nil, nil
	}
	what := fmt.Sprintf("value list of key %s", quote(k.path))
	if count > MaxValues {
		return nil, image.FileErrorf(k.h.name, "hive: %s: %d values, more than the %d read: %w", what, count, MaxValues, image.ErrLimit)
	}
	list, _, err := k.h.cell(le32(k.nk[nkValueList:]), what, 4*int(count))
	if err != nil {
		return nil, err
	}
	if uint64(count)*4 > uint64(len(list)) {
		return nil, k.h.corrupt("%s: %d values overrun the %d-byte cell", what, count, len(list))
	}
	vals := make([]*Value, 0, count)
	for i := range count {
		v, err := k.value(le32(list[4*i:]))
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
	}
	return vals, nil
}

// Value returns the value of that name, matched case-insensitively (""
// is the default value); a missing one is an error wrapping
// fs.ErrNotExist.
func (k *Key) Value(name string) (*Value, error) {
	vals, err := k.Values()
	if err != nil {
		return nil, err
	}
	for _, v := range vals {
		if strings.EqualFold(v.name, name) {
			return v, nil
		}
	}
	return nil, image.FileErrorf(k.h.name, "hive: key %s: value %q: %w", quote(k.path), name, fs.ErrNotExist)
}

func (k *Key) value(off uint32) (*Value, error) {
	what := fmt.Sprintf("value of key %s", quote(k.path))
	vk, _, err := k.h.cell(off, what, vkName+maxValueName)
	if err != nil {
		return nil, err
	}
	if len(vk) < vkName || string(vk[:2]) != "vk" {
		return nil, k.h.corrupt("%s: cell at %#x is not a value node", what, off)
	}
	n := int(le16(vk[2:]))
	if vkName+n > len(vk) {
		return nil, k.h.corrupt("%s: name of %d bytes overruns its cell", what, n)
	}
	name := decodeName(vk[vkName:vkName+n], le16(vk[16:])&vkCompName != 0)
	return &Value{k: k, name: name, typ: Type(le32(vk[12:])), vk: bytes.Clone(vk[:vkName])}, nil
}

// Data returns the value's bytes, as stored.
func (v *Value) Data() ([]byte, error) {
	size, off := le32(v.vk[4:]), le32(v.vk[8:])
	what := fmt.Sprintf("data of value %q of key %s", v.name, quote(v.k.path))
	h := v.k.h
	if size&vkDataInline != 0 {
		size &^= vkDataInline
		if size > 4 {
			return nil, h.corrupt("%s: %d bytes inline", what, size)
		}
		return v.vk[8 : 8+size], nil
	}
	if size > MaxValueSize {
		return nil, image.FileErrorf(h.name, "hive: %s: %d bytes, more than the %d read: %w", what, size, MaxValueSize, image.ErrLimit)
	}
	if size == 0 {
		return nil, nil
	}
	cell, full, err := h.cell(off, what, int(size))
	if err != nil {
		return nil, err
	}
	if size > bigDataSegment && h.minor >= 4 && len(cell) >= 8 && string(cell[:2]) == "db" {
		return h.bigData(cell, size, what)
	}
	if int64(size) > int64(full) {
		return nil, h.corrupt("%s: %d bytes overrun the %d-byte cell", what, size, full)
	}
	return cell[:size], nil
}

// bigData joins the segments of a "db" cell into size bytes.
func (h *Hive) bigData(db []byte, size uint32, what string) ([]byte, error) {
	n := int(le16(db[2:]))
	list, _, err := h.cell(le32(db[4:]), what, 4*n)
	if err != nil {
		return nil, err
	}
	if n*4 > len(list) || uint64(n)*bigDataSegment < uint64(size) {
		return nil, h.corrupt("%s: %d segments for %d bytes", what, n, size)
	}
	out := make([]byte, 0, size)
	for i := 0; i < n && uint32(len(out)) < size; i++ {
		seg, _, err := h.cell(le32(list[4*i:]), what, bigDataSegment)
		if err != nil {
			return nil, err
		}
		take := min(int(size)-len(out), bigDataSegment)
		if take > len(seg) {
			return nil, h.corrupt("%s: segment %d of %d bytes, %d needed", what, i, len(seg), take)
		}
		out = append(out, seg[:take]...)
	}
	return out, nil
}

// String returns a REG_SZ or REG_EXPAND_SZ value (environment variables
// unexpanded), up to its first NUL.
func (v *Value) String() (string, error) {
	if v.typ != String && v.typ != ExpandString {
		return "", v.typeErr("a string")
	}
	b, err := v.Data()
	if err != nil {
		return "", err
	}
	s := utf16String(b)
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return s, nil
}

// Strings returns the strings of a REG_MULTI_SZ value.
func (v *Value) Strings() ([]string, error) {
	if v.typ != MultiString {
		return nil, v.typeErr("a multi-string")
	}
	b, err := v.Data()
	if err != nil {
		return nil, err
	}
	var out []string
	for s := range strings.SplitSeq(utf16String(b), "\x00") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// Uint returns a REG_DWORD, REG_DWORD_BIG_ENDIAN or REG_QWORD value.
func (v *Value) Uint() (uint64, error) {
	b, err := v.Data()
	if err != nil {
		return 0, err
	}
	switch {
	case v.typ == DWord && len(b) >= 4:
		return uint64(le32(b)), nil
	case v.typ == DWordBigEndian && len(b) >= 4:
		return uint64(binary.BigEndian.Uint32(b)), nil
	case v.typ == QWord && len(b) >= 8:
		return binary.LittleEndian.Uint64(b), nil
	}
	return 0, v.typeErr("a number")
}

func (v *Value) typeErr(want string) error {
	return image.FileErrorf(v.k.h.name, "hive: value %q of key %s is of type %d (%d bytes), not %s: %w",
		v.name, quote(v.k.path), v.typ, le32(v.vk[4:])&^vkDataInline, want, image.ErrInvalidArgument)
}

func utf16String(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = le16(b[2*i:])
	}
	return string(utf16.Decode(u))
}
