package hive

import (
	"fmt"
	"io/fs"
	"strings"
	"unicode/utf16"

	"github.com/qimg/qimg/image"
)

// Key node ("nk") fields, offsets in the cell data.
const (
	nkSubkeyCount = 20
	nkSubkeyList  = 28
	nkValueCount  = 36
	nkValueList   = 40
	nkNameLen     = 72
	nkName        = 76
	nkCompName    = 0x20 // the name is stored one byte per character
	// maxKeyName bounds a key name's bytes (Windows allows 255
	// characters).
	maxKeyName = 1024
	// listLimit is the most a subkey list cell can hold: a 16-bit count
	// of 8-byte entries.
	listLimit = 4 + 0xFFFF*8
	// MaxSubkeys bounds the subkeys of one key (the largest keys of a
	// real SOFTWARE hive, under Classes, have tens of thousands).
	MaxSubkeys = 1 << 18
)

// Key is a registry key.
type Key struct {
	h    *Hive
	off  uint32
	path string // backslash-separated from the root, for messages
	name string
	nk   []byte
}

// Root returns the hive's root key.
func (h *Hive) Root() (*Key, error) {
	return h.key(h.root, "")
}

// key reads the key node at off; path names it in messages.
func (h *Hive) key(off uint32, path string) (*Key, error) {
	what := "key " + quote(path)
	nk, _, err := h.cell(off, what, nkName+maxKeyName)
	if err != nil {
		return nil, err
	}
	if len(nk) < nkName || string(nk[:2]) != "nk" {
		return nil, h.corrupt("%s: cell at %#x is not a key node", what, off)
	}
	n := int(le16(nk[nkNameLen:]))
	if n > maxKeyName || nkName+n > len(nk) {
		return nil, h.corrupt("%s: name of %d bytes overruns its cell", what, n)
	}
	name := decodeName(nk[nkName:nkName+n], le16(nk[2:])&nkCompName != 0)
	if strings.Contains(name, `\`) {
		return nil, h.corrupt("%s: subkey name %q holds a backslash", what, name)
	}
	return &Key{h: h, off: off, path: path, name: name, nk: nk}, nil
}

// Name is the key's name ("" for the root of some hives).
func (k *Key) Name() string { return k.name }

// Path is the key's path below the root, backslash-separated.
func (k *Key) Path() string { return k.path }

// Subkeys lists the key's subkeys in the hive's order (sorted by name).
func (k *Key) Subkeys() ([]*Key, error) {
	offs, err := k.subkeyOffsets()
	if err != nil {
		return nil, err
	}
	keys := make([]*Key, 0, len(offs))
	for _, off := range offs {
		sk, err := k.h.key(off, k.path+`\?`)
		if err != nil {
			return nil, err
		}
		sk.path = join(k.path, sk.name)
		keys = append(keys, sk)
	}
	return keys, nil
}

// Subkey returns the subkey of that name, matched case-insensitively;
// a missing one is an error wrapping fs.ErrNotExist.
func (k *Key) Subkey(name string) (*Key, error) {
	offs, err := k.subkeyOffsets()
	if err != nil {
		return nil, err
	}
	for _, off := range offs {
		sk, err := k.h.key(off, join(k.path, name))
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(sk.name, name) {
			sk.path = join(k.path, sk.name)
			return sk, nil
		}
	}
	return nil, image.FileErrorf(k.h.name, "hive: key %s: %w", quote(join(k.path, name)), fs.ErrNotExist)
}

// Lookup returns the key at path below k: names separated by
// backslashes ("Microsoft\Windows NT\CurrentVersion").
func (k *Key) Lookup(path string) (*Key, error) {
	cur := k
	for name := range strings.SplitSeq(path, `\`) {
		if name == "" {
			continue
		}
		next, err := cur.Subkey(name)
		if err != nil {
			return nil, err
		}
		cur = next
	}
	return cur, nil
}

// Key returns the key at path below the root.
func (h *Hive) Key(path string) (*Key, error) {
	root, err := h.Root()
	if err != nil {
		return nil, err
	}
	return root.Lookup(path)
}

// subkeyOffsets reads the key's subkey list: as many offsets as the key
// node counts, from one leaf list or from the leaves of an index root.
func (k *Key) subkeyOffsets() ([]uint32, error) {
	count := le32(k.nk[nkSubkeyCount:])
	if count == 0 {
		return nil, nil
	}
	what := fmt.Sprintf("subkey list of key %s", quote(k.path))
	if count > MaxSubkeys {
		return nil, image.FileErrorf(k.h.name, "hive: %s: %d subkeys, more than the %d read: %w", what, count, MaxSubkeys, image.ErrLimit)
	}
	list, _, err := k.h.cell(le32(k.nk[nkSubkeyList:]), what, listLimit)
	if err != nil {
		return nil, err
	}
	var offs []uint32
	if len(list) >= 2 && string(list[:2]) == "ri" {
		leaves, err := listEntries(list, 4)
		if err != nil {
			return nil, k.h.corrupt("%s: %v", what, err)
		}
		for _, leaf := range leaves {
			l, _, err := k.h.cell(leaf, what, listLimit)
			if err != nil {
				return nil, err
			}
			if offs, err = appendLeaf(offs, l, count); err != nil {
				return nil, k.h.corrupt("%s: %v", what, err)
			}
		}
	} else if offs, err = appendLeaf(nil, list, count); err != nil {
		return nil, k.h.corrupt("%s: %v", what, err)
	}
	if uint32(len(offs)) != count {
		return nil, k.h.corrupt("%s: %d entries for %d subkeys", what, len(offs), count)
	}
	return offs, nil
}

// appendLeaf appends the key offsets of an "lf", "lh" or "li" list,
// refusing to go past want entries in all.
func appendLeaf(offs []uint32, list []byte, want uint32) ([]uint32, error) {
	if len(list) < 4 {
		return nil, fmt.Errorf("list cell of %d bytes", len(list))
	}
	var stride int
	switch string(list[:2]) {
	case "lf", "lh":
		stride = 8
	case "li":
		stride = 4
	default:
		return nil, fmt.Errorf("list signature %q", list[:2])
	}
	entries, err := listEntries(list, stride)
	if err != nil {
		return nil, err
	}
	if uint64(len(offs))+uint64(len(entries)) > uint64(want) {
		return nil, fmt.Errorf("more entries than the key's %d subkeys", want)
	}
	return append(offs, entries...), nil
}

// listEntries returns the first dword of each stride-byte element of a
// list cell whose 16-bit count is at offset 2.
func listEntries(list []byte, stride int) ([]uint32, error) {
	n := int(le16(list[2:]))
	if 4+n*stride > len(list) {
		return nil, fmt.Errorf("%d entries overrun the %d-byte cell", n, len(list))
	}
	out := make([]uint32, n)
	for i := range out {
		out[i] = le32(list[4+i*stride:])
	}
	return out, nil
}

// decodeName decodes a key or value name: Latin-1 when compressed,
// UTF-16LE otherwise.
func decodeName(b []byte, compressed bool) string {
	if compressed {
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r)
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = le16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + `\` + name
}

func quote(path string) string { return `\` + path }
