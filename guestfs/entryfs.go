package guestfs

import (
	"io/fs"

	"github.com/qimg/qimg/guestfs/ext4"
	"github.com/qimg/qimg/guestfs/xfs"
)

// EntryFS is a FileSystem that acts on an entry of a directory it listed
// without looking the entry's path up from the root again: a walk of a
// tree (copy-out of /usr) then costs one scan per directory, whatever
// its depth. name is the entry's path, for messages only.
type EntryFS interface {
	FileSystem
	// OpenEntry opens the file d names; a symbolic link is not followed.
	OpenEntry(name string, d fs.DirEntry) (fs.File, error)
	// ReadLinkEntry returns the target of the symbolic link d names.
	ReadLinkEntry(name string, d fs.DirEntry) (string, error)
}

// OpenEntry opens the directory or regular file d, listed at name in
// fsys, by the entry itself when fsys is an EntryFS, else by its path.
func OpenEntry(fsys FileSystem, name string, d fs.DirEntry) (fs.File, error) {
	if e, ok := fsys.(EntryFS); ok {
		return e.OpenEntry(name, d)
	}
	return fsys.Open(name)
}

// ReadLinkEntry returns the target of the symbolic link d, listed at name
// in fsys, as stored.
func ReadLinkEntry(fsys FileSystem, name string, d fs.DirEntry) (string, error) {
	if e, ok := fsys.(EntryFS); ok {
		return e.ReadLinkEntry(name, d)
	}
	return fsys.ReadLink(name)
}

// Owner returns the owner and group a filesystem records for fi; ok is
// false for one that records none (ISO 9660 read without them).
func Owner(fi fs.FileInfo) (uid, gid int, ok bool) {
	switch in := fi.Sys().(type) {
	case *ext4.Inode:
		return int(in.UID), int(in.GID), true
	case *xfs.Inode:
		return int(in.UID), int(in.GID), true
	}
	return 0, 0, false
}

// FileID returns a number that tells fi's file apart from every other
// file of its filesystem (an inode number), so a walk can notice a
// directory met twice; ok is false when the filesystem has none.
func FileID(fi fs.FileInfo) (id uint64, ok bool) {
	switch in := fi.Sys().(type) {
	case *ext4.Inode:
		return uint64(in.Ino), true
	case *xfs.Inode:
		return in.Ino, true
	}
	return 0, false
}

var _ EntryFS = (*ext4.FS)(nil)
