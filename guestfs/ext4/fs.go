package ext4

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

// maxDepth bounds the directories one path descends through. ext4 forbids
// hard links to directories, but a hostile image can make a directory its
// own descendant; fs.WalkDir would then descend forever, each step a
// longer lookup. The bound ends such a walk with an error; it is as deep
// as a Linux path of PATH_MAX bytes can go.
const maxDepth = 2048

// maxSymlinks bounds the symbolic links one path lookup follows, as
// Linux's MAXSYMLINKS does; a loop ends with an error instead of spinning.
const maxSymlinks = 40

// FS is a read-only ext2/3/4 file system in an image. It implements
// fs.FS, fs.ReadDirFS, fs.StatFS and fs.ReadLinkFS, and is safe for
// concurrent use.
type FS struct {
	r    io.ReaderAt
	size int64
	name string
	sb   *superblock

	cache   dirCache // names of directories looked up
	groupMu sync.Mutex
	groups  map[uint32]group // descriptors read so far
	inodeMu sync.Mutex
	inodes  map[uint32]*Inode // inodes read so far

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
	f := &FS{r: img, size: size, name: name, sb: sb, groups: map[uint32]group{}, inodes: map[uint32]*Inode{}}
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
	f.inodes = map[uint32]*Inode{}
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
	root, err := f.inode(rootIno)
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
			return nil, pathErr(op, name, image.FileErrorf(f.name, "ext4: path deeper than %d directories: %w", maxDepth, image.ErrLimit))
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
// debugfs does); most callers want Stat or Lstat and FileInfo.Sys.
func (f *FS) Inode(ino uint32) (*Inode, error) {
	return f.inode(ino)
}
