package ext4

import (
	"fmt"
	"io/fs"
	"time"

	"github.com/qimg/qimg/guestfs/internal/fstree"
)

// Rename moves oldname to newname, across directories, replacing a file
// there (or an empty directory, when moving a directory). A directory
// cannot move below itself.
func (f *FS) Rename(oldname, newname string) (err error) {
	defer f.atomically()(&err)
	odir, obase, err := f.parent("rename", oldname)
	if err != nil {
		return err
	}
	ndir, nbase, err := f.parent("rename", newname)
	if err != nil {
		return err
	}
	ino, err := f.child(odir, obase)
	if err != nil || ino == 0 {
		return pathErr("rename", oldname, cmpErr(err, fs.ErrNotExist))
	}
	src, err := f.editInode(ino)
	if err != nil {
		return pathErr("rename", oldname, err)
	}
	if src.IsDir() {
		if err := f.notBelow(ndir.Ino, ino); err != nil {
			return pathErr("rename", newname, err)
		}
	}
	now := time.Now()
	dst, err := f.child(ndir, nbase)
	if err != nil {
		return pathErr("rename", newname, err)
	}
	if dst == ino {
		return nil
	}
	if dst != 0 {
		old, err := f.inode(dst)
		if err != nil {
			return pathErr("rename", newname, err)
		}
		if old.IsDir() != src.IsDir() {
			return pathErr("rename", newname, fmt.Errorf("cannot replace a directory with a file or a file with a directory: %w", fs.ErrExist))
		}
		if err := f.unlink(ndir, nbase, dst, now); err != nil {
			return pathErr("rename", newname, err)
		}
	}
	// The two parents may be one inode: reread after each change.
	if err := f.addEntry(ndir, nbase, ino, src.Mode, now); err != nil {
		return pathErr("rename", newname, err)
	}
	if src.IsDir() && ndir.Ino != odir.Ino {
		addDirLink(ndir)
	}
	if err := f.writeInode(ndir); err != nil {
		return pathErr("rename", newname, err)
	}
	if odir, err = f.editInode(odir.Ino); err != nil {
		return pathErr("rename", oldname, err)
	}
	if err := f.removeEntry(odir, obase, now); err != nil {
		return pathErr("rename", oldname, err)
	}
	if src.IsDir() && ndir.Ino != odir.Ino {
		dropDirLink(odir)
		if err := f.setDotDot(src, ndir.Ino); err != nil {
			return pathErr("rename", oldname, err)
		}
	}
	if err := f.writeInode(odir); err != nil {
		return pathErr("rename", oldname, err)
	}
	src.Ctime = now
	return pathErr2("rename", newname, f.writeInode(src))
}

// notBelow refuses moving directory ino into dir when dir is ino or
// lies below it, walking ".." up from dir to the root (bounded).
func (f *FS) notBelow(dir, ino uint32) error {
	for range fstree.MaxDepth {
		if dir == ino {
			return fmt.Errorf("cannot move a directory below itself: %w", fs.ErrInvalid)
		}
		if dir == rootIno {
			return nil
		}
		in, err := f.inode(dir)
		if err != nil {
			return err
		}
		up, err := f.findEntry(in, "..")
		if err != nil {
			return err
		}
		dir = up
	}
	return f.corrupt("directory %d: no way up to the root", dir)
}
