package vmdk

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/qimg/qimg/image"
)

// DefaultMaxExtents bounds the extent lines a descriptor may have. A
// twoGbMaxExtent disk of 2 TiB has 1024 extents; each extent is an open
// file, so a hostile descriptor must not name millions.
const DefaultMaxExtents = 4096

// Extent kinds of a descriptor's extent lines.
const (
	kindSparse = "SPARSE"
	kindFlat   = "FLAT"
	kindZero   = "ZERO"
	kindVMFS   = "VMFS" // a flat extent at offset 0 (ESX)
)

// descExtent is one extent line: ACCESS SECTORS TYPE ["FILE" [OFFSET]].
type descExtent struct {
	Access  string // RW or RDONLY
	Sectors int64
	Kind    string // SPARSE, FLAT or ZERO (VMFS is reported as FLAT)
	File    string
	Offset  int64 // sectors into the file, for FLAT
}

// descriptor is the parsed text descriptor of a VMDK: the keys that
// matter to a reader and the extent lines in order.
type descriptor struct {
	Version    string
	CID        string
	ParentCID  string
	CreateType string
	// ParentHint is parentFileNameHint: set for delta (child) disks.
	ParentHint string
	HasParent  bool
	Extents    []descExtent
	// DDB holds the ddb.* keys (adapterType, geometry, ...).
	DDB map[string]string
}

// Detect reports whether head, the first bytes of a file (up to 4096,
// zero padded), looks like a VMDK: the magic of a sparse extent ("KDMV",
// or "COWD" of an ESX sparse extent, which Open then refuses as
// unsupported) or a text descriptor. The descriptor test is QEMU's
// (vmdk_probe): only comment lines and lines of spaces may come before a
// "version=1", "version=2" or "version=3" line.
func Detect(head []byte) bool {
	if len(head) < 4 {
		return false
	}
	if string(head[:4]) == magicSparse || string(head[:4]) == magicCOWD {
		return true
	}
	p := head
	for len(p) > 0 {
		switch p[0] {
		case '#':
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				return false
			}
			p = p[i+1:]
			continue
		case ' ':
			p = bytes.TrimLeft(p, " ")
			if len(p) > 0 && p[0] == '\r' {
				p = p[1:]
			}
			if len(p) == 0 || p[0] != '\n' {
				return false
			}
			p = p[1:]
			continue
		}
		for _, v := range []string{"version=1", "version=2", "version=3"} {
			if bytes.HasPrefix(p, []byte(v+"\n")) || bytes.HasPrefix(p, []byte(v+"\r\n")) {
				return true
			}
		}
		return false
	}
	return false
}

// parseDescriptor parses a text descriptor. Lines are "key = value"
// (value optionally quoted), extent lines, comments (#) and blank lines;
// the text ends at the first NUL, as an embedded descriptor is padded with
// zeros. It fails on malformed extent lines, more than maxExtents extents,
// and extent types or access modes a reader cannot honour.
func parseDescriptor(text []byte, name string, maxExtents int) (*descriptor, error) {
	if len(text) > maxDescriptor {
		return nil, image.FileErrorf(name, "descriptor of %d bytes (at most %d): %w", len(text), maxDescriptor, image.ErrLimit)
	}
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	if maxExtents <= 0 {
		maxExtents = DefaultMaxExtents
	}
	d := &descriptor{DDB: map[string]string{}}
	var total int64
	for lineNo, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if access, rest := cutField(line); isAccess(access) {
			if len(d.Extents) >= maxExtents {
				return nil, image.FileErrorf(name, "descriptor names more than %d extents: %w", maxExtents, image.ErrLimit)
			}
			e, err := parseExtentLine(access, rest)
			if err != nil {
				return nil, image.FileErrorf(name, "descriptor line %d %q: %w", lineNo+1, clip(line), err)
			}
			if e.Sectors > maxSectors-total {
				return nil, image.FileErrorf(name, "descriptor extents add up to more than %d sectors: %w", int64(maxSectors), image.ErrLimit)
			}
			if e.Sectors == 0 {
				continue // QEMU skips empty extents (an empty disk has one)
			}
			total += e.Sectors
			d.Extents = append(d.Extents, e)
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			// VMware ignores lines it does not understand; so does QEMU.
			continue
		}
		key = strings.TrimSpace(key)
		val = unquote(strings.TrimSpace(val))
		switch {
		case key == "version":
			d.Version = val
		case key == "CID":
			d.CID = val
		case key == "parentCID":
			d.ParentCID = val
		case key == "createType":
			d.CreateType = val
		case key == "parentFileNameHint":
			d.ParentHint, d.HasParent = val, true
		case strings.HasPrefix(key, "ddb."):
			if len(d.DDB) < 256 { // bounded: the DDB is informative only
				d.DDB[key] = val
			}
		}
	}
	return d, nil
}

