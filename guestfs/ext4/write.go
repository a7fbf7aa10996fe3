package ext4

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"time"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/unixmode"
)

// linkMax is the most links an inode counts; a directory with more
// subdirectories counts 1 (dir_nlink), as the kernel does.
const linkMax = 65000

// writable refuses a write on a file system not opened for writing.
func (f *FS) writable(op, name string) error {
	if f.tx == nil {
		return pathErr(op, name, image.FileErrorf(f.name, "ext4: opened read-only: %w", image.ErrInvalidArgument))
	}
	return nil
}

// editInode returns inode ino with its own raw bytes, to change and
// write back.
func (f *FS) editInode(ino uint32) (*Inode, error) {
	in, err := f.inode(ino)
	if err != nil {
		return nil, err
	}
	in.raw = bytes.Clone(in.raw)
	return in, nil
}

// parent resolves the directory holding name and name's last element.
func (f *FS) parent(op, name string) (*Inode, string, error) {
	if err := f.writable(op, name); err != nil {
		return nil, "", err
	}
	if !fs.ValidPath(name) || name == "." {
		return nil, "", pathErr(op, name, fs.ErrInvalid)
	}
	dir, err := f.lookup(op, path.Dir(name), true)
	if err != nil {
		return nil, "", err
	}
	if !dir.IsDir() {
		return nil, "", pathErr(op, name, fmt.Errorf("parent is not a directory: %w", fs.ErrInvalid))
	}
	base := path.Base(name)
	if err := f.checkName(base); err != nil {
		return nil, "", pathErr(op, name, err)
	}
	dir.raw = bytes.Clone(dir.raw)
	return dir, base, nil
}

// child looks base up in dir: its inode number, or 0 if absent.
func (f *FS) child(dir *Inode, base string) (uint32, error) {
	ino, err := f.findEntry(dir, base)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	return ino, err
}

// newFileInode allocates and fills an inode for a new file of mode.
func (f *FS) newFileInode(dir *Inode, mode uint16, now time.Time) (*Inode, error) {
	ino, err := f.allocInode(dir.Ino, mode&sIFMT == sIFDIR)
	if err != nil {
		return nil, err
	}
	in := f.newInode(ino, mode, 0, 0, now)
	if f.sb.has(incompatExtents) && mode&sIFMT != sIFLNK {
		in.Flags |= FlagExtents
	}
	return in, nil
}

// permBits is the inode mode bits of a permission.
func permBits(perm fs.FileMode) uint16 { return uint16(unixmode.Perm(perm)) }

// WriteFile creates name, or replaces the contents of the regular file
// there (keeping its owner, mode and attributes), with size bytes of r.
// The data goes to new blocks: the old ones are freed by the commit.
func (f *FS) WriteFile(name string, r io.Reader, size int64, perm fs.FileMode) (err error) {
	defer f.atomically()(&err)
	dir, base, err := f.parent("write", name)
	if err != nil {
		return err
	}
	if size < 0 {
		return pathErr("write", name, fs.ErrInvalid)
	}
	ino, err := f.child(dir, base)
	if err != nil {
		return pathErr("write", name, err)
	}
	now := time.Now()
	var in *Inode
	old := &layout{}
	if ino != 0 {
		if in, err = f.editInode(ino); err != nil {
			return pathErr("write", name, err)
		}
		if !in.IsRegular() || in.Flags&FlagInlineData != 0 {
			return pathErr("write", name, fmt.Errorf("not a regular file (or stored inline): %w", fs.ErrInvalid))
		}
		if old, err = f.readLayout(in); err != nil {
			return pathErr("write", name, err)
		}
	} else if in, err = f.newFileInode(dir, sIFREG|permBits(perm), now); err != nil {
		return pathErr("write", name, err)
	}
	runs, err := f.writeFileData(in, r, size)
	if err == nil {
		err = f.setLayout(in, old, runs)
	}
	if err == nil {
		err = f.freeRuns(old.runs)
	}
	if err != nil {
		return pathErr("write", name, err)
	}
	in.Size = uint64(size)
	in.Mtime, in.Ctime = now, now
	if err := f.writeInode(in); err != nil {
		return pathErr("write", name, err)
	}
	if ino == 0 {
		if err := f.addEntry(dir, base, in.Ino, in.Mode, now); err != nil {
			return pathErr("write", name, err)
		}
		return pathErr2("write", name, f.writeInode(dir))
	}
	return nil
}

// pathErr2 is pathErr for an error that may be nil.
func pathErr2(op, name string, err error) error {
	if err == nil {
		return nil
	}
	return pathErr(op, name, err)
}

// freeRuns frees the data blocks of runs.
func (f *FS) freeRuns(runs []extent) error {
	for _, r := range runs {
		if err := f.freeBlocks(r.pblk, r.n); err != nil {
			return err
		}
	}
	return nil
}

