package ext4

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The operations of the model test, each on the image and on the host.

func (m *model) create() { m.writeFile(m.newPath(), m.size()) }

func (m *model) overwrite() { m.writeFile(m.target(anyType), m.size()) }

// bulk fills a directory with many files, so that it spans blocks (and
// e2fsck -D at a commit indexes it).
func (m *model) bulk() {
	d := join(m.dir(), "bulk-"+string(rune('a'+m.rng.IntN(3))))
	m.apply("mkdir "+d, true, func() error { return m.f.Mkdir(d, 0o755) }, func() error { return m.hostMkdir(d, 0o755) })
	for i := range 20 + m.rng.IntN(120) {
		if m.writeFile(join(d, fmt.Sprintf("entry-%d-%s", i, strings.Repeat("x", m.rng.IntN(60)))), m.rng.Int64N(100)) {
			return
		}
	}
}

// fill writes a file of about the free space, just fitting or not.
func (m *model) fill() {
	free := int64(m.f.Info().FreeBlocks) * m.bs
	m.writeFile(join(m.dir(), "fill"), max(0, free-m.rng.Int64N(256<<10)+m.rng.Int64N(64<<10)))
}

// writeFile writes a file of random bytes; it reports whether the
// image was full.
func (m *model) writeFile(p string, size int64) bool {
	data := m.data(size)
	perm := m.perm()
	return m.apply(fmt.Sprintf("write %s (%d bytes, %v)", p, size, perm), true,
		func() error { return m.f.WriteFile(p, bytes.NewReader(data), size, perm) },
		func() error { return m.hostWrite(p, data, perm) })
}

// hostWrite is WriteFile's contract on the host: a regular file is
// rewritten (keeping owner, mode and attributes), anything else there
// is refused, a new file is root's with perm.
func (m *model) hostWrite(p string, data []byte, perm fs.FileMode) error {
	hp := m.host(p)
	fi, err := os.Lstat(hp)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return fs.ErrInvalid
	case err == nil:
		return os.WriteFile(hp, data, 0)
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	fd, err := os.OpenFile(hp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = fd.Write(data)
	if cerr := fd.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = m.hostOwn(hp, perm)
	}
	return err
}

// hostOwn makes a new host file root's with mode perm, as the writer
// makes new files (a setgid directory would pass its group on, and
// the umask would clear bits).
func (m *model) hostOwn(hp string, perm fs.FileMode) error {
	if err := os.Lchown(hp, 0, 0); err != nil {
		return err
	}
	return os.Chmod(hp, perm)
}

func (m *model) hostMkdir(p string, perm fs.FileMode) error {
	hp := m.host(p)
	if err := os.Mkdir(hp, 0o700); err != nil {
		return err
	}
	return m.hostOwn(hp, perm)
}

func (m *model) mkdir() {
	p := m.newPath()
	perm := m.perm()
	m.apply(fmt.Sprintf("mkdir %s %v", p, perm), true,
		func() error { return m.f.Mkdir(p, perm) },
		func() error { return m.hostMkdir(p, perm) })
}

func (m *model) remove() {
	p := m.target(anyType)
	m.apply("remove "+p, false, func() error { return m.f.Remove(p) }, func() error { return os.Remove(m.host(p)) })
}

func (m *model) removeAll() {
	p := m.target(isDir)
	m.apply("removeall "+p, false, func() error { return m.f.RemoveAll(p) }, func() error {
		// A path below a file cannot exist: the writer counts it
		// missing, where os.RemoveAll reports ENOTDIR.
		if err := os.RemoveAll(m.host(p)); !errors.Is(err, syscall.ENOTDIR) {
			return err
		}
		return nil
	})
}

// rename moves a file or directory: over an existing one, into a new
// name, and now and then below itself (which both must refuse).
func (m *model) rename() {
	from := m.target(anyType)
	var to string
	switch r := m.rng.IntN(10); {
	case r < 3:
		to = m.target(anyType)
	case r < 4:
		to = join(from, m.name())
	default:
		to = m.newPath()
	}
	if m.escapes(to, false) {
		return
	}
	// rename(2), not os.Rename, which refuses to replace a directory.
	m.apply(fmt.Sprintf("rename %s %s", from, to), true,
		func() error { return m.f.Rename(from, to) },
		func() error { return syscall.Rename(m.host(from), m.host(to)) })
}

