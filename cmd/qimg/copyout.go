package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/guestfs"
)

func newCopyOutCmd(e *env) *cobra.Command {
	var o guestOptions
	cmd := &cobra.Command{
		Use:   "copy-out [-f FMT] [-m DEV] IMAGE REMOTE... LOCALDIR",
		Short: "Copy files and directories out of an image",
		Long: `Copy files and directory trees from inside a guest image into LOCALDIR, as
virt-copy-out does, without a kernel, appliance or root. Each REMOTE (a
file, a directory copied recursively, or a symbolic link) lands in
LOCALDIR under its own name; REMOTE / copies the whole filesystem into
LOCALDIR itself.

Permission bits and modification times are kept; set-user-ID and
set-group-ID bits, and the owner and group, only when run as root (as tar
does). Symbolic links are copied as links with their targets as stored,
never followed on the host. Hard-linked files become separate copies.
Devices, fifos and sockets are skipped with a warning.

Nothing is ever written outside LOCALDIR, whatever names and links the
guest holds: every file is created inside LOCALDIR through os.Root and a
directory handle, never through a path the host resolves. Existing
directories are merged; an existing file, or a link, in the way of a new
one is removed first and never written through; a directory in the way
of a file is an error. An error is reported and the copy goes on with
the other files, as cp -r does; the exit status is then 1.`,
		Args: minArgs(3, "Expecting an image, at least one path inside it and a local directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			imagePath, remotes, local := args[0], args[1:len(args)-1], args[len(args)-1]
			top, err := openHostDir(local)
			if err != nil {
				return fail("%s: %s", local, reason(local, err))
			}
			defer top.close()
			fsys, done, err := o.open(e, imagePath)
			if err != nil {
				return err
			}
			defer done()
			c := newCopier(e.ctx, fsys, imagePath, local, e.stderr)
			for _, r := range remotes {
				if err := c.copyRemote(top, r); err != nil {
					if e.ctx.Err() != nil {
						return err
					}
					c.report(err)
				}
			}
			if c.failed {
				return exitCode(1)
			}
			return nil
		},
	}
	o.flags(cmd)
	return cmd
}

// maxCopyDepth bounds the directories copy-out descends through: each
// level holds two open descriptors, and a hostile filesystem may nest
// directories as deep as its blocks allow.
const maxCopyDepth = 1024

// copyBufSize is the buffer every file is copied through: large enough
// for few system calls, small enough to stay in cache between the read
// and the write.
const copyBufSize = 256 << 10

// copier copies guest files into host directories.
type copier struct {
	ctx    context.Context
	fsys   guestfs.FileSystem
	image  string // IMAGE as given, for messages
	local  string // LOCALDIR as given, for messages
	warn   io.Writer
	asRoot bool   // keep owners and set-id bits, as tar does for root
	buf    []byte // reused by every file copied
	// uid, gid and umask are what new files get unasked, so that the
	// chown and chmod that would change nothing are left out; an
	// unknown umask counts as 0777, which leaves no chmod out.
	uid, gid int
	umask    fs.FileMode
	// dirs holds the directories copied for the current REMOTE: one met
	// again is a loop or a hard link to a directory, which ext4 forbids.
	dirs   map[uint64]bool
	failed bool // an error was reported; the copy went on, as cp's does
}

// report prints the error of one file, whose copy failed, and goes on
// with the others, as cp -r and tar do; the exit status will be 1.
func (c *copier) report(err error) {
	c.failed = true
	msg := err.Error()
	var ee *exitError
	if errors.As(err, &ee) {
		msg = ee.msg
	}
	fmt.Fprintf(c.warn, "qimg: %s\n", msg)
}

func newCopier(ctx context.Context, fsys guestfs.FileSystem, image, local string, warn io.Writer) *copier {
	c := &copier{ctx: ctx, fsys: fsys, image: image, local: local, warn: warn,
		asRoot: os.Geteuid() == 0, buf: make([]byte, copyBufSize),
		uid: os.Geteuid(), gid: os.Getegid(), umask: fs.ModePerm}
	if m, ok := processUmask(); ok {
		c.umask = m
	}
	return c
}

