package ntfs

import (
	"errors"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/qimg/qimg/image"
)

// maxDepth bounds the directories one path descends through: a hostile
// index can list a directory inside itself, and fs.WalkDir would then
// descend forever.
const maxDepth = 1024

var (
	_ fs.FS        = (*FS)(nil)
	_ fs.ReadDirFS = (*FS)(nil)
	_ fs.StatFS    = (*FS)(nil)
)

// lookup finds the record of a path (fs.ValidPath form). Names match
// exactly, or else case-insensitively, as Windows matches them.
func (f *FS) lookup(op, name string) (int64, error) {
	if !fs.ValidPath(name) {
		return 0, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	n := int64(rootRecord)
	if name == "." {
		return n, nil
	}
	parts := strings.Split(name, "/")
	if len(parts) > maxDepth {
		return 0, &fs.PathError{Op: op, Path: name, Err: f.corrupt("path deeper than %d directories", maxDepth)}
	}
	for i, part := range parts {
		entries, err := f.readDir(n)
		if err != nil {
			return 0, &fs.PathError{Op: op, Path: name, Err: err}
		}
		e, ok := match(entries, part)
		if !ok {
			return 0, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		if i < len(parts)-1 && !e.isDir {
			return 0, &fs.PathError{Op: op, Path: name, Err: errors.New("not a directory")}
		}
		n = e.record
	}
	return n, nil
}

func match(entries []dirEntry, name string) (dirEntry, bool) {
	for _, e := range entries {
		if e.name == name {
			return e, true
		}
	}
	for _, e := range entries {
		if strings.EqualFold(e.name, name) {
			return e, true
		}
	}
	return dirEntry{}, false
}

// fileInfo describes a file from its record.
type fileInfo struct {
	name    string
	record  int64
	size    int64
	mode    fs.FileMode
	modTime time.Time
}

func (i *fileInfo) Name() string       { return i.name }
func (i *fileInfo) Size() int64        { return i.size }
func (i *fileInfo) Mode() fs.FileMode  { return i.mode }
func (i *fileInfo) ModTime() time.Time { return i.modTime }
func (i *fileInfo) IsDir() bool        { return i.mode.IsDir() }
func (i *fileInfo) Sys() any           { return i.record }

// windows epoch: FILETIME counts 100 ns from 1601-01-01.
var epoch = time.Date(1601, 1, 1, 0, 0, 0, 0, time.UTC)

const readOnlyAttr = 0x1

func (f *FS) stat(n int64, name string) (*fileInfo, error) {
	attrs, err := f.attrs(n)
	if err != nil {
		return nil, err
	}
	fi := &fileInfo{name: name, record: n, mode: 0o644}
	if si := find(attrs, attrStandardInfo, ""); si != nil && si.resident && len(si.value) >= 36 {
		ft := int64(le64(si.value[8:]))
		fi.modTime = epoch.Add(time.Duration(ft/10_000_000) * time.Second).Add(time.Duration(ft%10_000_000) * 100)
		if le32(si.value[32:])&readOnlyAttr != 0 {
			fi.mode = 0o444
		}
	}
	switch {
	case find(attrs, attrReparsePoint, "") != nil:
		fi.mode |= fs.ModeIrregular
	case find(attrs, attrIndexRoot, "$I30") != nil:
		fi.mode = fs.ModeDir | 0o755
	default:
		if d := find(attrs, attrData, ""); d != nil {
			fi.size = d.dataSize
		}
	}
	return fi, nil
}

// Stat describes the file at name. Reparse points (symbolic links,
// junctions) are not followed: they are irregular files.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	n, err := f.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	fi, err := f.stat(n, path.Base(name))
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	if name == "." {
		fi.name = "."
	}
	return fi, nil
}

// Lstat is Stat: reparse points are never followed.
func (f *FS) Lstat(name string) (fs.FileInfo, error) { return f.Stat(name) }

// ReadLink reports that NTFS reparse points are not read as links.
func (f *FS) ReadLink(name string) (string, error) {
	if _, err := f.lookup("readlink", name); err != nil {
		return "", err
	}
	return "", &fs.PathError{Op: "readlink", Path: name, Err: image.FileErrorf(f.name, "ntfs: reparse points are not read: %w", image.ErrUnsupported)}
}

// ReadDir lists the directory at name, sorted by name.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := f.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	return f.dirEntries(n, name)
}

