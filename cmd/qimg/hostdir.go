package main

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// hostDir is a local directory copy-out fills. Every name given to its
// methods is one path element, created or changed through root, an
// os.Root on the directory: no symbolic link, whether it was there
// before or copy-out made it, can take a write outside. dir is the same
// directory open for the one call os.Root lacks, setting the times of a
// link itself (utimensat with AT_SYMLINK_NOFOLLOW on the descriptor).
type hostDir struct {
	root *os.Root
	dir  *os.File
	path string // below LOCALDIR, for messages
}

// openHostDir opens LOCALDIR, which must exist.
func openHostDir(name string) (*hostDir, error) {
	if fi, err := os.Stat(name); err == nil && !fi.IsDir() {
		// os.OpenRoot says so without an errno.
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.ENOTDIR}
	}
	root, err := os.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	return withDirHandle(root, "")
}

func withDirHandle(root *os.Root, p string) (*hostDir, error) {
	dir, err := root.Open(".")
	if err != nil {
		root.Close()
		return nil, err
	}
	return &hostDir{root: root, dir: dir, path: p}, nil
}

func (h *hostDir) close() {
	h.dir.Close()
	h.root.Close()
}

// mkdir makes the directory name, or merges into the one there; a file
// or link in the way is removed, never followed. The new directory is
// 0700 until the caller gives it its mode.
func (h *hostDir) mkdir(name string) (*hostDir, error) {
	err := h.root.Mkdir(name, 0o700)
	if errors.Is(err, fs.ErrExist) {
		var fi fs.FileInfo
		if fi, err = h.root.Lstat(name); err == nil && !fi.IsDir() {
			if err = h.root.Remove(name); err == nil {
				err = h.root.Mkdir(name, 0o700)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	sub, err := h.root.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	return withDirHandle(sub, path.Join(h.path, name))
}

// create makes a new empty file name. What is there is removed first
// rather than truncated: a link there, or a file hard-linked to one
// elsewhere, would carry the write outside.
func (h *hostDir) create(name string) (*os.File, error) {
	const flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	f, err := h.root.OpenFile(name, flags, 0o600)
	if errors.Is(err, fs.ErrExist) {
		if err = h.clear(name); err == nil {
			f, err = h.root.OpenFile(name, flags, 0o600)
		}
	}
	return f, err
}

// symlink makes the link name to target, replacing a file or link there.
func (h *hostDir) symlink(target, name string) error {
	err := h.root.Symlink(target, name)
	if errors.Is(err, fs.ErrExist) {
		if err = h.clear(name); err == nil {
			err = h.root.Symlink(target, name)
		}
	}
	return err
}

// clear removes the file or link name; a directory there stays, and is
// an error.
func (h *hostDir) clear(name string) error {
	fi, err := h.root.Lstat(name)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return &fs.PathError{Op: "create", Path: name, Err: errors.New("a directory is in the way")}
	}
	return h.root.Remove(name)
}

// setMtime sets the modification time of name itself, a link
// included: os.Root.Chtimes would follow the link. The access time is
// left as the copy made it.
func (h *hostDir) setMtime(name string, mtime time.Time) error {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return &fs.PathError{Op: "utimensat", Path: name, Err: syscall.EINVAL}
	}
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Sec: mtime.Unix(), Nsec: int64(mtime.Nanosecond())}}
	err := unix.UtimesNanoAt(int(h.dir.Fd()), name, ts, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return &fs.PathError{Op: "utimensat", Path: name, Err: err}
	}
	return nil
}