// entry is one guest file to copy. d is the directory entry it was
// listed by, nil for a REMOTE named on the command line.
type entry struct {
	name string // its fs.FS path
	base string // its name in its directory
	fi   fs.FileInfo
	d    fs.DirEntry
}

// copyRemote copies one REMOTE into LOCALDIR.
func (c *copier) copyRemote(top *hostDir, remote string) error {
	name := guestPath(remote)
	fi, err := c.fsys.Lstat(name)
	if err != nil {
		return guestError(c.image, remote, err)
	}
	c.dirs = map[uint64]bool{}
	e := entry{name: name, base: path.Base(name), fi: fi}
	if name == "." {
		// The guest's root goes into LOCALDIR itself, whose own mode
		// and owner are left as they are.
		if err := c.enterDir(e, 0); err != nil {
			return err
		}
		return c.copyChildren(top, e, 0)
	}
	return c.copyEntry(top, e, 0)
}

// copyEntry copies one file, link or tree into dir under e.base.
func (c *copier) copyEntry(dir *hostDir, e entry, depth int) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	switch m := e.fi.Mode(); {
	case m.IsDir():
		return c.copyDir(dir, e, depth)
	case m.IsRegular():
		return c.copyFile(dir, e)
	case m&fs.ModeSymlink != 0:
		return c.copySymlink(dir, e)
	default:
		fmt.Fprintf(c.warn, "qimg: warning: %s: %s: %s not copied\n", c.image, quoteName("/"+e.name), kindName(m))
		return nil
	}
}

// kindName names a file type copy-out skips.
func kindName(m fs.FileMode) string {
	switch {
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "file of unknown type"
}

// enterDir checks a directory may be descended into: not too deep, and
// not one met before (a cycle would never end, and a directory reached
// twice doubles the work at each level).
func (c *copier) enterDir(e entry, depth int) error {
	if depth >= maxCopyDepth {
		return c.guestFail(e, fmt.Errorf("more than %d nested directories", maxCopyDepth))
	}
	if id, ok := guestfs.FileID(e.fi); ok {
		if c.dirs[id] {
			return c.guestFail(e, errors.New("directory met twice (a loop or a hard link to a directory): the filesystem is corrupt"))
		}
		c.dirs[id] = true
	}
	return nil
}

// copyDir makes (or merges into) the directory e.base in dir, copies
// its children, then gives it the guest's owner, mode and times: after
// the children, whose creation would change the times and which a
// read-only mode would forbid.
func (c *copier) copyDir(dir *hostDir, e entry, depth int) error {
	if err := c.enterDir(e, depth); err != nil {
		return err
	}
	sub, err := dir.mkdir(e.base)
	if err != nil {
		return c.hostFail(dir, e.base, err)
	}
	err = c.copyChildren(sub, e, depth+1)
	if err == nil {
		err = c.setOwnerMode(hostFile(sub.fd), e.fi, false, 0o700)
		if err != nil {
			err = c.hostFail(dir, e.base, err)
		}
	}
	sub.close()
	if err != nil {
		return err
	}
	return c.setTimes(dir, e.base, e.fi)
}

// copyChildren copies the entries of guest directory e into dir,
// listing it once and opening each child by its entry, never by a
// path walked from the root.
func (c *copier) copyChildren(dir *hostDir, e entry, depth int) error {
	f, err := c.open(e)
	if err != nil {
		return c.guestFail(e, err)
	}
	rd, ok := f.(fs.ReadDirFile)
	var ents []fs.DirEntry
	if ok {
		ents, err = rd.ReadDir(-1)
	} else {
		err = errors.New("not a directory")
	}
	f.Close()
	if err != nil {
		return c.guestFail(e, err)
	}
	for _, d := range ents {
		n := d.Name()
		if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\x00") {
			c.report(c.guestFail(e, fmt.Errorf("entry named %q: the filesystem is corrupt", n)))
			continue
		}
		child := entry{name: path.Join(e.name, n), base: n, d: d}
		if child.fi, err = d.Info(); err != nil {
			c.report(c.guestFail(child, err))
			continue
		}
		if err := c.copyEntry(dir, child, depth); err != nil {
			if c.ctx.Err() != nil {
				return err
			}
			c.report(err)
		}
	}
	return nil
}

