package xfs

import (
	"io/fs"
	"time"

	"github.com/qimg/qimg/guestfs/internal/fstree"
)

// fileInfo is the fs.FileInfo of an inode; Sys returns the *Inode.
type fileInfo struct {
	name string
	in   *Inode
}

func (i *fileInfo) Name() string       { return i.name }
func (i *fileInfo) Size() int64        { return int64(i.in.Size) }
func (i *fileInfo) Mode() fs.FileMode  { return i.in.FileMode() }
func (i *fileInfo) ModTime() time.Time { return i.in.Mtime }
func (i *fileInfo) IsDir() bool        { return i.in.IsDir() }
func (i *fileInfo) Sys() any           { return i.in }
func (i *fileInfo) String() string     { return fs.FormatFileInfo(i) }

// fileData is what an open file reads: a regular file's data extents,
// sorted, read once at open so that reads are lookups in memory.
type fileData struct {
	f    *FS
	in   *Inode
	exts []extent
}

// newFile opens an inode. Regular files of the result also implement
// io.ReaderAt and io.Seeker; directories implement fs.ReadDirFile.
func (f *FS) newFile(name string, in *Inode) (*fstree.File, error) {
	data := &fileData{f: f, in: in}
	if in.IsRegular() {
		if in.Flags&FlagRealtime != 0 {
			return nil, pathErr("open", name, f.unsupported("inode %d: data on the realtime device", in.Ino))
		}
		exts, err := f.forkExtents(in, false)
		if err != nil {
			return nil, pathErr("open", name, err)
		}
		data.exts = exts
	}
	return fstree.NewFile(name, data), nil
}

func (d *fileData) Info(name string) fs.FileInfo     { return &fileInfo{name: name, in: d.in} }
func (d *fileData) IsDir() bool                      { return d.in.IsDir() }
func (d *fileData) ReadDir() ([]fs.DirEntry, error)  { return d.f.readDir(d.in) }
func (d *fileData) ReadAt(p []byte, off int64) error { return d.f.readExtents(d.exts, p, off) }

// Size is what reads see: devices, fifos and sockets read as empty.
func (d *fileData) Size() int64 {
	if !d.in.IsRegular() {
		return 0
	}
	return int64(d.in.Size)
}

// readExtents fills p with the bytes at off of the file the extents map,
// one extent (or hole) at a time.
func (f *FS) readExtents(exts []extent, p []byte, off int64) error {
	bs := f.sb.blockSize
	for len(p) > 0 {
		fb := uint64(off / bs)
		within := off % bs
		i, in := findExtent(exts, fb)
		var avail int64 // bytes from off to the end of this extent or hole
		switch {
		case in:
			avail = int64(exts[i].off+exts[i].count-fb)*bs - within
		case i < len(exts):
			avail = int64(exts[i].off-fb)*bs - within
		default:
			avail = int64(len(p))
		}
		chunk := min(int64(len(p)), avail)
		if !in || exts[i].unwritten {
			clear(p[:chunk])
		} else if err := f.readAt(p[:chunk], int64(exts[i].blk+fb-exts[i].off)*bs+within); err != nil {
			return err
		}
		p, off = p[chunk:], off+chunk
	}
	return nil
}