// writeFileData stages size bytes of r for new blocks (free now and at
// the last commit) and returns their runs.
func (f *FS) writeFileData(in *Inode, r io.Reader, size int64) ([]extent, error) {
	bs := uint64(f.sb.blockSize)
	n := (uint64(size) + bs - 1) / bs
	if n == 0 {
		return nil, nil
	}
	spans, err := f.allocBlocks(f.goal(in, nil), n)
	if err != nil {
		return nil, err
	}
	var runs []extent
	buf := make([]byte, min(n*bs, 1<<20))
	lblk, left := uint64(0), uint64(size)
	for _, s := range spans {
		runs = append(runs, extent{lblk: lblk, pblk: s.start, n: s.n})
		for done := uint64(0); done < s.n; {
			k := min(uint64(len(buf))/bs, s.n-done)
			chunk := buf[:k*bs]
			want := min(left, k*bs)
			if _, err := io.ReadFull(r, chunk[:want]); err != nil {
				f.freeRuns(runs)
				return nil, fmt.Errorf("reading the data to write: %w", err)
			}
			clear(chunk[want:])
			if err := f.stageData(s.start+done, chunk); err != nil {
				f.freeRuns(runs)
				return nil, err
			}
			left -= want
			done += k
		}
		lblk += s.n
	}
	return runs, nil
}

// Mkdir creates the directory name.
func (f *FS) Mkdir(name string, perm fs.FileMode) (err error) {
	defer f.atomically()(&err)
	dir, base, err := f.parent("mkdir", name)
	if err != nil {
		return err
	}
	if ino, err := f.child(dir, base); err != nil || ino != 0 {
		return pathErr("mkdir", name, cmpErr(err, fs.ErrExist))
	}
	if err := f.editableDir(dir); err != nil {
		return pathErr("mkdir", name, err)
	}
	now := time.Now()
	in, err := f.newFileInode(dir, sIFDIR|permBits(perm), now)
	if err != nil {
		return pathErr("mkdir", name, err)
	}
	in.Links = 2
	spans, err := f.allocBlocks(f.goal(in, nil), 1)
	if err != nil {
		return pathErr("mkdir", name, err)
	}
	b := f.newMetaBlock(spans[0].start)
	f.putDirent(b, in.Ino, 12, []byte("."), 2)
	f.putDirent(b[12:], dir.Ino, f.leafArea()-12, []byte(".."), 2)
	f.sealLeaf(in, b)
	in.Size = uint64(f.sb.blockSize)
	err = f.setLayout(in, &layout{}, []extent{{lblk: 0, pblk: spans[0].start, n: 1}})
	if err == nil {
		err = f.writeInode(in)
	}
	if err == nil {
		err = f.addEntry(dir, base, in.Ino, in.Mode, now)
	}
	if err == nil {
		addDirLink(dir)
		err = f.writeInode(dir)
	}
	return pathErr2("mkdir", name, err)
}

func cmpErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

func addDirLink(dir *Inode) {
	if dir.Links >= linkMax-1 || dir.Links == 1 {
		dir.Links = 1
		return
	}
	dir.Links++
}

func dropDirLink(dir *Inode) {
	if dir.Links > 2 {
		dir.Links--
	}
}

// Remove removes a file, a symbolic link or an empty directory.
func (f *FS) Remove(name string) (err error) {
	defer f.atomically()(&err)
	dir, base, err := f.parent("remove", name)
	if err != nil {
		return err
	}
	ino, err := f.child(dir, base)
	if err != nil || ino == 0 {
		return pathErr("remove", name, cmpErr(err, fs.ErrNotExist))
	}
	return pathErr2("remove", name, f.unlink(dir, base, ino, time.Now()))
}

// unlink removes the entry base (naming ino) from dir and drops the
// inode's link, releasing it when none is left.
func (f *FS) unlink(dir *Inode, base string, ino uint32, now time.Time) error {
	in, err := f.editInode(ino)
	if err != nil {
		return err
	}
	if in.IsDir() {
		empty, err := f.emptyDir(in)
		if err != nil {
			return err
		}
		if !empty {
			return fmt.Errorf("directory not empty: %w", fs.ErrExist)
		}
	}
	if err := f.removeEntry(dir, base, now); err != nil {
		return err
	}
	if in.IsDir() {
		dropDirLink(dir)
		in.Links = 0
	} else if in.Links > 0 {
		in.Links--
	}
	if err := f.writeInode(dir); err != nil {
		return err
	}
	in.Ctime = now
	if in.Links == 0 {
		return f.release(in, now)
	}
	return f.writeInode(in)
}

// emptyDir reports whether a directory holds only "." and "..".
func (f *FS) emptyDir(in *Inode) (bool, error) {
	empty := true
	err := f.walkDir(in, func(n []byte, _ uint32, _ uint8) bool {
		if s := string(n); s != "." && s != ".." {
			empty = false
			return false
		}
		return true
	})
	return empty, err
}