// open opens a guest directory or regular file: by its entry when it
// has one, else (a REMOTE, already known not to be a link) by path.
func (c *copier) open(e entry) (fs.File, error) {
	if e.d == nil {
		return c.fsys.Open(e.name)
	}
	return guestfs.OpenEntry(c.fsys, e.name, e.d)
}

// copyFile copies a regular file into a new file e.base in dir.
func (c *copier) copyFile(dir *hostDir, e entry) error {
	src, err := c.open(e)
	if err != nil {
		return c.guestFail(e, err)
	}
	defer src.Close()
	perm := e.fi.Mode().Perm()
	dst, err := dir.create(e.base, perm)
	if err != nil {
		return c.hostFail(dir, e.base, err)
	}
	// hostFile has no ReadFrom: io.CopyBuffer uses the one buffer.
	_, err = io.CopyBuffer(dst, src, c.buf)
	if err != nil {
		dst.close()
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Path == e.name {
			return c.guestFail(e, err)
		}
		return c.hostFail(dir, e.base, err)
	}
	err = c.setOwnerMode(dst, e.fi, dir.fresh, perm&^c.umask)
	if err == nil {
		// Before close, on the name: the descriptor has no call for it
		// but through /proc. No write follows to change it.
		err = dir.setMtime(e.base, e.fi.ModTime())
	}
	if cerr := dst.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return c.hostFail(dir, e.base, err)
	}
	return nil
}

// copySymlink makes the link e.base in dir with the guest's target,
// byte for byte: the host never resolves it.
func (c *copier) copySymlink(dir *hostDir, e entry) error {
	var target string
	var err error
	if e.d == nil {
		target, err = c.fsys.ReadLink(e.name)
	} else {
		target, err = guestfs.ReadLinkEntry(c.fsys, e.name, e.d)
	}
	if err != nil {
		return c.guestFail(e, err)
	}
	if err := dir.symlink(target, e.base); err != nil {
		return c.hostFail(dir, e.base, err)
	}
	if uid, gid, ok := guestfs.Owner(e.fi); ok && c.asRoot && !(dir.fresh && uid == c.uid && gid == c.gid) {
		if err := dir.root.Lchown(e.base, uid, gid); err != nil {
			return c.hostFail(dir, e.base, err)
		}
	}
	return c.setTimes(dir, e.base, e.fi)
}

// setOwnerMode gives a file or directory the guest's owner (as root)
// and mode; the owner first, as chown clears set-id bits. ours says the
// file already has our owner and group, made its mode (less the umask)
// at creation: calls that would change nothing are left out.
func (c *copier) setOwnerMode(f hostFile, fi fs.FileInfo, ours bool, made fs.FileMode) error {
	if uid, gid, ok := guestfs.Owner(fi); ok && c.asRoot && !(ours && uid == c.uid && gid == c.gid) {
		if err := f.chown(uid, gid); err != nil {
			return err
		}
	}
	m := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if !c.asRoot {
		m &^= fs.ModeSetuid | fs.ModeSetgid
	}
	if m == made {
		return nil
	}
	return f.chmod(m)
}

func (c *copier) setTimes(dir *hostDir, base string, fi fs.FileInfo) error {
	if err := dir.setMtime(base, fi.ModTime()); err != nil {
		return c.hostFail(dir, base, err)
	}
	return nil
}

// guestFail is the error for a guest file that could not be read.
func (c *copier) guestFail(e entry, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	shown := "/" + e.name
	if e.name == "." {
		shown = "/"
	}
	return fail("%s: %s: %s", c.image, quoteName(shown), err)
}

// hostFail is the error for a local file that could not be written.
func (c *copier) hostFail(dir *hostDir, base string, err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		err = pe.Err
	case errors.As(err, &le):
		err = le.Err
	}
	return fail("%s: %s", quoteName(path.Join(c.local, dir.path, base)), err)
}
