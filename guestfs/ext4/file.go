package ext4

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"sync"
	"time"
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

// File is an open file or directory of an FS. Regular files also
// implement io.ReaderAt and io.Seeker; directories implement
// fs.ReadDirFile.
type File struct {
	fs     *FS
	name   string
	in     *Inode
	inline []byte // contents of an inline_data file
	off    int64
	dir    []fs.DirEntry // remaining entries of a directory, once read
	dirOK  bool
	closed bool

	// A window of the file kept for small reads, which would otherwise
	// cost one image read each (bufio-less readers, fstest).
	mu      sync.Mutex
	win     []byte
	winOff  int64
	winSize int
}

const windowSize = 64 << 10

var (
	_ fs.ReadDirFile = (*File)(nil)
	_ io.ReaderAt    = (*File)(nil)
	_ io.Seeker      = (*File)(nil)
)

func (f *FS) newFile(name string, in *Inode) (*File, error) {
	file := &File{fs: f, name: name, in: in}
	if in.Flags&FlagInlineData != 0 && !in.IsDir() {
		data, err := f.inlineData(in)
		if err != nil {
			return nil, pathErr("open", name, err)
		}
		file.inline = data
	}
	return file, nil
}

// Stat describes the open file.
func (file *File) Stat() (fs.FileInfo, error) {
	if file.closed {
		return nil, pathErr("stat", file.name, fs.ErrClosed)
	}
	return &fileInfo{name: path.Base(file.name), in: file.in}, nil
}

// Close releases nothing (the FS holds no per-file state) but makes
// further calls fail, as os.File does.
func (file *File) Close() error {
	if file.closed {
		return pathErr("close", file.name, fs.ErrClosed)
	}
	file.closed = true
	return nil
}

// size is what reads see: devices, fifos and sockets read as empty.
func (file *File) size() int64 {
	if !file.in.IsRegular() {
		return 0
	}
	return int64(min(file.in.Size, 1<<63-1))
}

// Read reads the next bytes of a regular file.
func (file *File) Read(p []byte) (int, error) {
	if file.closed {
		return 0, pathErr("read", file.name, fs.ErrClosed)
	}
	if file.in.IsDir() {
		return 0, pathErr("read", file.name, fmt.Errorf("is a directory: %w", fs.ErrInvalid))
	}
	n, err := file.ReadAt(p, file.off)
	file.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek sets the offset of the next Read.
func (file *File) Seek(offset int64, whence int) (int64, error) {
	if file.closed {
		return 0, pathErr("seek", file.name, fs.ErrClosed)
	}
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += file.off
	case io.SeekEnd:
		offset += file.size()
	default:
		return 0, pathErr("seek", file.name, fs.ErrInvalid)
	}
	if offset < 0 {
		return 0, pathErr("seek", file.name, fs.ErrInvalid)
	}
	file.off = offset
	return offset, nil
}

// ReadAt reads len(p) bytes at off; holes and unwritten extents read as
// zeros.
func (file *File) ReadAt(p []byte, off int64) (int, error) {
	if file.closed {
		return 0, pathErr("read", file.name, fs.ErrClosed)
	}
	if file.in.IsDir() {
		return 0, pathErr("read", file.name, fmt.Errorf("is a directory: %w", fs.ErrInvalid))
	}
	if off < 0 {
		return 0, pathErr("read", file.name, fs.ErrInvalid)
	}
	size := file.size()
	if off >= size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > size-off {
		p = p[:size-off]
	}
	var err error
	if file.inline != nil || file.in.Flags&FlagInlineData != 0 {
		copy(p, file.inline[off:])
	} else if want < windowSize/2 {
		// Small reads share a window; a large buffer (copy-out's), even
		// at a small file's tail, reads the image directly rather than
		// filling a window it does not need.
		err = file.readSmall(p, off, size)
	} else {
		err = file.fs.readData(file.in, p, off)
	}
	if err != nil {
		return 0, pathErr("read", file.name, err)
	}
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}

// readSmall serves a small read from the window, refilling it with the
// aligned stretch around off first when needed.
func (file *File) readSmall(p []byte, off, size int64) error {
	file.mu.Lock()
	defer file.mu.Unlock()
	if off < file.winOff || off+int64(len(p)) > file.winOff+int64(file.winSize) {
		if file.win == nil {
			file.win = make([]byte, windowSize)
		}
		start := off &^ (windowSize - 1)
		n := int(min(windowSize, size-start))
		file.winSize = 0 // invalid until filled
		if err := file.fs.readData(file.in, file.win[:n], start); err != nil {
			return err
		}
		file.winOff, file.winSize = start, n
		if off+int64(len(p)) > start+int64(n) {
			// Crosses the window's end: read it directly.
			return file.fs.readData(file.in, p, off)
		}
	}
	copy(p, file.win[off-file.winOff:])
	return nil
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

// ReadDir reads the next n entries of a directory (all with n <= 0), in
// name order.
func (file *File) ReadDir(n int) ([]fs.DirEntry, error) {
	if file.closed {
		return nil, pathErr("readdir", file.name, fs.ErrClosed)
	}
	if !file.dirOK {
		ents, err := file.fs.readDir(file.in)
		if err != nil {
			return nil, pathErr("readdir", file.name, err)
		}
		file.dir, file.dirOK = ents, true
	}
	if n <= 0 {
		ents := file.dir
		file.dir = nil
		return ents, nil
	}
	if len(file.dir) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(file.dir))
	ents := file.dir[:n:n]
	file.dir = file.dir[n:]
	return ents, nil
}