func (f *FS) dirEntries(n int64, name string) ([]fs.DirEntry, error) {
	entries, err := f.readDir(n)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	out := make([]fs.DirEntry, len(entries))
	for i, e := range entries {
		out[i] = &entry{f: f, e: e}
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// entry is a directory entry; Info reads its record.
type entry struct {
	f *FS
	e dirEntry
}

func (d *entry) Name() string { return d.e.name }
func (d *entry) IsDir() bool  { return d.e.isDir && !d.e.reparse }
func (d *entry) Type() fs.FileMode {
	switch {
	case d.e.reparse:
		return fs.ModeIrregular
	case d.e.isDir:
		return fs.ModeDir
	}
	return 0
}
func (d *entry) Info() (fs.FileInfo, error) { return d.f.stat(d.e.record, d.e.name) }
func (d *entry) String() string             { return fs.FormatDirEntry(d) }

// Open opens the file or directory at name for reading.
func (f *FS) Open(name string) (fs.File, error) {
	n, err := f.lookup("open", name)
	if err != nil {
		return nil, err
	}
	fi, err := f.stat(n, path.Base(name))
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	if name == "." {
		fi.name = "."
	}
	if fi.IsDir() {
		return &dir{f: f, fi: fi, path: name}, nil
	}
	if fi.Mode()&fs.ModeIrregular != 0 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: image.FileErrorf(f.name, "ntfs: reparse points are not followed: %w", image.ErrUnsupported)}
	}
	s, err := f.dataStream(n, name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &file{fi: fi, r: io.NewSectionReader(s, 0, s.size), s: s}, nil
}

// dataStream returns the unnamed $DATA of record n, refusing what it
// cannot decode.
func (f *FS) dataStream(n int64, name string) (*stream, error) {
	attrs, err := f.attrs(n)
	if err != nil {
		return nil, err
	}
	d := find(attrs, attrData, "")
	if d == nil {
		return &stream{f: f, what: name, res: true}, nil
	}
	switch {
	case d.flags&0x4000 != 0:
		return nil, f.unsupported("%s is encrypted", name)
	case d.flags&0x00FF != 0:
		return nil, f.unsupported("%s is compressed", name)
	}
	return f.newStream(d, name), nil
}

// file is an open regular file; it implements io.ReaderAt and
// io.Seeker too.
type file struct {
	fi *fileInfo
	r  *io.SectionReader
	s  *stream
}

func (fl *file) Stat() (fs.FileInfo, error)                { return fl.fi, nil }
func (fl *file) Read(p []byte) (int, error)                { return fl.r.Read(p) }
func (fl *file) ReadAt(p []byte, off int64) (int, error)   { return fl.r.ReadAt(p, off) }
func (fl *file) Seek(off int64, whence int) (int64, error) { return fl.r.Seek(off, whence) }
func (fl *file) Close() error                              { return nil }

// dir is an open directory.
type dir struct {
	f       *FS
	fi      *fileInfo
	path    string
	entries []fs.DirEntry
	read    bool
}

func (d *dir) Stat() (fs.FileInfo, error) { return d.fi, nil }
func (d *dir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.path, Err: errors.New("is a directory")}
}
func (d *dir) Close() error { return nil }

func (d *dir) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.read {
		entries, err := d.f.dirEntries(d.fi.record, d.path)
		if err != nil {
			return nil, err
		}
		d.entries, d.read = entries, true
	}
	if n <= 0 {
		out := d.entries
		d.entries = nil
		return out, nil
	}
	if len(d.entries) == 0 {
		return nil, io.EOF
	}
	k := min(n, len(d.entries))
	out := d.entries[:k]
	d.entries = d.entries[k:]
	return out, nil
}
