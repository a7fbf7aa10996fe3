package xfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"

	"github.com/qimg/qimg/image"
)

// maxDepth bounds the directories one path descends through: a hostile
// image can make a directory its own descendant, and fs.WalkDir would
// then descend forever. It is as deep as a Linux path of PATH_MAX bytes
// can go.
const maxDepth = 2048

// maxSymlinks bounds the symbolic links one path lookup follows, as
// Linux's MAXSYMLINKS does; a loop ends with an error instead of spinning.
const maxSymlinks = 40

// FS is a read-only XFS file system in an image. It implements fs.FS,
// fs.ReadDirFS, fs.StatFS, fs.ReadFileFS and fs.ReadLinkFS, and is safe
// for concurrent use.
type FS struct {
	r    io.ReaderAt
	size int64
	name string
	sb   *superblock

	cache   dirCache // names of directories looked up
	inodeMu sync.Mutex
	inodes  map[uint64]*Inode // inodes read so far
}

var (
	_ fs.FS         = (*FS)(nil)
	_ fs.ReadDirFS  = (*FS)(nil)
	_ fs.StatFS     = (*FS)(nil)
	_ fs.ReadFileFS = (*FS)(nil)
	_ fs.ReadLinkFS = (*FS)(nil)
)

// Open reads the XFS file system of size bytes held in img (a whole disk
// image that is one file system, or an image.Section of a partition).
// name is the image's name in messages. Errors are of the classes of
// package image: ErrWrongFormat when there is no XFS superblock,
// ErrUnsupported for features it does not implement, ErrCorrupt
// otherwise.
func Open(img io.ReaderAt, size int64, name string) (*FS, error) {
	if size < 512 {
		return nil, image.FileErrorf(name, "too small for an XFS file system: %w", image.ErrWrongFormat)
	}
	// The sector size is in the superblock; read the largest there is
	// (or what the image holds) and let the parser cut it.
	buf := make([]byte, min(size, 32768))
	if n, err := img.ReadAt(buf, 0); n < len(buf) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, image.FileErrorf(name, "reading the XFS superblock: %w", err)
	}
	sb, err := parseSuperblock(buf, size, name)
	if err != nil {
		return nil, err
	}
	f := &FS{r: img, size: size, name: name, sb: sb, inodes: map[uint64]*Inode{}}
	root, err := f.inode(sb.rootIno)
	if err != nil {
		return nil, err
	}
	if !root.IsDir() {
		return nil, f.corrupt("root inode %d is not a directory", sb.rootIno)
	}
	return f, nil
}

// Info describes the file system as a whole, as xfs_info does.
type Info struct {
	Version     int // 4 or 5 (crc)
	BlockSize   int64
	Blocks      uint64
	FreeBlocks  uint64
	AGCount     uint64
	AGBlocks    uint64
	InodeSize   int
	Inodes      uint64 // allocated
	FreeInodes  uint64
	DirBlock    int64
	UUID        [16]byte
	Label       string
	RootIno     uint64
	Features    []string // as mkfs.xfs names them
	NeedsRepair bool
	ExternalLog bool
}

// Info returns the superblock's description of the file system.
func (f *FS) Info() Info {
	s := f.sb
	return Info{
		Version: s.version, BlockSize: s.blockSize, Blocks: s.dblocks, FreeBlocks: s.fdblocks,
		AGCount: s.agCount, AGBlocks: s.agBlocks, InodeSize: s.inodeSize,
		Inodes: s.icount, FreeInodes: s.ifree, DirBlock: s.dirBlockSize(),
		UUID: s.uuid, Label: s.label, RootIno: s.rootIno, Features: s.features(),
		NeedsRepair: s.incompat&incompatNeedsRepair != 0, ExternalLog: s.logStart == 0,
	}
}

// readAt reads exactly len(p) bytes at off of the image.
func (f *FS) readAt(p []byte, off int64) error {
	if off < 0 || off > f.size || int64(len(p)) > f.size-off {
		return f.corrupt("read of %d bytes at %d past the end of the image", len(p), off)
	}
	n, err := f.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return image.FileErrorf(f.name, "xfs: reading %d bytes at %d: %w", len(p), off, err)
}

// readBlocks reads n linear blocks from blk, which must lie inside the
// file system.
func (f *FS) readBlocks(blk, n uint64) ([]byte, error) {
	if n == 0 || blk >= f.sb.dblocks || n > f.sb.dblocks-blk || n > 1<<16 {
		return nil, f.corrupt("blocks %d+%d out of range (%d blocks)", blk, n, f.sb.dblocks)
	}
	buf := make([]byte, int64(n)*f.sb.blockSize)
	if err := f.readAt(buf, int64(blk)*f.sb.blockSize); err != nil {
		return nil, err
	}
	return buf, nil
}

