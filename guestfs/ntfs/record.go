package ntfs

import (
	"cmp"
	"fmt"
	"slices"
	"unicode/utf16"
)

// Attribute types read.
const (
	attrStandardInfo  = 0x10
	attrList          = 0x20
	attrFileName      = 0x30
	attrData          = 0x80
	attrIndexRoot     = 0x90
	attrIndexAlloc    = 0xA0
	attrReparsePoint  = 0xC0
	attrEnd           = 0xFFFFFFFF
	rootRecord        = 5
	firstUserRecord   = 16 // records below are the filesystem's own ($MFT, $Bitmap, ...)
	recordInUse       = 0x1
	recordIsDirectory = 0x2
	maxAttrList       = 1 << 20 // bytes of an $ATTRIBUTE_LIST
	maxRuns           = 1 << 20 // runs of one attribute, all extents together
	cacheRecords      = 4096
)

// attr is one attribute of a file, with its extents merged: runs are
// absolute cluster numbers in VCN order.
type attr struct {
	typ       uint32
	name      string
	id        uint16
	flags     uint16
	resident  bool
	value     []byte // a resident attribute's value
	startVCN  int64
	runs      []run
	allocSize int64
	dataSize  int64
	initSize  int64
}

// find returns the attribute of that type and name, or nil.
func find(attrs []attr, typ uint32, name string) *attr {
	for i := range attrs {
		if attrs[i].typ == typ && attrs[i].name == name {
			return &attrs[i]
		}
	}
	return nil
}

// record reads MFT record n with its fixups applied.
func (f *FS) record(n int64) ([]byte, error) {
	if n < 0 || n >= f.records {
		return nil, f.corrupt("MFT record %d of %d", n, f.records)
	}
	buf := make([]byte, f.recordSize)
	if _, err := f.mft.ReadAt(buf, n*f.recordSize); err != nil {
		return nil, err
	}
	return buf, nil
}

// fixup checks and undoes the update sequence array of a multi-sector
// record (MFT "FILE" or index "INDX"), whose offset and count are at 4
// and 6.
func fixup(b []byte) error {
	off, count := int(le16(b[4:])), int(le16(b[6:]))
	if count != len(b)/fixupStride+1 || off+2*count > len(b) || off < 8 {
		return fmt.Errorf("update sequence of %d entries at %d for %d bytes", count, off, len(b))
	}
	usn := b[off : off+2]
	for i := 1; i < count; i++ {
		end := i*fixupStride - 2
		if b[end] != usn[0] || b[end+1] != usn[1] {
			return fmt.Errorf("block %d was torn (update sequence number mismatch)", i-1)
		}
		b[end], b[end+1] = b[off+2*i], b[off+2*i+1]
	}
	return nil
}

// parseRecord checks the record n in buf and returns its own attributes
// (not those an $ATTRIBUTE_LIST puts in other records).
func (f *FS) parseRecord(buf []byte, n int64) ([]attr, error) {
	if string(buf[:4]) != "FILE" {
		return nil, f.corrupt("MFT record %d has no FILE signature", n)
	}
	if err := fixup(buf); err != nil {
		return nil, f.corrupt("MFT record %d: %v", n, err)
	}
	if le16(buf[0x16:])&recordInUse == 0 {
		return nil, f.corrupt("MFT record %d is not in use", n)
	}
	used := int(le32(buf[0x18:]))
	if used > len(buf) || used < 0x30 {
		return nil, f.corrupt("MFT record %d: %d bytes used of %d", n, used, len(buf))
	}
	var attrs []attr
	for off := int(le16(buf[0x14:])); ; {
		if off+4 > used {
			return nil, f.corrupt("MFT record %d: attributes run past the record", n)
		}
		if le32(buf[off:]) == attrEnd {
			return attrs, nil
		}
		a, length, err := parseAttr(buf[off:used], f.clusters)
		if err != nil {
			return nil, f.corrupt("MFT record %d: attribute at %d: %v", n, off, err)
		}
		attrs = append(attrs, a)
		off += length
	}
}

// parseAttr decodes the attribute at the start of b and returns it and
// its length.
func parseAttr(b []byte, clusters int64) (attr, int, error) {
	if len(b) < 16 {
		return attr{}, 0, fmt.Errorf("header cut short")
	}
	a := attr{typ: le32(b), flags: le16(b[12:]), id: le16(b[14:]), resident: b[8] == 0}
	length := int(le32(b[4:]))
	if length < 16 || length > len(b) || length%8 != 0 {
		return a, 0, fmt.Errorf("length %d", length)
	}
	b = b[:length]
	nameLen, nameOff := int(b[9]), int(le16(b[10:]))
	if nameLen > 0 {
		if nameOff+2*nameLen > length {
			return a, 0, fmt.Errorf("name overruns the attribute")
		}
		a.name = utf16String(b[nameOff : nameOff+2*nameLen])
	}
	if a.resident {
		if length < 24 {
			return a, 0, fmt.Errorf("resident header cut short")
		}
		size, off := int(le32(b[16:])), int(le16(b[20:]))
		if off > length || size > length-off {
			return a, 0, fmt.Errorf("value of %d bytes at %d overruns the attribute", size, off)
		}
		a.value = b[off : off+size]
		a.dataSize, a.initSize, a.allocSize = int64(size), int64(size), int64(size)
		return a, length, nil
	}
	if length < 64 {
		return a, 0, fmt.Errorf("non-resident header cut short")
	}
	a.startVCN = int64(le64(b[16:]))
	a.allocSize, a.dataSize, a.initSize = int64(le64(b[40:])), int64(le64(b[48:])), int64(le64(b[56:]))
	if a.startVCN < 0 || a.dataSize < 0 || a.initSize < 0 || a.allocSize < 0 || a.initSize > a.dataSize {
		return a, 0, fmt.Errorf("sizes: start VCN %d, data %d, initialized %d", a.startVCN, a.dataSize, a.initSize)
	}
	runOff := int(le16(b[32:]))
	if runOff > length {
		return a, 0, fmt.Errorf("runs at %d", runOff)
	}
	var err error
	a.runs, err = decodeRuns(b[runOff:], a.startVCN, clusters)
	return a, length, err
}