func isAccess(s string) bool { return s == "RW" || s == "RDONLY" || s == "NOACCESS" }

// parseExtentLine parses what follows the access word of an extent line:
// SECTORS TYPE ["FILE" [OFFSET]].
func parseExtentLine(access, rest string) (descExtent, error) {
	e := descExtent{Access: access}
	if access == "NOACCESS" {
		return e, fmt.Errorf("NOACCESS extent: %w", image.ErrUnsupported)
	}
	size, rest := cutField(rest)
	kind, rest := cutField(rest)
	if kind == "" {
		return e, fmt.Errorf("extent line needs a size and a type: %w", image.ErrCorrupt)
	}
	n, err := strconv.ParseInt(size, 10, 64)
	if err != nil || n < 0 {
		return e, fmt.Errorf("bad extent size %q: %w", clip(size), image.ErrCorrupt)
	}
	if n > maxSectors {
		return e, fmt.Errorf("extent of %d sectors: %w", n, image.ErrLimit)
	}
	e.Sectors = n
	e.Kind = kind
	// The file name is quoted and may contain spaces.
	after := strings.TrimSpace(rest)
	hasFile := false
	if strings.HasPrefix(after, `"`) {
		end := strings.IndexByte(after[1:], '"')
		if end < 0 {
			return e, fmt.Errorf("unterminated file name: %w", image.ErrCorrupt)
		}
		e.File = after[1 : 1+end]
		after = strings.TrimSpace(after[2+end:])
		hasFile = true
	} else if after != "" {
		return e, fmt.Errorf("file name must be quoted: %w", image.ErrCorrupt)
	}
	hasOffset := after != ""
	if hasOffset {
		off, err := strconv.ParseInt(after, 10, 64)
		if err != nil || off < 0 || off > maxSectors {
			return e, fmt.Errorf("bad extent offset %q: %w", clip(after), image.ErrCorrupt)
		}
		e.Offset = off
	}
	switch e.Kind {
	case kindFlat, kindVMFS:
		if e.Kind == kindFlat && !hasOffset {
			return e, fmt.Errorf("FLAT extent without an offset: %w", image.ErrCorrupt)
		}
		if e.Kind == kindVMFS && hasOffset {
			return e, fmt.Errorf("VMFS extent with an offset: %w", image.ErrCorrupt)
		}
		e.Kind = kindFlat
	case kindSparse:
		if hasOffset {
			return e, fmt.Errorf("SPARSE extent with an offset: %w", image.ErrCorrupt)
		}
	case kindZero:
		return e, nil // no file
	case "VMFSSPARSE", "SESPARSE", "VMFSRAW", "VMFSRDM", "VMFSPASSTHRU":
		return e, fmt.Errorf("%s extent: %w", e.Kind, image.ErrUnsupported)
	default:
		return e, fmt.Errorf("unknown extent type %q: %w", clip(e.Kind), image.ErrUnsupported)
	}
	if !hasFile || e.File == "" {
		return e, fmt.Errorf("%s extent without a file name: %w", e.Kind, image.ErrCorrupt)
	}
	return e, nil
}

// cutField splits off the first whitespace-separated field of s.
func cutField(s string) (field, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// clip shortens text quoted in error messages from hostile input.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// Create types a descriptor file may have. Delta formats (vmfsSparse,
// seSparse) and raw device mappings are refused.
func supportedCreateType(t string) bool {
	switch t {
	case "monolithicFlat", "twoGbMaxExtentFlat", "twoGbMaxExtentSparse", "vmfs",
		"monolithicSparse", "streamOptimized", "custom":
		return true
	}
	return false
}
