package iso9660

import (
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/qimg/qimg/image"
)

// Limits that keep a hostile image from costing much: every length read
// from the image is checked against them or against the image size.
const (
	maxDescriptors = 64       // volume descriptors before the terminator
	maxDirSize     = 16 << 20 // one directory's extent
	maxDepth       = 128      // nesting (Rock Ridge allows more than 8)
	maxEntries     = 1 << 20  // records in the whole tree
	maxCE          = 32       // continuation areas per record
	// Directories and continuation areas of a sound image do not
	// overlap, so reading them costs at most the image size; overlapping
	// ones could make a small image cost without end. Open reads at most
	// the image size plus this much metadata.
	metaSlack = 16 << 20
)

// extent is one run of a file's data.
type extent struct{ block, size uint32 }

// inode is a file, directory or symbolic link read from the image.
type inode struct {
	name     string
	mode     fs.FileMode
	size     int64
	extents  []extent
	mtime    time.Time
	target   string
	children []*inode // sorted by name
}

// reader holds the state of one Open.
type reader struct {
	r       io.ReaderAt
	size    int64
	name    string
	joliet  bool
	rr      bool
	skip    int // SUSP bytes to skip in each system use field (SP)
	entries int
	budget  int64           // metadata bytes still allowed to read
	seen    map[uint32]bool // directory extents read, against loops
}

func (rd *reader) corrupt(format string, args ...any) error {
	return image.FileErrorf(rd.name, format+": %w", append(args, image.ErrCorrupt)...)
}

// readAt reads exactly n bytes at off, inside the image.
func (rd *reader) readAt(off int64, n int) ([]byte, error) {
	if off < 0 || n < 0 || off > rd.size || int64(n) > rd.size-off {
		return nil, rd.corrupt("%d bytes at offset %d past the end of the image", n, off)
	}
	if rd.budget -= int64(n); rd.budget < 0 {
		return nil, image.FileErrorf(rd.name, "more than %d bytes of metadata (overlapping directories): %w", rd.size+metaSlack, image.ErrLimit)
	}
	b := make([]byte, n)
	if _, err := rd.r.ReadAt(b, off); err != nil && !(errors.Is(err, io.EOF) && len(b) == n) {
		return nil, image.FileErrorf(rd.name, "read at %d: %w", off, err)
	}
	return b, nil
}

// record is one parsed directory record.
type record struct {
	ident  []byte
	block  uint32
	size   uint32
	flags  byte
	mtime  time.Time
	su     []byte
	length int
}

func (rd *reader) parseRecord(b []byte) (record, error) {
	n := int(b[0])
	if n < 34 || n > len(b) {
		return record{}, rd.corrupt("directory record of %d bytes", n)
	}
	il := int(b[32])
	if 33+il > n {
		return record{}, rd.corrupt("directory record identifier of %d bytes in a %d byte record", il, n)
	}
	suOff := 33 + il + (1 - il%2)
	rec := record{ident: b[33 : 33+il], block: binary.LittleEndian.Uint32(b[2:]) + uint32(b[1]),
		size: binary.LittleEndian.Uint32(b[10:]), flags: b[25], mtime: parseRecTime(b[18:25]), length: n}
	if suOff < n {
		rec.su = b[suOff:n]
	}
	return rec, nil
}

// Open reads the volume descriptors and the whole directory tree of an
// ISO 9660 image of size bytes in r; name is used in errors. Names come
// from Rock Ridge when the primary tree has it, else from a Joliet tree,
// else from the ECMA-119 identifiers without their ";1" version.
func Open(r io.ReaderAt, size int64, name string) (*FS, error) {
	rd := &reader{r: r, size: size, name: name, seen: map[uint32]bool{}, budget: size + metaSlack}
	if size < 17*sector {
		return nil, image.FileErrorf(name, "too small for ISO 9660: %w", image.ErrWrongFormat)
	}
	var pvd, svd []byte
	for i := range maxDescriptors {
		b, err := rd.readAt(int64(16+i)*sector, sector)
		if err != nil {
			if i == 0 {
				return nil, image.FileErrorf(name, "no volume descriptor: %w", image.ErrWrongFormat)
			}
			return nil, err
		}
		if string(b[1:6]) != "CD001" {
			if i == 0 {
				return nil, image.FileErrorf(name, "no ISO 9660 signature: %w", image.ErrWrongFormat)
			}
			return nil, rd.corrupt("volume descriptor %d has no signature", 16+i)
		}
		if b[0] == 255 {
			break
		}
		if b[0] == 1 && pvd == nil {
			pvd = b
		}
		if b[0] == 2 && svd == nil && slices.Contains(jolietEscapes, string(b[88:91])) {
			svd = b
		}
	}
	if pvd == nil {
		return nil, rd.corrupt("no primary volume descriptor")
	}
	if bs := binary.LittleEndian.Uint16(pvd[128:]); bs != sector {
		return nil, image.FileErrorf(name, "logical block size %d: %w", bs, image.ErrUnsupported)
	}
	fsys := &FS{r: r, name: name, volumeID: strings.TrimRight(string(pvd[40:72]), " \x00")}
	root, err := rd.parseRecord(pvd[156:190])
	if err != nil {
		return nil, err
	}
	// Rock Ridge announces itself by an SP entry first in the root's "."
	// record.
	dot, err := rd.readAt(int64(root.block)*sector, 255)
	if err == nil && dot[0] >= 34 {
		if rec, err := rd.parseRecord(dot); err == nil && len(rec.su) >= 7 &&
			string(rec.su[:2]) == "SP" && rec.su[4] == 0xBE && rec.su[5] == 0xEF {
			rd.rr, rd.skip = true, int(rec.su[6])
		}
	}
	if !rd.rr && svd != nil {
		rd.joliet = true
		fsys.volumeID = strings.TrimRight(fromUCS2(svd[40:72]), " \x00")
		if root, err = rd.parseRecord(svd[156:190]); err != nil {
			return nil, err
		}
	}
	fsys.root = &inode{name: ".", mode: fs.ModeDir | 0o555, mtime: root.mtime}
	if _, err := rd.readDir(fsys.root, root.block, root.size, 0); err != nil {
		return nil, err
	}
	return fsys, nil
}