// pathErr wraps err as io/fs wants: with the operation and the path.
func pathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// lookup resolves name, a valid fs.FS path, to its inode. Symbolic links
// in the middle of the path are always followed, the last one only if
// follow is set. Links resolve inside this file system: an absolute
// target starts again at its root, and ".." never climbs above the root,
// so no name in the guest can reach the host.
func (f *FS) lookup(op, name string, follow bool) (*Inode, error) {
	if !fs.ValidPath(name) {
		return nil, pathErr(op, name, fs.ErrInvalid)
	}
	root, err := f.inode(f.sb.rootIno)
	if err != nil {
		return nil, pathErr(op, name, err)
	}
	// stack holds the directories from the root down to the current
	// one, which is what ".." pops.
	stack := []*Inode{root}
	var rest []string
	if name != "." {
		rest = strings.Split(name, "/")
	}
	links := 0
	for len(rest) > 0 {
		comp := rest[0]
		rest = rest[1:]
		switch comp {
		case "", ".":
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		dir := stack[len(stack)-1]
		if !dir.IsDir() {
			return nil, pathErr(op, name, fmt.Errorf("not a directory: %w", fs.ErrNotExist))
		}
		ino, err := f.findEntry(dir, comp)
		if err != nil {
			return nil, pathErr(op, name, err)
		}
		in, err := f.inode(ino)
		if err != nil {
			return nil, pathErr(op, name, err)
		}
		if in.IsSymlink() && (len(rest) > 0 || follow) {
			links++
			if links > maxSymlinks {
				return nil, pathErr(op, name, fmt.Errorf("too many levels of symbolic links: %w", fs.ErrInvalid))
			}
			target, err := f.readlink(in)
			if err != nil {
				return nil, pathErr(op, name, err)
			}
			if strings.HasPrefix(target, "/") {
				stack = stack[:1]
			}
			rest = append(strings.Split(target, "/"), rest...)
			if len(rest) > 1<<16 {
				return nil, pathErr(op, name, f.corrupt("path through symbolic links too long"))
			}
			continue
		}
		if len(stack) > maxDepth {
			return nil, pathErr(op, name, f.limit("path deeper than %d directories", maxDepth))
		}
		stack = append(stack, in)
	}
	return stack[len(stack)-1], nil
}

// Open opens the named file, following symbolic links inside the file
// system. Directories can be read with ReadDir; other files read their
// contents (devices, fifos and sockets read as empty).
func (f *FS) Open(name string) (fs.File, error) {
	in, err := f.lookup("open", name, true)
	if err != nil {
		return nil, err
	}
	return f.newFile(name, in)
}

// ReadFile reads the named file whole, following symbolic links.
func (f *FS) ReadFile(name string) ([]byte, error) {
	in, err := f.lookup("readfile", name, true)
	if err != nil {
		return nil, err
	}
	file, err := f.newFile(name, in)
	if err != nil {
		return nil, err
	}
	if in.IsDir() {
		return nil, pathErr("readfile", name, fmt.Errorf("is a directory: %w", fs.ErrInvalid))
	}
	// The buffer grows as data is read, not from the size field: a
	// hostile size costs reads of what is there, not an allocation.
	size := file.size()
	buf := make([]byte, 0, min(size, readFileChunk))
	for int64(len(buf)) < size {
		n := min(size-int64(len(buf)), readFileChunk)
		buf = append(buf, make([]byte, n)...)
		if _, err := file.ReadAt(buf[len(buf)-int(n):], int64(len(buf))-n); err != nil && err != io.EOF {
			return nil, err
		}
	}
	return buf, nil
}

// readFileChunk is how much ReadFile reads (and grows its buffer) at once.
const readFileChunk = 1 << 20

// Stat describes the named file, following symbolic links.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	in, err := f.lookup("stat", name, true)
	if err != nil {
		return nil, err
	}
	return &fileInfo{name: path.Base(name), in: in}, nil
}

// Lstat describes the named file without following a final symbolic link.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	in, err := f.lookup("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return &fileInfo{name: path.Base(name), in: in}, nil
}

// ReadDir lists the named directory sorted by name, without "." and "..".
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	in, err := f.lookup("readdir", name, true)
	if err != nil {
		return nil, err
	}
	ents, err := f.readDir(in)
	if err != nil {
		return nil, pathErr("readdir", name, err)
	}
	return ents, nil
}

// ReadLink returns the target of the named symbolic link as stored.
func (f *FS) ReadLink(name string) (string, error) {
	in, err := f.lookup("readlink", name, false)
	if err != nil {
		return "", err
	}
	if !in.IsSymlink() {
		return "", pathErr("readlink", name, fmt.Errorf("not a symbolic link: %w", fs.ErrInvalid))
	}
	t, err := f.readlink(in)
	if err != nil {
		return "", pathErr("readlink", name, err)
	}
	return t, nil
}

// Inode reads inode number ino, for tools that walk by number (as
// xfs_db does); most callers want Stat or Lstat and FileInfo.Sys.
func (f *FS) Inode(ino uint64) (*Inode, error) {
	return f.inode(ino)
}
