package ext4

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
func (i *fileInfo) Size() int64        { return int64(min(i.in.Size, 1<<63-1)) }
func (i *fileInfo) Mode() fs.FileMode  { return i.in.FileMode() }
func (i *fileInfo) ModTime() time.Time { return i.in.Mtime }
func (i *fileInfo) IsDir() bool        { return i.in.IsDir() }
func (i *fileInfo) Sys() any           { return i.in }
func (i *fileInfo) String() string     { return fs.FormatFileInfo(i) }

// fileData is what an open file reads: an inode's blocks, or its inline
// data.
type fileData struct {
	f      *FS
	in     *Inode
	inline []byte // contents of an inline_data file
}

// newFile opens an inode. Regular files of the result also implement
// io.ReaderAt and io.Seeker; directories implement fs.ReadDirFile.
func (f *FS) newFile(name string, in *Inode) (*fstree.File, error) {
	data := &fileData{f: f, in: in}
	if in.Flags&FlagInlineData != 0 && !in.IsDir() {
		inline, err := f.inlineData(in)
		if err != nil {
			return nil, pathErr("open", name, err)
		}
		data.inline = inline
	}
	return fstree.NewFile(name, data), nil
}

func (d *fileData) Info(name string) fs.FileInfo    { return &fileInfo{name: name, in: d.in} }
func (d *fileData) IsDir() bool                     { return d.in.IsDir() }
func (d *fileData) ReadDir() ([]fs.DirEntry, error) { return d.f.readDir(d.in) }

// Size is what reads see: devices, fifos and sockets read as empty.
func (d *fileData) Size() int64 {
	if !d.in.IsRegular() {
		return 0
	}
	return int64(min(d.in.Size, 1<<63-1))
}

func (d *fileData) ReadAt(p []byte, off int64) error {
	if d.inline != nil || d.in.Flags&FlagInlineData != 0 {
		if off > int64(len(d.inline)) || int64(len(p)) > int64(len(d.inline))-off {
			return d.f.corrupt("inode %d: inline data shorter than its size", d.in.Ino)
		}
		copy(p, d.inline[off:])
		return nil
	}
	return d.f.readData(d.in, p, off)
}

// readData fills p with the bytes at off of a block-mapped inode, one
// contiguous run (or hole) at a time.
func (f *FS) readData(in *Inode, p []byte, off int64) error {
	bs := f.sb.blockSize
	for len(p) > 0 {
		lblk := off / bs
		if lblk >= 1<<32 {
			clear(p) // past what 32-bit logical block numbers address
			return nil
		}
		phys, n, err := f.mapBlock(in, uint32(lblk))
		if err != nil {
			return err
		}
		if n == 0 {
			return f.corrupt("inode %d: empty run at block %d", in.Ino, lblk)
		}
		within := off % bs
		chunk := int64(len(p))
		if avail := int64(min(n, 1<<32))*bs - within; chunk > avail {
			chunk = avail
		}
		if phys == 0 {
			clear(p[:chunk])
		} else if err := f.readAt(p[:chunk], int64(phys)*bs+within); err != nil {
			return err
		}
		p, off = p[chunk:], off+chunk
	}
	return nil
}