// readDir reads the directory at block into d, and its subdirectories.
// It says whether d held only directories relocated elsewhere by Rock
// Ridge (genisoimage's rr_moved), which its parent then hides.
func (rd *reader) readDir(d *inode, block, size uint32, depth int) (movedOnly bool, err error) {
	moved := false
	if depth > maxDepth {
		return false, image.FileErrorf(rd.name, "directories nested deeper than %d: %w", maxDepth, image.ErrLimit)
	}
	if size > maxDirSize {
		return false, image.FileErrorf(rd.name, "directory of %d bytes: %w", size, image.ErrLimit)
	}
	if rd.seen[block] {
		return false, rd.corrupt("directory at block %d appears twice", block)
	}
	rd.seen[block] = true
	b, err := rd.readAt(int64(block)*sector, int(size))
	if err != nil {
		return false, err
	}
	var last *inode // a file whose record said more extents follow
	names := map[string]bool{}
	for off := 0; off < len(b); {
		if b[off] == 0 { // records never cross a block: the rest is padding
			off = (off/sector + 1) * sector
			continue
		}
		rec, err := rd.parseRecord(b[off:min(len(b), (off/sector+1)*sector)])
		if err != nil {
			return false, err
		}
		off += rec.length
		if rd.entries++; rd.entries > maxEntries {
			return false, image.FileErrorf(rd.name, "more than %d directory records: %w", maxEntries, image.ErrLimit)
		}
		if len(rec.ident) == 1 && rec.ident[0] <= 1 {
			if rec.ident[0] == 0 && rd.rr {
				var rr rrInfo
				if err := rd.parseSU(rec.su, &rr, true); err != nil {
					return false, err
				}
				if rr.hasMode {
					d.mode = rr.mode
				}
			}
			continue
		}
		if last != nil {
			if int64(rec.block)*sector+int64(rec.size) > rd.size {
				return false, rd.corrupt("file %q past the end of the image", last.name)
			}
			last.extents = append(last.extents, extent{rec.block, rec.size})
			last.size += int64(rec.size)
			if last.size > rd.size { // its extents overlap: no file is larger than its image
				return false, rd.corrupt("file %q larger than the image", last.name)
			}
			if rec.flags&flagMultiExtent == 0 {
				last = nil
			}
			continue
		}
		n := &inode{mode: 0o444, size: int64(rec.size), mtime: rec.mtime}
		if rec.flags&flagDir != 0 {
			n.mode = fs.ModeDir | 0o555
		}
		if rd.joliet {
			n.name, _, _ = strings.Cut(fromUCS2(rec.ident), ";")
		} else {
			n.name, _, _ = strings.Cut(string(rec.ident), ";")
			n.name = strings.TrimSuffix(n.name, ".")
		}
		dirBlock, dirSize := rec.block, rec.size
		if rd.rr {
			var rr rrInfo
			if err := rd.parseSU(rec.su, &rr, false); err != nil {
				return false, err
			}
			if rr.relocated {
				moved = true
				continue // shown where its CL entry points from
			}
			if rr.name != "" {
				n.name = rr.name
			}
			if rr.hasMode {
				n.mode = rr.mode
			}
			if !rr.mtime.IsZero() {
				n.mtime = rr.mtime
			}
			if n.mode&fs.ModeSymlink != 0 {
				n.target, n.size = rr.target, int64(len(rr.target))
			}
			if rr.child != 0 {
				dot, err := rd.readAt(int64(rr.child)*sector, 34)
				if err != nil {
					return false, err
				}
				dirBlock, dirSize = rr.child, binary.LittleEndian.Uint32(dot[10:])
				n.mode |= fs.ModeDir
			}
		}
		if n.name == "" || n.name == "." || n.name == ".." || strings.ContainsAny(n.name, "/\x00") {
			return false, rd.corrupt("bad name %q in directory at block %d", n.name, block)
		}
		if names[n.name] {
			continue // the first of two equal names wins
		}
		names[n.name] = true
		switch {
		case n.mode.IsDir():
			n.size = 0
			movedOnly, err := rd.readDir(n, dirBlock, dirSize, depth+1)
			if err != nil {
				return false, err
			}
			if movedOnly {
				continue
			}
		case n.mode&fs.ModeSymlink != 0:
		default:
			if int64(rec.block)*sector+int64(rec.size) > rd.size {
				return false, rd.corrupt("file %q past the end of the image", n.name)
			}
			n.extents = []extent{{rec.block, rec.size}}
			if rec.flags&flagMultiExtent != 0 {
				last = n
			}
		}
		d.children = append(d.children, n)
	}
	slices.SortFunc(d.children, func(a, b *inode) int { return strings.Compare(a.name, b.name) })
	return moved && len(d.children) == 0, nil
}