// attrs returns every attribute of the file whose base record is n:
// its own and, through its $ATTRIBUTE_LIST, those in extension records,
// with the extents of a split non-resident attribute merged.
func (f *FS) attrs(n int64) ([]attr, error) {
	f.mu.Lock()
	cached, ok := f.cache[n]
	f.mu.Unlock()
	if ok {
		return cached, nil
	}
	buf, err := f.record(n)
	if err != nil {
		return nil, err
	}
	if base := le64(buf[0x20:]) & refMask; base != 0 {
		return nil, f.corrupt("MFT record %d is an extension of record %d, not a file", n, base)
	}
	own, err := f.parseRecord(buf, n)
	if err != nil {
		return nil, err
	}
	all := own
	if list := find(own, attrList, ""); list != nil {
		if all, err = f.expandList(n, own, list); err != nil {
			return nil, err
		}
	}
	merged, err := f.merge(n, all)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	if len(f.cache) >= cacheRecords {
		clear(f.cache)
	}
	f.cache[n] = merged
	f.mu.Unlock()
	return merged, nil
}

const refMask = 1<<48 - 1 // the record number of a file reference

// expandList gathers the attributes an $ATTRIBUTE_LIST names: each
// entry names a record (this one or an extension of it) and an
// attribute id there.
func (f *FS) expandList(n int64, own []attr, list *attr) ([]attr, error) {
	var b []byte
	if list.resident {
		b = list.value
	} else {
		if list.dataSize > maxAttrList {
			return nil, f.corrupt("MFT record %d: attribute list of %d bytes", n, list.dataSize)
		}
		b = make([]byte, list.dataSize)
		if _, err := f.newStream(list, "attribute list").ReadAt(b, 0); err != nil {
			return nil, err
		}
	}
	var out []attr
	ext := map[int64][]attr{}
	for off := 0; off < len(b); {
		if off+26 > len(b) {
			return nil, f.corrupt("MFT record %d: attribute list entry at %d cut short", n, off)
		}
		e := b[off:]
		length := int(le16(e[4:]))
		if length < 26 || off+length > len(b) {
			return nil, f.corrupt("MFT record %d: attribute list entry of %d bytes", n, length)
		}
		typ, rec, id := le32(e), int64(le64(e[16:])&refMask), le16(e[24:])
		off += (length + 7) &^ 7
		if typ == attrList {
			continue
		}
		attrs := own
		if rec != n {
			var err error
			if attrs, ok := ext[rec]; ok {
				out = appendAttr(out, attrs, typ, id)
				continue
			}
			if attrs, err = f.extension(n, rec); err != nil {
				return nil, err
			}
			ext[rec] = attrs
		}
		out = appendAttr(out, attrs, typ, id)
	}
	return out, nil
}

func appendAttr(out, attrs []attr, typ uint32, id uint16) []attr {
	for _, a := range attrs {
		if a.typ == typ && a.id == id {
			return append(out, a)
		}
	}
	return out
}

// extension reads record rec, which must be an extension of record n.
func (f *FS) extension(n, rec int64) ([]attr, error) {
	buf, err := f.record(rec)
	if err != nil {
		return nil, err
	}
	if base := int64(le64(buf[0x20:]) & refMask); base != n {
		return nil, f.corrupt("MFT record %d listed by record %d belongs to record %d", rec, n, base)
	}
	return f.parseRecord(buf, rec)
}

// merge joins the extents of each non-resident attribute (same type and
// name) in VCN order, checking that they follow each other.
func (f *FS) merge(n int64, all []attr) ([]attr, error) {
	var out []attr
	total := 0
	for _, a := range all {
		i := slices.IndexFunc(out, func(o attr) bool { return o.typ == a.typ && o.name == a.name && !o.resident && !a.resident })
		if i < 0 {
			out = append(out, a)
			continue
		}
		out[i].runs = append(out[i].runs, a.runs...)
		if a.startVCN == 0 {
			runs := out[i].runs
			out[i] = a
			out[i].runs = runs
		}
		if total += len(a.runs); total > maxRuns {
			return nil, f.corrupt("MFT record %d: more than %d runs", n, maxRuns)
		}
	}
	for i := range out {
		runs := out[i].runs
		slices.SortFunc(runs, func(a, b run) int { return cmp.Compare(a.vcn, b.vcn) })
		for j := 1; j < len(runs); j++ {
			if runs[j].vcn < runs[j-1].vcn+runs[j-1].length {
				return nil, f.corrupt("MFT record %d: attribute %#x extents overlap", n, out[i].typ)
			}
		}
	}
	return out, nil
}

func utf16String(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = le16(b[2*i:])
	}
	return string(utf16.Decode(u))
}
