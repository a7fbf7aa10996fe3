package fat

import (
	"errors"
	"io"
	"io/fs"
	"time"
)

var errNotDir = errors.New("not a directory")

// Attributes is what FileInfo.Sys returns: the FAT-specific fields of
// an entry.
type Attributes struct {
	ShortName string // the 8.3 name, as stored ("GRUBX64.EFI", "LONGNA~1.TXT")
	Attr      uint8  // read-only 0x01, hidden 0x02, system 0x04, directory 0x10, archive 0x20
	Created   time.Time
	Accessed  time.Time // a date only
}

// fileInfo is both the fs.FileInfo and the fs.DirEntry of a node.
type fileInfo struct {
	name  string
	dir   bool
	size  int64
	mode  fs.FileMode
	mtime time.Time
	attrs *Attributes
}

// info describes n; an entry is named as stored, whatever case it was
// looked up in.
func (f *FS) info(n *node) fileInfo {
	if n.parent == nil {
		return fileInfo{name: ".", dir: true, mode: fs.ModeDir | 0o755, attrs: &Attributes{Attr: attrDir}}
	}
	e := &n.e
	fi := fileInfo{name: e.name, dir: e.isDir(), mtime: e.modTime(), mode: 0o644}
	short, _ := shortName(e.raw[:11], 0)
	fi.attrs = &Attributes{ShortName: short, Attr: e.attr(),
		Created:  decodeTime(le16u(e.raw[16:]), le16u(e.raw[14:]), e.raw[13]),
		Accessed: decodeTime(le16u(e.raw[18:]), 0, 0)}
	if fi.dir {
		fi.mode = fs.ModeDir | 0o755
	} else {
		fi.size = int64(e.size())
	}
	if e.attr()&attrRO != 0 {
		fi.mode &^= 0o222
	}
	return fi
}

func le16u(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }

func (i fileInfo) Name() string               { return i.name }
func (i fileInfo) Size() int64                { return i.size }
func (i fileInfo) Mode() fs.FileMode          { return i.mode }
func (i fileInfo) ModTime() time.Time         { return i.mtime }
func (i fileInfo) IsDir() bool                { return i.dir }
func (i fileInfo) Sys() any                   { return i.attrs }
func (i fileInfo) Type() fs.FileMode          { return i.mode.Type() }
func (i fileInfo) Info() (fs.FileInfo, error) { return i, nil }
func (i fileInfo) String() string             { return fs.FormatFileInfo(i) }

type file struct {
	info fileInfo
	*io.SectionReader
}

func (f *file) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *file) Close() error               { return nil }

type dirFile struct {
	info    fileInfo
	entries []fs.DirEntry
	pos     int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Close() error               { return nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errors.New("is a directory")}
}

// ReadDir follows fs.ReadDirFile: n > 0 reads at most n entries and says
// io.EOF at the end.
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.pos:]
	if n > 0 {
		if len(rest) == 0 {
			return nil, io.EOF
		}
		rest = rest[:min(n, len(rest))]
	}
	d.pos += len(rest)
	return rest, nil
}
