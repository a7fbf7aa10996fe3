package ext4

import (
	"io/fs"

	"github.com/qimg/qimg/guestfs/internal/fstree"
	"github.com/qimg/qimg/image"
)

// maxCachedInodes bounds the inodes kept once read: path lookups read
// every directory on the way, again and again.
const maxCachedInodes = 1 << 14

// newCaches starts the inode and directory caches empty.
func (f *FS) newCaches() {
	f.inodes = fstree.NewCache[uint32, *Inode](maxCachedInodes)
	f.dirs = fstree.NewDirs[uint32](dirCacheEntries, maxDirEntries)
}

// inodes is the FS as fstree sees it: a tree of inodes to resolve paths
// in, open and list, and the source of directory entries' FileInfo.
type inodes FS

// tree is f as fstree sees it.
func (f *FS) tree() *inodes { return (*inodes)(f) }

func (t *inodes) Open(name string, in *Inode) (*fstree.File, error) {
	return (*FS)(t).newFile(name, in)
}
func (t *inodes) Stat(name string, in *Inode) fs.FileInfo { return &fileInfo{name: name, in: in} }
func (t *inodes) List(dir *Inode) ([]fs.DirEntry, error)  { return (*FS)(t).readDir(dir) }

func (t *inodes) Root() (*Inode, error) { return (*FS)(t).inode(rootIno) }

func (t *inodes) Child(dir *Inode, name string) (*Inode, error) {
	f := (*FS)(t)
	ino, err := f.findEntry(dir, name)
	if err != nil {
		return nil, err
	}
	return f.inode(ino)
}

func (t *inodes) Target(link *Inode) (string, error) { return (*FS)(t).readlink(link) }

func (t *inodes) Errorf(kind error, format string, args ...any) error {
	return image.FileErrorf(t.name, "ext4: "+format+": %w", append(args, kind)...)
}

func (t *inodes) EntryInfo(name string, ino uint32) (fs.FileInfo, error) {
	in, err := (*FS)(t).inode(ino)
	if err != nil {
		return nil, err
	}
	return &fileInfo{name: name, in: in}, nil
}
