package xfs

import (
	"errors"
	"io"
	"io/fs"

	"github.com/qimg/qimg/guestfs/internal/fstree"

	"github.com/qimg/qimg/image"
)

// FS is a read-only XFS file system in an image. It implements fs.FS,
// fs.ReadDirFS, fs.StatFS, fs.ReadFileFS and fs.ReadLinkFS, and is safe
// for concurrent use.
type FS struct {
	r    io.ReaderAt
	size int64
	name string
	sb   *superblock

	dirs   *fstree.Dirs[uint64]          // names of directories looked up
	inodes *fstree.Cache[uint64, *Inode] // inodes read so far
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
	f := &FS{r: img, size: size, name: name, sb: sb,
		inodes: fstree.NewCache[uint64, *Inode](maxCachedIno),
		dirs:   fstree.NewDirs[uint64](dirCacheEntries, maxDirEntries)}
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
func pathErr(op, name string, err error) error { return fstree.PathErr(op, name, err) }

// lookup resolves name, a valid fs.FS path, to its inode, inside this
// file system (fstree.Resolve: no name in the guest reaches the host).
// The last symbolic link is followed only if follow is set.
func (f *FS) lookup(op, name string, follow bool) (*Inode, error) {
	return fstree.Resolve[*Inode](f.tree(), op, name, follow)
}

// Open opens the named file, following symbolic links inside the file
// system. Directories can be read with ReadDir; other files read their
// contents (devices, fifos and sockets read as empty) and implement
// io.ReaderAt and io.Seeker.
func (f *FS) Open(name string) (fs.File, error) { return fstree.Open[*Inode](f.tree(), name) }

// ReadFile reads the named file whole, following symbolic links.
func (f *FS) ReadFile(name string) ([]byte, error) { return fstree.ReadFile[*Inode](f.tree(), name) }

// Stat describes the named file, following symbolic links.
func (f *FS) Stat(name string) (fs.FileInfo, error) { return fstree.Stat[*Inode](f.tree(), name) }

// Lstat describes the named file without following a final symbolic link.
func (f *FS) Lstat(name string) (fs.FileInfo, error) { return fstree.Lstat[*Inode](f.tree(), name) }

// ReadDir lists the named directory sorted by name, without "." and "..".
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	return fstree.ReadDir[*Inode](f.tree(), name)
}

// ReadLink returns the target of the named symbolic link as stored.
func (f *FS) ReadLink(name string) (string, error) { return fstree.ReadLink[*Inode](f.tree(), name) }

// Inode reads inode number ino, for tools that walk by number (as
// xfs_db does); most callers want Stat or Lstat and FileInfo.Sys.
func (f *FS) Inode(ino uint64) (*Inode, error) {
	return f.inode(ino)
}
