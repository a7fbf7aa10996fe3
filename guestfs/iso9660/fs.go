package iso9660

import (
	"errors"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
)

// FS is an ISO 9660 image read by Open. It implements fs.FS,
// fs.ReadDirFS, fs.StatFS and fs.ReadLinkFS; Open follows symbolic links
// that stay inside the image. It is safe for concurrent use if its
// io.ReaderAt is.
type FS struct {
	r        io.ReaderAt
	name     string
	volumeID string
	root     *inode
}

// VolumeID returns the volume label ("cidata", "config-2").
func (f *FS) VolumeID() string { return f.volumeID }

// maxLinks bounds the symbolic links followed for one name, as Linux's
// 40.
const maxLinks = 40

// lookup finds name; follow says whether a final symbolic link is
// followed (links in the middle always are).
func (f *FS) lookup(op, name string, follow bool) (*inode, string, error) {
	if !fs.ValidPath(name) {
		return nil, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	links := 0
	cur := f.root
	var dir []string // components of cur's path
	rest := strings.Split(name, "/")
	if name == "." {
		rest = nil
	}
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		if !cur.mode.IsDir() {
			return nil, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		child := cur.child(c)
		if child == nil {
			return nil, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		if child.mode&fs.ModeSymlink != 0 && (len(rest) > 0 || follow) {
			if links++; links > maxLinks || strings.HasPrefix(child.target, "/") {
				return nil, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
			}
			p := path.Join(append(dir, child.target)...)
			if p == ".." || strings.HasPrefix(p, "../") {
				return nil, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
			}
			cur, dir = f.root, nil
			if p != "." {
				rest = append(strings.Split(p, "/"), rest...)
			}
			continue
		}
		cur = child
		dir = append(dir, c)
	}
	return cur, path.Base(name), nil
}

func (n *inode) child(name string) *inode {
	lo, hi := 0, len(n.children)
	for lo < hi {
		m := (lo + hi) / 2
		if n.children[m].name < name {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(n.children) && n.children[lo].name == name {
		return n.children[lo]
	}
	return nil
}

// Open opens a file or directory, following symbolic links.
func (f *FS) Open(name string) (fs.File, error) {
	n, base, err := f.lookup("open", name, true)
	if err != nil {
		return nil, err
	}
	info := fileInfo{n, base}
	if n.mode.IsDir() {
		return &dirFile{info: info}, nil
	}
	return &file{info: info, SectionReader: io.NewSectionReader(extentReader{f, n}, 0, n.size)}, nil
}

// Stat describes a file, following symbolic links.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	n, base, err := f.lookup("stat", name, true)
	if err != nil {
		return nil, err
	}
	return fileInfo{n, base}, nil
}

// Lstat describes a file without following a final symbolic link.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	n, base, err := f.lookup("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return fileInfo{n, base}, nil
}

// ReadLink returns a symbolic link's target as recorded.
func (f *FS) ReadLink(name string) (string, error) {
	n, _, err := f.lookup("readlink", name, false)
	if err != nil {
		return "", err
	}
	if n.mode&fs.ModeSymlink == 0 {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return n.target, nil
}

// ReadDir lists a directory in name order.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	n, _, err := f.lookup("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if !n.mode.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	return entries(n.children), nil
}

func entries(ns []*inode) []fs.DirEntry {
	out := make([]fs.DirEntry, len(ns))
	for i, c := range ns {
		out[i] = fileInfo{c, c.name}
	}
	return out
}

// extentReader reads a file's extents as one run of bytes.
type extentReader struct {
	f *FS
	n *inode
}

func (e extentReader) ReadAt(p []byte, off int64) (int, error) {
	done := 0
	for _, x := range e.n.extents {
		if len(p) == 0 {
			break
		}
		if off >= int64(x.size) {
			off -= int64(x.size)
			continue
		}
		m := min(int64(len(p)), int64(x.size)-off)
		k, err := e.f.r.ReadAt(p[:m], int64(x.block)*sector+off)
		done += k
		if k < int(m) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return done, err
		}
		p, off = p[m:], 0
	}
	if len(p) > 0 {
		return done, io.EOF
	}
	return done, nil
}

// fileInfo is both the fs.FileInfo and the fs.DirEntry of an inode.
type fileInfo struct {
	n    *inode
	name string
}

func (i fileInfo) Name() string               { return i.name }
func (i fileInfo) Size() int64                { return i.n.size }
func (i fileInfo) Mode() fs.FileMode          { return i.n.mode }
func (i fileInfo) ModTime() time.Time         { return i.n.mtime }
func (i fileInfo) IsDir() bool                { return i.n.mode.IsDir() }
func (i fileInfo) Sys() any                   { return nil }
func (i fileInfo) Type() fs.FileMode          { return i.n.mode.Type() }
func (i fileInfo) Info() (fs.FileInfo, error) { return i, nil }
func (i fileInfo) String() string             { return fs.FormatFileInfo(i) }

type file struct {
	info fileInfo
	*io.SectionReader
}

func (f *file) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *file) Close() error               { return nil }

type dirFile struct {
	info fileInfo
	pos  int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Close() error               { return nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errors.New("is a directory")}
}

// ReadDir follows fs.ReadDirFile: n > 0 reads at most n entries and says
// io.EOF at the end.
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.info.n.children[d.pos:]
	if n > 0 {
		if len(rest) == 0 {
			return nil, io.EOF
		}
		rest = rest[:min(n, len(rest))]
	}
	d.pos += len(rest)
	return entries(rest), nil
}
