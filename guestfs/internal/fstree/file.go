package fstree

import (
	"fmt"
	"io"
	"io/fs"
	"sync"
)

// Data is the inode an open File reads.
type Data interface {
	// Info describes the inode under the name given.
	Info(name string) fs.FileInfo
	IsDir() bool
	// Size is what reads see: devices, fifos and sockets read as empty.
	Size() int64
	// ReadAt fills p with the bytes at off, all within Size; holes read
	// as zeros.
	ReadAt(p []byte, off int64) error
	// ReadDir lists a directory as List does.
	ReadDir() ([]fs.DirEntry, error)
}

// File is an open file or directory. Regular files also implement
// io.ReaderAt and io.Seeker; directories implement fs.ReadDirFile.
type File struct {
	name   string
	data   Data
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

// windowSize is the stretch of a file one small read brings in.
const windowSize = 64 << 10

var (
	_ fs.ReadDirFile = (*File)(nil)
	_ io.ReaderAt    = (*File)(nil)
	_ io.Seeker      = (*File)(nil)
)

// NewFile opens data under the fs.FS path name.
func NewFile(name string, data Data) *File {
	return &File{name: name, data: data}
}

// Stat describes the open file.
func (file *File) Stat() (fs.FileInfo, error) {
	if file.closed {
		return nil, PathErr("stat", file.name, fs.ErrClosed)
	}
	return file.data.Info(baseName(file.name)), nil
}

// Close makes further calls fail, as os.File does.
func (file *File) Close() error {
	if file.closed {
		return PathErr("close", file.name, fs.ErrClosed)
	}
	file.closed = true
	return nil
}

// Read reads the next bytes of a regular file.
func (file *File) Read(p []byte) (int, error) {
	if err := file.readable("read"); err != nil {
		return 0, err
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
		return 0, PathErr("seek", file.name, fs.ErrClosed)
	}
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += file.off
	case io.SeekEnd:
		offset += file.data.Size()
	default:
		return 0, PathErr("seek", file.name, fs.ErrInvalid)
	}
	if offset < 0 {
		return 0, PathErr("seek", file.name, fs.ErrInvalid)
	}
	file.off = offset
	return offset, nil
}

// readable says why the file cannot be read, if it cannot.
func (file *File) readable(op string) error {
	if file.closed {
		return PathErr(op, file.name, fs.ErrClosed)
	}
	if file.data.IsDir() {
		return PathErr(op, file.name, fmt.Errorf("is a directory: %w", fs.ErrInvalid))
	}
	return nil
}

// ReadAt reads len(p) bytes at off; holes and unwritten extents read as
// zeros.
func (file *File) ReadAt(p []byte, off int64) (int, error) {
	if err := file.readable("read"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, PathErr("read", file.name, fs.ErrInvalid)
	}
	size := file.data.Size()
	if off >= size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > size-off {
		p = p[:size-off]
	}
	var err error
	if want < windowSize/2 {
		// Small reads share a window; a large buffer (copy-out's), even
		// at a small file's tail, reads the image directly rather than
		// filling a window it does not need.
		err = file.readSmall(p, off, size)
	} else {
		err = file.data.ReadAt(p, off)
	}
	if err != nil {
		return 0, PathErr("read", file.name, err)
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
		if err := file.data.ReadAt(file.win[:n], start); err != nil {
			return err
		}
		file.winOff, file.winSize = start, n
		if off+int64(len(p)) > start+int64(n) {
			// Crosses the window's end: read it directly.
			return file.data.ReadAt(p, off)
		}
	}
	copy(p, file.win[off-file.winOff:])
	return nil
}

// ReadDir reads the next n entries of a directory (all with n <= 0), in
// name order.
func (file *File) ReadDir(n int) ([]fs.DirEntry, error) {
	if file.closed {
		return nil, PathErr("readdir", file.name, fs.ErrClosed)
	}
	if !file.dirOK {
		ents, err := file.data.ReadDir()
		if err != nil {
			return nil, PathErr("readdir", file.name, err)
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

// readAllChunk is how much ReadAll reads (and grows its buffer) at once.
const readAllChunk = 1 << 20

// ReadAll reads a regular file whole. The buffer grows as data is read,
// not from the size field: a hostile size costs reads of what is there,
// not an allocation.
func (file *File) ReadAll() ([]byte, error) {
	if err := file.readable("readfile"); err != nil {
		return nil, err
	}
	size := file.data.Size()
	buf := make([]byte, 0, min(size, readAllChunk))
	for int64(len(buf)) < size {
		n := min(size-int64(len(buf)), readAllChunk)
		buf = append(buf, make([]byte, n)...)
		if _, err := file.ReadAt(buf[len(buf)-int(n):], int64(len(buf))-n); err != nil && err != io.EOF {
			return nil, err
		}
	}
	return buf, nil
}
