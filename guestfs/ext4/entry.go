package ext4

import (
	"fmt"
	"io/fs"
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
	return f.newFile(name, in)
}

// ReadLinkEntry returns the target, as stored, of the symbolic link that
// d, an entry listed by this FS, names.
func (f *FS) ReadLinkEntry(name string, d fs.DirEntry) (string, error) {
	in, err := f.entryInode("readlink", name, d)
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

// entryInode reads the inode of an entry this FS listed; an entry of
// another FS is an invalid argument.
func (f *FS) entryInode(op, name string, d fs.DirEntry) (*Inode, error) {
	e, ok := d.(*dirEntry)
	if !ok || e.f != f {
		return nil, pathErr(op, name, fmt.Errorf("not an entry of this file system: %w", fs.ErrInvalid))
	}
	in, err := f.inode(e.ino)
	if err != nil {
		return nil, pathErr(op, name, err)
	}
	return in, nil
}
