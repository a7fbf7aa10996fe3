package ext4

import (
	"errors"
	"io"
	"io/fs"
	"sync"

	"github.com/qimg/qimg/guestfs/internal/fstree"

	"github.com/qimg/qimg/image"
)

// FS is a read-only ext2/3/4 file system in an image. It implements
// fs.FS, fs.ReadDirFS, fs.StatFS and fs.ReadLinkFS, and is safe for
// concurrent use.
type FS struct {
	r    io.ReaderAt
	size int64
	name string
	sb   *superblock

	dirs    *fstree.Dirs[uint32]          // names of directories looked up
	inodes  *fstree.Cache[uint32, *Inode] // inodes read so far
	groupMu sync.Mutex
	groups  map[uint32]group // descriptors read so far

	// The write side (OpenWritable): the device and the changes staged.
	dev Device
	tx  *tx
	// replayed holds, for a read-only FS whose journal needs recovery,
	// the blocks the journal would write back, read in their place.
	replayed map[uint64][]byte
}

var (
	_ fs.FS         = (*FS)(nil)
	_ fs.ReadDirFS  = (*FS)(nil)
	_ fs.StatFS     = (*FS)(nil)
	_ fs.ReadLinkFS = (*FS)(nil)
)

// Open reads the ext2/3/4 file system of size bytes held in img (a whole
// disk image that is one file system, or an image.Section of a
// partition). name is the image's name in messages. Errors are of the
// classes of package image: ErrWrongFormat when there is no ext
// superblock, ErrUnsupported for incompatible features it does not
// implement (named as mke2fs names them), ErrCorrupt otherwise.
func Open(img io.ReaderAt, size int64, name string) (*FS, error) {
	buf := make([]byte, superblockSize)
	if size < superblockOffset+superblockSize {
		return nil, image.FileErrorf(name, "too small for an ext2/3/4 file system: %w", image.ErrWrongFormat)
	}
	if _, err := img.ReadAt(buf, superblockOffset); err != nil {
		return nil, image.FileErrorf(name, "reading the ext4 superblock: %w", err)
	}
	sb, err := parseSuperblock(buf, size, name)
	if err != nil {
		return nil, err
	}
	f := &FS{r: img, size: size, name: name, sb: sb, groups: map[uint32]group{}}
	f.newCaches()
	root, err := f.inode(rootIno)
	if err != nil {
		return nil, err
	}
	if !root.IsDir() {
		return nil, f.corrupt("root inode is not a directory")
	}
	if sb.has(incompatRecover) {
		f.replayJournal()
	}
	return f, nil
}

// replayJournal reads a journal that needs recovery into memory, so that
// reads see the file system as the kernel would after mounting it. The
// image is not changed; a journal that cannot be read is ignored, and
// the file system read as it stands (as debugfs does), with
// Info().NeedsReplay saying so.
func (f *FS) replayJournal() {
	j, err := f.openJournal()
	if err != nil || j == nil {
		return
	}
	blocks, _, err := j.replay()
	if err != nil || len(blocks) == 0 {
		return
	}
	f.replayed = blocks
	buf := make([]byte, superblockSize)
	if err := f.readAt(buf, superblockOffset); err != nil {
		return
	}
	sb, err := parseSuperblock(buf, f.size, f.name)
	if err != nil {
		f.replayed = nil
		return
	}
	f.sb = sb
	f.newCaches()
	f.groups = map[uint32]group{}
}

// Info describes the file system as a whole, as dumpe2fs -h does.
type Info struct {
	BlockSize   int64
	Blocks      uint64
	FreeBlocks  uint64
	Inodes      uint32
	FreeInodes  uint32
	InodeSize   uint32
	UUID        [16]byte
	Label       string
	Features    []string // mke2fs names, compatible, incompatible then read-only compatible
	ReadOnlyFS  bool     // a read-only compatible feature this package does not know is set
	NeedsReplay bool     // the journal holds changes not yet written back (reads see them)
}

// roCompatKnown are the read-only compatible features the coming write
// side must understand before it changes anything.
var roCompatKnown uint32 = func() uint32 {
	var v uint32
	for _, n := range roCompatNames {
		v |= n.bit
	}
	return v
}()

// Info returns the superblock's description of the file system.
func (f *FS) Info() Info {
	s := f.sb
	feat := append(names(s.compat, compatNames), names(s.incompat, incompatNames)...)
	feat = append(feat, names(s.roCompat, roCompatNames)...)
	return Info{
		BlockSize: s.blockSize, Blocks: s.blocksCount, FreeBlocks: s.freeBlocks,
		Inodes: s.inodesCount, FreeInodes: s.freeInodes, InodeSize: s.inodeSize,
		UUID: s.uuid, Label: s.label, Features: feat,
		ReadOnlyFS:  s.roCompat&^roCompatKnown != 0,
		NeedsReplay: s.has(incompatRecover),
	}
}

// readAt reads exactly len(p) bytes at off of the image.
func (f *FS) readAt(p []byte, off int64) error {
	if off < 0 || off > f.size || int64(len(p)) > f.size-off {
		return f.corrupt("read of %d bytes at %d past the end of the image", len(p), off)
	}
	n, err := f.r.ReadAt(p, off)
	if n == len(p) {
		f.overlay(p, off)
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return image.FileErrorf(f.name, "ext4: reading %d bytes at %d: %w", len(p), off, err)
}

// validRange reports whether blocks [b, b+n) lie inside the file system
// and after the boot block.
func (f *FS) validRange(b, n uint64) bool {
	return b >= uint64(f.sb.firstDataBlock) && b != 0 && n <= f.sb.blocksCount && b <= f.sb.blocksCount-n
}

// readBlock reads file system block b, which must be inside it.
func (f *FS) readBlock(b uint64) ([]byte, error) {
	if !f.validRange(b, 1) {
		return nil, f.corrupt("block %d out of range (%d blocks)", b, f.sb.blocksCount)
	}
	buf := make([]byte, f.sb.blockSize)
	if err := f.readAt(buf, int64(b)*f.sb.blockSize); err != nil {
		return nil, err
	}
	return buf, nil
}

// mapBlock maps a logical block of an inode: the physical block and
// length of the contiguous run from there, or 0 and the length of a hole.
func (f *FS) mapBlock(in *Inode, lblk uint32) (uint64, uint64, error) {
	if in.Flags&FlagExtents != 0 {
		return f.mapExtent(in, lblk)
	}
	return f.mapIndirect(in, lblk)
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
// debugfs does); most callers want Stat or Lstat and FileInfo.Sys.
func (f *FS) Inode(ino uint32) (*Inode, error) {
	return f.inode(ino)
}
