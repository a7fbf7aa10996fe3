package main

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// hostDir is a local directory copy-out fills. Every name given to its
// methods is one path element, made or changed inside the directory
// itself, never through a path the host resolves: no symbolic link,
// whether it was there before or copy-out made it, can take a write
// outside.
//
// root, an os.Root on the directory, makes directories and links and
// removes what is in the way. The directory is also held open as dir
// (its descriptor fd) for what os.Root lacks or makes costly: setting the
// times of a link itself (utimensat with AT_SYMLINK_NOFOLLOW), and
// creating regular files, which are the bulk of a tree: openat on fd
// with O_CREAT|O_EXCL|O_NOFOLLOW, which is what os.Root.OpenFile does,
// but without the *os.File whose poller registration (tried and undone
// for a regular file) costs five more system calls per file.
type hostDir struct {
	root *os.Root
	dir  *os.File
	fd   int
	path string // below LOCALDIR, for messages
	// fresh is set for a directory this copy made, of our group and
	// without the set-group-ID bit: what is made in it is ours, owner
	// and group, and needs no chown to be.
	fresh bool
	egid  int // ours, asked once
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
	return withDirHandle(root, "", false, os.Getegid())
}

func withDirHandle(root *os.Root, p string, made bool, egid int) (*hostDir, error) {
	dir, err := root.Open(".")
	if err != nil {
		root.Close()
		return nil, err
	}
	h := &hostDir{root: root, dir: dir, fd: int(dir.Fd()), path: p, egid: egid}
	if made {
		// A parent's set-group-ID bit, or a mount with BSD group
		// semantics, can give the new directory another group.
		var st unix.Stat_t
		if unix.Fstat(h.fd, &st) == nil {
			h.fresh = int(st.Gid) == egid && st.Mode&unix.S_ISGID == 0
		}
	}
	return h, nil
}

func (h *hostDir) close() {
	h.dir.Close()
	h.root.Close()
}

// oneElement guards the calls that go around os.Root: a name with a
// slash, or "..", would leave the directory.
func oneElement(op, name string) error {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return &fs.PathError{Op: op, Path: name, Err: syscall.EINVAL}
	}
	return nil
}

// mkdir makes the directory name, or merges into the one there; a file
// or link in the way is removed, never followed. The new directory is
// 0700 until the caller gives it its mode.
func (h *hostDir) mkdir(name string) (*hostDir, error) {
	err := h.root.Mkdir(name, 0o700)
	fresh := err == nil
	if errors.Is(err, fs.ErrExist) {
		var fi fs.FileInfo
		if fi, err = h.root.Lstat(name); err == nil && !fi.IsDir() {
			if err = h.root.Remove(name); err == nil {
				err = h.root.Mkdir(name, 0o700)
				fresh = err == nil
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
	return withDirHandle(sub, path.Join(h.path, name), fresh, h.egid)
}

// create makes a new empty regular file name with permission bits perm
// (less the umask). What is there is removed first rather than
// truncated: a link there, or a file hard-linked to one elsewhere, would
// carry the write outside.
func (h *hostDir) create(name string, perm fs.FileMode) (hostFile, error) {
	if err := oneElement("openat", name); err != nil {
		return -1, err
	}
	open := func() (int, error) {
		for {
			fd, err := unix.Openat(h.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
			if err != unix.EINTR {
				return fd, err
			}
		}
	}
	fd, err := open()
	if err == unix.EEXIST {
		if cerr := h.clear(name); cerr != nil {
			return -1, cerr
		}
		fd, err = open()
	}
	if err != nil {
		return -1, &fs.PathError{Op: "openat", Path: name, Err: err}
	}
	return hostFile(fd), nil
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
	if err := oneElement("utimensat", name); err != nil {
		return err
	}
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Sec: mtime.Unix(), Nsec: int64(mtime.Nanosecond())}}
	err := unix.UtimesNanoAt(h.fd, name, ts, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return &fs.PathError{Op: "utimensat", Path: name, Err: err}
	}
	return nil
}

// hostFile is a file or directory copy-out gives contents, owner and
// mode to, by its descriptor.
type hostFile int

func (f hostFile) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Write(int(f), p[done:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

func (f hostFile) chown(uid, gid int) error { return unix.Fchown(int(f), uid, gid) }

// chmod sets the permission, set-id and sticky bits.
func (f hostFile) chmod(m fs.FileMode) error {
	mode := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= unix.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		mode |= unix.S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		mode |= unix.S_ISVTX
	}
	return unix.Fchmod(int(f), mode)
}

func (f hostFile) close() error { return unix.Close(int(f)) }

// processUmask reads the umask without changing it (umask(2) can only
// set it), from /proc/self/status; ok is false where that has none.
func processUmask() (mask fs.FileMode, ok bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, found := strings.CutPrefix(s.Text(), "Umask:"); found {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			return fs.FileMode(n) & fs.ModePerm, err == nil
		}
	}
	return 0, false
}