// release frees an inode with no links left: its blocks, its tree, its
// attribute block, and the inode.
func (f *FS) release(in *Inode, now time.Time) error {
	l, err := f.readLayout(in)
	if err != nil {
		return err
	}
	for _, b := range l.tree {
		if err := f.freeBlocks(b, 1); err != nil {
			return err
		}
	}
	if err := f.freeRuns(l.runs); err != nil {
		return err
	}
	if in.FileACL != 0 {
		if err := f.dropXattrBlock(in); err != nil {
			return err
		}
	}
	in.Links, in.Dtime, in.Blocks, in.Size = 0, uint32(now.Unix()), 0, 0
	clear(in.block[:])
	in.Flags &^= FlagExtents | FlagInlineData
	if err := f.writeInode(in); err != nil {
		return err
	}
	f.inodes.Delete(in.Ino)
	f.dirs.Forget(in.Ino) // its number may come back as a new directory
	return f.freeInode(in.Ino, in.IsDir())
}

// RemoveAll removes name and everything below it.
func (f *FS) RemoveAll(name string) error {
	fi, err := f.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		ents, err := f.ReadDir(name)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := f.RemoveAll(path.Join(name, e.Name())); err != nil {
				return err
			}
		}
	}
	return f.Remove(name)
}

// Symlink creates link pointing at target: in the inode when shorter
// than 60 bytes, else in a block.
func (f *FS) Symlink(target, link string) (err error) {
	defer f.atomically()(&err)
	dir, base, err := f.parent("symlink", link)
	if err != nil {
		return err
	}
	if len(target) == 0 || len(target) >= int(f.sb.blockSize) || len(target) >= 4096 {
		return pathErr("symlink", link, fmt.Errorf("target of %d bytes: %w", len(target), fs.ErrInvalid))
	}
	if ino, err := f.child(dir, base); err != nil || ino != 0 {
		return pathErr("symlink", link, cmpErr(err, fs.ErrExist))
	}
	now := time.Now()
	in, err := f.newFileInode(dir, sIFLNK|0o777, now)
	if err != nil {
		return pathErr("symlink", link, err)
	}
	in.Size = uint64(len(target))
	if len(target) < len(in.block) {
		copy(in.block[:], target)
	} else {
		if f.sb.has(incompatExtents) {
			in.Flags |= FlagExtents
		}
		runs, err := f.writeFileData(in, bytes.NewReader([]byte(target)), int64(len(target)))
		if err == nil {
			err = f.setLayout(in, &layout{}, runs)
		}
		if err != nil {
			return pathErr("symlink", link, err)
		}
	}
	err = f.writeInode(in)
	if err == nil {
		err = f.addEntry(dir, base, in.Ino, in.Mode, now)
	}
	if err == nil {
		err = f.writeInode(dir)
	}
	return pathErr2("symlink", link, err)
}

// Link makes newname another name of the file oldname (not a directory).
func (f *FS) Link(oldname, newname string) (err error) {
	defer f.atomically()(&err)
	if err := f.writable("link", newname); err != nil {
		return err
	}
	src, err := f.lookup("link", oldname, false)
	if err != nil {
		return err
	}
	if src.IsDir() {
		return pathErr("link", oldname, fmt.Errorf("hard link to a directory: %w", fs.ErrInvalid))
	}
	if src.Links >= linkMax {
		return pathErr("link", oldname, fmt.Errorf("too many links: %w", image.ErrLimit))
	}
	dir, base, err := f.parent("link", newname)
	if err != nil {
		return err
	}
	if ino, err := f.child(dir, base); err != nil || ino != 0 {
		return pathErr("link", newname, cmpErr(err, fs.ErrExist))
	}
	now := time.Now()
	if err := f.addEntry(dir, base, src.Ino, src.Mode, now); err != nil {
		return pathErr("link", newname, err)
	}
	if err := f.writeInode(dir); err != nil {
		return pathErr("link", newname, err)
	}
	in, err := f.editInode(src.Ino)
	if err != nil {
		return pathErr("link", newname, err)
	}
	in.Links++
	in.Ctime = now
	return pathErr2("link", newname, f.writeInode(in))
}

// setattr changes one inode (not following a final symbolic link).
func (f *FS) setattr(op, name string, change func(*Inode)) (err error) {
	defer f.atomically()(&err)
	if err := f.writable(op, name); err != nil {
		return err
	}
	in, err := f.lookup(op, name, false)
	if err != nil {
		return err
	}
	in.raw = bytes.Clone(in.raw)
	change(in)
	in.Ctime = time.Now()
	return pathErr2(op, name, f.writeInode(in))
}

// Chmod sets the permission bits, setuid, setgid and sticky.
func (f *FS) Chmod(name string, mode fs.FileMode) error {
	return f.setattr("chmod", name, func(in *Inode) { in.Mode = in.Mode&sIFMT | permBits(mode) })
}

// Chown sets the owner and group.
func (f *FS) Chown(name string, uid, gid int) error {
	if uid < 0 || gid < 0 || uid > 1<<32-1 || gid > 1<<32-1 {
		return pathErr("chown", name, fs.ErrInvalid)
	}
	return f.setattr("chown", name, func(in *Inode) { in.UID, in.GID = uint32(uid), uint32(gid) })
}

// Chtimes sets the access and modification times.
func (f *FS) Chtimes(name string, atime, mtime time.Time) error {
	return f.setattr("chtimes", name, func(in *Inode) { in.Atime, in.Mtime = atime, mtime })
}
