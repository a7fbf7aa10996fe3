package ext4

import (
	"fmt"
	"io/fs"

	"github.com/qimg/qimg/guestfs/internal/fstree"
)

// OpenEntry opens the file that d, an entry listed by this FS's ReadDir
// or File.ReadDir, names, by its inode number: no path is looked up, so
// a walk of a tree scans each directory once and never walks down from
// the root again. A symbolic link is opened itself, not followed (it
// reads as empty; ReadLinkEntry reads its target). name is the entry's
// path, for messages.
func (f *FS) OpenEntry(name string, d fs.DirEntry) (fs.File, error) {
	in, err := f.entryInode("open", name, d)
	if err != nil {
		return nil, err
	}
	file, err := f.newFile(name, in)
	if err != nil {
		return nil, err
	}
	return file, nil
}

// ReadLinkEntry returns the target, as stored, of the symbolic link that
// d, an entry listed by this FS, names.
func (f *FS) ReadLinkEntry(name string, d fs.DirEntry) (string, error) {
	in, err := f.entryInode("readlink", name, d)
	if err != nil {
		return "", err
	}
	return fstree.Target[*Inode](f.tree(), "readlink", name, in)
}

// entryInode reads the inode of an entry this FS listed; an entry of
// another FS is an invalid argument.
func (f *FS) entryInode(op, name string, d fs.DirEntry) (*Inode, error) {
	ino, ok := fstree.Inode[uint32](f.tree(), d)
	if !ok {
		return nil, pathErr(op, name, fmt.Errorf("not an entry of this file system: %w", fs.ErrInvalid))
	}
	in, err := f.inode(ino)
	if err != nil {
		return nil, pathErr(op, name, err)
	}
	return in, nil
}
