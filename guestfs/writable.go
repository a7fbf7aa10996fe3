package guestfs

import (
	"context"
	"io"
	"io/fs"
	"time"
)

// WritableFileSystem is a FileSystem qimg edits. Every change is staged
// and reaches the image only at Commit, all at once: a crash or an error
// before Commit returns leaves the filesystem as it was, and one after
// leaves it complete: ext3/ext4 commit a journal transaction, and
// filesystems with no journal (ext2, FAT) keep the promise when
// MountWritable is given a redo log (WithRedoLog); without one a crash
// in the middle of their Commit leaves work for fsck. Reads see the
// staged changes.
//
// Names are slash-separated paths inside the guest as fs.ValidPath
// accepts them ("." is the root). Symbolic links in the leading
// directories are followed inside the guest; the last element is not
// followed (Remove removes a link, not its target). Methods a
// filesystem cannot do (a symbolic link on FAT) return an error wrapping
// image.ErrUnsupported.
type WritableFileSystem interface {
	FileSystem

	// WriteFile creates name, or replaces the contents of an existing
	// regular file (keeping its owner, mode and extended attributes),
	// with size bytes read from r. perm (permission bits plus
	// fs.ModeSetuid, ModeSetgid, ModeSticky) applies to a new file only.
	WriteFile(name string, r io.Reader, size int64, perm fs.FileMode) error
	// Mkdir creates the directory name; its parent must exist.
	Mkdir(name string, perm fs.FileMode) error
	// Remove removes a file, a symbolic link or an empty directory.
	Remove(name string) error
	// RemoveAll removes name and everything below it; a missing name is
	// not an error.
	RemoveAll(name string) error
	// Rename moves oldname to newname, replacing a file (or an empty
	// directory, for a directory) that is there, across directories.
	Rename(oldname, newname string) error
	// Symlink creates link pointing at target (stored as given).
	Symlink(target, link string) error
	// Link creates newname as a hard link to the file oldname.
	Link(oldname, newname string) error
	// Truncate sets the size of a regular file, freeing or adding zeros.
	Truncate(name string, size int64) error
	// Chmod sets the permission bits (with setuid, setgid and sticky).
	Chmod(name string, mode fs.FileMode) error
	// Chown sets the owner and group.
	Chown(name string, uid, gid int) error
	// Chtimes sets the access and modification times.
	Chtimes(name string, atime, mtime time.Time) error

	// Commit writes every staged change to the image, all or nothing.
	Commit(ctx context.Context) error
}
