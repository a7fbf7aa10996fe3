package ntfs

import (
	"fmt"
	"strings"

	"github.com/qimg/qimg/image"
)

const (
	indexEntrySubnode = 0x1
	indexEntryLast    = 0x2
	indexHeaderRoot   = 16   // the node header's place in $INDEX_ROOT's value
	indexHeaderRecord = 0x18 // and in an INDX record
	maxIndexDepth     = 32   // B+ trees of directories are a few levels deep
	// MaxDirEntries bounds the names of one directory (a Windows
	// System32 has about 20,000 with their DOS names).
	MaxDirEntries = 1 << 20

	fileNameDirectory = 0x10000000 // $FILE_NAME flag: the file is a directory
	fileAttrReparse   = 0x400
	namespaceDOS      = 2
)

// dirEntry is one name of a directory's $I30 index.
type dirEntry struct {
	name    string
	record  int64
	seq     uint16
	isDir   bool
	reparse bool
}

// index walks the $I30 index of directory record n in order.
type index struct {
	f        *FS
	n        int64
	alloc    *stream
	recSize  int64
	vcnSize  int64
	visited  map[int64]bool
	entries  []dirEntry
	recordsN int64
}

// readDir lists directory record n: the Win32 and POSIX names (DOS
// short names are skipped), in the index's order.
func (f *FS) readDir(n int64) ([]dirEntry, error) {
	f.mu.Lock()
	cached, ok := f.dirs[n]
	f.mu.Unlock()
	if ok {
		return cached, nil
	}
	entries, err := f.readIndex(n)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	if f.dirNames+len(entries) > cacheDirNames {
		clear(f.dirs)
		f.dirNames = 0
	}
	f.dirs[n] = entries
	f.dirNames += len(entries)
	f.mu.Unlock()
	return entries, nil
}

// cacheDirNames bounds the names the directory cache holds.
const cacheDirNames = 1 << 17

func (f *FS) readIndex(n int64) ([]dirEntry, error) {
	attrs, err := f.attrs(n)
	if err != nil {
		return nil, err
	}
	root := find(attrs, attrIndexRoot, "$I30")
	if root == nil || !root.resident || len(root.value) < indexHeaderRoot+16 {
		return nil, f.corrupt("directory record %d has no $I30 index root", n)
	}
	ix := &index{f: f, n: n, recSize: int64(le32(root.value[8:])), visited: map[int64]bool{}}
	if alloc := find(attrs, attrIndexAlloc, "$I30"); alloc != nil {
		ix.alloc = f.newStream(alloc, fmt.Sprintf("index of directory record %d", n))
		if ix.recSize < fixupStride || ix.recSize > maxRecordSize || ix.recSize%fixupStride != 0 {
			return nil, f.corrupt("directory record %d: index records of %d bytes", n, ix.recSize)
		}
		ix.vcnSize = f.clusterSize
		if ix.recSize < f.clusterSize {
			ix.vcnSize = fixupStride
		}
	}
	if err := ix.node(root.value[indexHeaderRoot:], 0); err != nil {
		return nil, err
	}
	return ix.entries, nil
}

// node walks the entries of one index node (header at the start of b)
// and the subnodes they point to.
func (ix *index) node(b []byte, depth int) error {
	f := ix.f
	if depth > maxIndexDepth {
		return f.corrupt("directory record %d: index deeper than %d levels", ix.n, maxIndexDepth)
	}
	first, end := int(le32(b)), int(le32(b[4:]))
	if end > len(b) || first < 16 || first > end {
		return f.corrupt("directory record %d: index node entries %d-%d of %d bytes", ix.n, first, end, len(b))
	}
	for off := first; ; {
		if off+16 > end {
			return f.corrupt("directory record %d: index entries run past their node", ix.n)
		}
		e := b[off:end]
		length, keyLen, flags := int(le16(e[8:])), int(le16(e[10:])), le16(e[12:])
		if length < 16 || length > len(e) || length%8 != 0 || 16+keyLen > length {
			return f.corrupt("directory record %d: index entry of %d bytes", ix.n, length)
		}
		if flags&indexEntrySubnode != 0 {
			if length < 24 {
				return f.corrupt("directory record %d: index entry too short for its subnode", ix.n)
			}
			if err := ix.subnode(int64(le64(e[length-8:])), depth); err != nil {
				return err
			}
		}
		if flags&indexEntryLast != 0 {
			return nil
		}
		if err := ix.add(e[:16+keyLen]); err != nil {
			return err
		}
		off += length
	}
}

// subnode reads the INDX record at vcn and walks it, once.
func (ix *index) subnode(vcn int64, depth int) error {
	f := ix.f
	if ix.alloc == nil {
		return f.corrupt("directory record %d: index entry points at a subnode, but there is no $INDEX_ALLOCATION", ix.n)
	}
	if vcn < 0 || vcn > ix.alloc.size/ix.vcnSize || ix.visited[vcn] {
		return f.corrupt("directory record %d: index subnode VCN %d out of range or visited twice", ix.n, vcn)
	}
	ix.visited[vcn] = true
	b := make([]byte, ix.recSize)
	if _, err := ix.alloc.ReadAt(b, vcn*ix.vcnSize); err != nil {
		return f.corrupt("directory record %d: index record at VCN %d: %v", ix.n, vcn, err)
	}
	if string(b[:4]) != "INDX" {
		return f.corrupt("directory record %d: index record at VCN %d has no INDX signature", ix.n, vcn)
	}
	if err := fixup(b); err != nil {
		return f.corrupt("directory record %d: index record at VCN %d: %v", ix.n, vcn, err)
	}
	return ix.node(b[indexHeaderRecord:], depth+1)
}

// add records the name an index entry's $FILE_NAME key holds.
func (ix *index) add(e []byte) error {
	f := ix.f
	key := e[16:]
	if len(key) < 66 || 66+2*int(key[64]) > len(key) {
		return f.corrupt("directory record %d: index key of %d bytes", ix.n, len(key))
	}
	ref := le64(e)
	if key[65] == namespaceDOS || int64(ref&refMask) < firstUserRecord {
		return nil // a short name, or "." and the filesystem's own files in the root
	}
	if len(ix.entries) >= MaxDirEntries {
		return image.FileErrorf(f.name, "ntfs: directory record %d: more than %d names: %w", ix.n, MaxDirEntries, image.ErrLimit)
	}
	name := utf16String(key[66 : 66+2*int(key[64])])
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return f.corrupt("directory record %d: name %q", ix.n, name)
	}
	flags := le32(key[56:])
	ix.entries = append(ix.entries, dirEntry{
		name: name, record: int64(ref & refMask), seq: uint16(ref >> 48),
		isDir: flags&fileNameDirectory != 0, reparse: flags&fileAttrReparse != 0,
	})
	return nil
}