func (m *model) symlink() {
	p := m.newPath()
	target := m.linkTarget(p)
	m.apply(fmt.Sprintf("symlink %s -> %s", p, target), true,
		func() error { return m.f.Symlink(target, p) },
		func() error {
			hp := m.host(p)
			if err := os.Symlink(target, hp); err != nil {
				return err
			}
			return os.Lchown(hp, 0, 0)
		})
}

func (m *model) link() {
	from, to := m.target(notDirOrAny(m)), m.newPath()
	m.apply(fmt.Sprintf("link %s %s", from, to), true,
		func() error { return m.f.Link(from, to) },
		func() error {
			// The writer refuses a directory before it looks at the
			// new name; link(2) looks at the new name first.
			if fi, err := os.Lstat(m.host(from)); err == nil && fi.IsDir() {
				return syscall.EPERM
			}
			return os.Link(m.host(from), m.host(to))
		})
}

// truncate shrinks or grows a file (following a final link, as both
// do); links that lead out of the host tree are left alone.
func (m *model) truncate() {
	p := m.target(func(t fs.FileMode) bool { return !t.IsDir() })
	if m.escapes(p, true) {
		return
	}
	var size int64
	switch m.rng.IntN(4) {
	case 0:
		size = m.size()
	case 1:
		size = m.rng.Int64N(4 << 20)
	default:
		if fi, err := os.Stat(m.host(p)); err == nil {
			size = fi.Size()
			if m.rng.IntN(4) != 0 { // else the same size
				size = max(0, size+m.rng.Int64N(2*m.bs+1)-m.bs)
			}
		}
	}
	m.apply(fmt.Sprintf("truncate %s %d", p, size), true,
		func() error { return m.f.Truncate(p, size) },
		func() error { return os.Truncate(m.host(p), size) })
}

// chmod changes a file or directory: the writer changes the inode a
// path names without following a link (where the kernel follows it),
// so links are left out.
func (m *model) chmod() {
	p := m.target(notLink)
	perm := m.perm()
	m.apply(fmt.Sprintf("chmod %s %v", p, perm), false,
		func() error { return m.f.Chmod(p, perm) },
		func() error { return os.Chmod(m.host(p), perm) })
}

// chown changes owner and group, not following a link. The kernel
// clears setuid and setgid of a file whose owner changes; the writer
// sets the owner alone, so the host's mode is put back.
func (m *model) chown() {
	p := m.target(anyType)
	uid, gid := m.rng.IntN(3)*1000, m.rng.IntN(70000)
	m.apply(fmt.Sprintf("chown %s %d:%d", p, uid, gid), false,
		func() error { return m.f.Chown(p, uid, gid) },
		func() error {
			hp := m.host(p)
			fi, err := os.Lstat(hp)
			if err != nil {
				return err
			}
			if err := os.Lchown(hp, uid, gid); err != nil || fi.Mode()&fs.ModeSymlink != 0 {
				return err
			}
			return os.Chmod(hp, fi.Mode())
		})
}

// chtimes sets access and modification times, not following a link,
// between 1990 and 2037 (debugfs shows 32-bit seconds).
func (m *model) chtimes() {
	p := m.target(anyType)
	when := func() time.Time {
		return time.Unix(631152000+m.rng.Int64N(1500000000), m.rng.Int64N(1e9))
	}
	atime, mtime := when(), when()
	m.apply(fmt.Sprintf("chtimes %s %v", p, mtime), false,
		func() error { return m.f.Chtimes(p, atime, mtime) },
		func() error {
			ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
			return unix.UtimesNanoAt(unix.AT_FDCWD, m.host(p), ts, unix.AT_SYMLINK_NOFOLLOW)
		})
}

func (m *model) setXattr() {
	attr := m.xattrName()
	p := m.xattrTarget(attr)
	n := m.rng.Int64N(80)
	if m.rng.IntN(4) == 0 {
		n = m.rng.Int64N(m.bs / 2)
	}
	value := m.data(n)
	m.apply(fmt.Sprintf("setxattr %s %s (%d bytes)", p, attr, n), true,
		func() error { return m.f.SetXattr(p, attr, value) },
		func() error { return unix.Lsetxattr(m.host(p), attr, value, 0) })
}

func (m *model) removeXattr() {
	attr := m.xattrName()
	p := m.xattrTarget(attr)
	if names := hostXattrNames(m.host(p)); len(names) > 0 && m.rng.IntN(4) != 0 {
		attr = names[m.rng.IntN(len(names))]
	}
	m.apply(fmt.Sprintf("removexattr %s %s", p, attr), true,
		func() error { return m.f.RemoveXattr(p, attr) },
		func() error { return unix.Lremovexattr(m.host(p), attr) })
}
