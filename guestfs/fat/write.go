package fat

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
	"slices"
	"syscall"
	"time"

	"github.com/qimg/qimg/image"
)

// Every write method stages its change in memory and either makes all
// of it or none (an error leaves the staged state as it was). Nothing
// reaches the device before Commit.

// writable fails unless the volume was opened for writing.
func (f *FS) writable(op, name string) error {
	switch {
	case f.w == nil:
		return &fs.PathError{Op: op, Path: name, Err: image.FileErrorf(f.name, "opened read-only: %w", image.ErrReadOnly)}
	case f.broken != nil:
		return &fs.PathError{Op: op, Path: name, Err: f.broken}
	}
	return nil
}

// parentOf resolves the directory that holds name, and name's last
// element.
func (f *FS) parentOf(op, name string) (*dir, *node, string, error) {
	if !fs.ValidPath(name) || name == "." {
		return nil, nil, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	pn, err := f.lookup(op, path.Dir(name))
	if err != nil {
		return nil, nil, "", err
	}
	if !pn.isDir() {
		return nil, nil, "", &fs.PathError{Op: op, Path: name, Err: errNotDir}
	}
	d, err := f.dirOf(op, name, pn)
	if err != nil {
		return nil, nil, "", err
	}
	return d, pn, path.Base(name), nil
}

// newRaw makes a short entry (without its name) stamped now.
func (f *FS) newRaw(attr byte, first, size uint32) entry {
	var e entry
	e.raw[11] = attr
	e.setFirst(first)
	e.setSize(size)
	now := f.now()
	e.setCreateTime(now)
	e.setModTime(now)
	e.setAccessTime(now)
	return e
}

// addEntry adds an entry named name to d, with a long name when the
// name is not a plain 8.3 name, growing d if it has no room.
func (f *FS) addEntry(d *dir, name string, e entry) error {
	if err := validName(name); err != nil {
		return fmt.Errorf("%w: %w", err, image.ErrInvalidArgument)
	}
	var slots [][slotSize]byte
	if short, nt, ok := exact83(name); ok {
		copy(e.raw[:11], short[:])
		e.raw[12] = nt
	} else {
		short, ok := uniqueShort(name, d.shortNames())
		if !ok {
			return fmt.Errorf("no free short name for %q: %w", name, image.ErrLimit)
		}
		copy(e.raw[:11], short[:])
		e.raw[12] = 0
		slots = lfnSlots(name, checksum(short[:]))
	}
	slots = append(slots, e.raw)
	sectorSlots := int(f.g.sectorSize / slotSize)
	at := d.placeFor(len(slots), sectorSlots)
	if at < 0 {
		if err := f.grow(d, len(slots)); err != nil {
			return err
		}
		at = d.placeFor(len(slots), sectorSlots)
	}
	d.putEntry(at, slots)
	return nil
}

// grow adds zeroed clusters to d for n more slots.
func (f *FS) grow(d *dir, n int) error {
	if d.key == 0 {
		return fmt.Errorf("the root directory has no free slots (%d entries): %w", f.g.rootEntries, syscall.ENOSPC)
	}
	k := (int64(n)*slotSize + f.g.clusterSize - 1) / f.g.clusterSize
	if int64(len(d.cur))+k*f.g.clusterSize > maxDirBytes {
		return fmt.Errorf("a directory holds at most %d slots: %w", maxDirBytes/slotSize, image.ErrLimit)
	}
	cs, err := f.fat.alloc(int(k))
	if err != nil {
		return err
	}
	f.fat.link(d.chain[len(d.chain)-1], cs[0])
	d.edit()
	zeros := make([]byte, k*f.g.clusterSize)
	d.chain = append(d.chain, cs...)
	d.old = append(d.old, zeros...)
	d.cur = append(d.cur, zeros...)
	return nil
}

// chainOf lists every cluster of an entry's chain as staged.
func (f *FS) chainOf(e *entry) ([]uint32, error) {
	c := e.first(f.g.bits)
	if c == 0 {
		return nil, nil
	}
	return f.fat.chain(c, 0)
}

// release frees clusters and forgets what was staged in them.
func (f *FS) release(cs []uint32) {
	for _, c := range cs {
		f.fat.release(c) // every FAT sector is cached on a writable volume
		delete(f.data, c)
		delete(f.dirs, c)
	}
}

// stage allocates clusters for size bytes read from r and keeps the
// bytes in memory until Commit. It returns the chain's first cluster.
func (f *FS) stage(r io.Reader, size int64) (uint32, error) {
	cs := f.g.clusterSize
	n := (size + cs - 1) / cs
	if n > int64(f.fat.available()) {
		return 0, f.fat.noSpace(uint32(n))
	}
	chain, err := f.fat.alloc(int(n))
	if err != nil {
		return 0, err
	}
	for i, c := range chain {
		buf := make([]byte, cs)
		m := min(cs, size-int64(i)*cs)
		if _, err := io.ReadFull(r, buf[:m]); err != nil {
			f.release(chain)
			return 0, fmt.Errorf("reading the new content: %w", err)
		}
		f.data[c] = buf
	}
	if n == 0 {
		return 0, nil
	}
	return chain[0], nil
}

// setSlot writes an entry's short slot in place.
func (d *dir) setSlot(e *entry) {
	d.edit()
	copy(d.slotOf(e.slot), e.raw[:])
}

func pathErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*fs.PathError); ok {
		return err
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// WriteFile creates name, or replaces the content of the file there,
// with size bytes read from r. New content always goes to clusters free
// on the device. A new file is read-only when perm has no owner write
// bit.
func (f *FS) WriteFile(name string, r io.Reader, size int64, perm fs.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.writable("writefile", name); err != nil {
		return err
	}
	if size < 0 || size > math.MaxUint32 {
		return &fs.PathError{Op: "writefile", Path: name, Err: fmt.Errorf("size %d: FAT files hold at most 4 GiB - 1: %w", size, image.ErrInvalidArgument)}
	}
	d, _, base, err := f.parentOf("writefile", name)
	if err != nil {
		return err
	}
	old, err := f.find(d, base)
	if err != nil {
		return pathErr("writefile", name, err)
	}
	if old != nil {
		return pathErr("writefile", name, f.replace(d, *old, r, size))
	}
	first, err := f.stage(r, size)
	if err != nil {
		return pathErr("writefile", name, err)
	}
	attr := byte(attrArch)
	if perm&0o200 == 0 {
		attr |= attrRO
	}
	if err := f.addEntry(d, base, f.newRaw(attr, first, uint32(size))); err != nil {
		f.release(f.stagedChain(first))
		return pathErr("writefile", name, err)
	}
	return nil
}

// stagedChain lists a chain just staged (it cannot be corrupt).
func (f *FS) stagedChain(first uint32) []uint32 {
	if first == 0 {
		return nil
	}
	cs, _ := f.fat.chain(first, 0)
	return cs
}

// replace gives the file e in d new content, in new clusters.
func (f *FS) replace(d *dir, e entry, r io.Reader, size int64) error {
	if e.isDir() {
		return syscall.EISDIR
	}
	old, err := f.chainOf(&e)
	if err != nil {
		return err
	}
	first, err := f.stage(r, size)
	if err != nil {
		return err
	}
	now := f.now()
	e.setFirst(first)
	e.setSize(uint32(size))
	e.setModTime(now)
	e.setAccessTime(now)
	e.raw[11] |= attrArch
	d.setSlot(&e)
	f.release(old)
	return nil
}

// Mkdir creates the directory name; its parent must exist. FAT keeps
// no permissions, so perm is ignored.
func (f *FS) Mkdir(name string, perm fs.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.writable("mkdir", name); err != nil {
		return err
	}
	d, _, base, err := f.parentOf("mkdir", name)
	if err != nil {
		return err
	}
	if e, err := f.find(d, base); err != nil || e != nil {
		if err == nil {
			err = fs.ErrExist
		}
		return pathErr("mkdir", name, err)
	}
	cs, err := f.fat.alloc(1)
	if err != nil {
		return pathErr("mkdir", name, err)
	}
	nd := &dir{key: cs[0], chain: cs, isNew: true,
		old: make([]byte, f.g.clusterSize), cur: make([]byte, f.g.clusterSize)}
	dot := f.newRaw(attrDir, cs[0], 0)
	copy(dot.raw[:11], ".          ")
	dotdot := dot
	copy(dotdot.raw[:11], "..         ")
	dotdot.setFirst(f.dotdot(d))
	copy(nd.slotOf(0), dot.raw[:])
	copy(nd.slotOf(1), dotdot.raw[:])
	f.dirs[nd.key] = nd
	if err := f.addEntry(d, base, f.newRaw(attrDir, cs[0], 0)); err != nil {
		f.release(cs)
		return pathErr("mkdir", name, err)
	}
	return nil
}

// dotdot is what a ".." entry in a child of d holds: 0 for the root.
func (f *FS) dotdot(d *dir) uint32 {
	if d.root {
		return 0
	}
	return d.key
}

// Remove removes a file or an empty directory.
func (f *FS) Remove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.writable("remove", name); err != nil {
		return err
	}
	n, err := f.lookup("remove", name)
	if err != nil {
		return err
	}
	return pathErr("remove", name, f.remove(n, false))
}

// remove removes the entry of n, and with all its tree when recursive.
func (f *FS) remove(n *node, recursive bool) error {
	if n.parent == nil {
		return fmt.Errorf("the root cannot be removed: %w", image.ErrInvalidArgument)
	}
	if n.e.isDir() {
		d, err := f.dirOf("remove", n.e.name, n)
		if err != nil {
			return err
		}
		es, err := f.list(d)
		if err != nil {
			return err
		}
		if len(es) > 0 && !recursive {
			return syscall.ENOTEMPTY
		}
		for _, c := range slices.Clone(es) {
			child := &node{parent: d, e: c, path: append(slices.Clip(n.path), d.key)}
			if err := f.remove(child, true); err != nil {
				return err
			}
		}
	}
	chain, err := f.chainOf(&n.e)
	if err != nil {
		return err
	}
	n.parent.freeEntry(&n.e)
	f.release(chain)
	return nil
}

// RemoveAll removes name and everything below it; a missing name is
// not an error. Part of a tree that cannot be read leaves the staged
// state partly removed, which Commit writes consistently.
func (f *FS) RemoveAll(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.writable("removeall", name); err != nil {
		return err
	}
	n, err := f.lookup("removeall", name)
	if err != nil {
		if pe, ok := err.(*fs.PathError); ok && pe.Err == fs.ErrNotExist {
			return nil
		}
		return err
	}
	return pathErr("removeall", name, f.remove(n, true))
}

// Rename moves oldname to newname, across directories, replacing a
// file (or an empty directory, for a directory) there. Commit writes a
// move so that the entry is never in two directories at once (doc.go).
func (f *FS) Rename(oldname, newname string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.writable("rename", oldname); err != nil {
		return err
	}
	on, err := f.lookup("rename", oldname)
	if err != nil {
		return err
	}
	if on.parent == nil {
		return &fs.PathError{Op: "rename", Path: oldname, Err: fs.ErrInvalid}
	}
	nd, pn, base, err := f.parentOf("rename", newname)
	if err != nil {
		return err
	}
	if on.e.isDir() && slices.Contains(append(slices.Clip(pn.path), f.key(pn)), f.key(on)) {
		return &fs.PathError{Op: "rename", Path: newname, Err: fmt.Errorf("a directory cannot move into itself: %w", image.ErrInvalidArgument)}
	}
	target, err := f.find(nd, base)
	if err != nil {
		return pathErr("rename", newname, err)
	}
	same := target != nil && nd == on.parent && target.slot == on.e.slot
	if same && target.name == base {
		return nil
	}
	var targetChain []uint32
	if target != nil && !same {
		if targetChain, err = f.checkReplace(on, target, nd); err != nil {
			return pathErr("rename", newname, err)
		}
	}
	tgt := target
	if tgt != nil {
		c := *tgt
		tgt = &c
	}
	if err := f.addEntry(nd, base, on.e); err != nil {
		return pathErr("rename", newname, err)
	}
	on.parent.freeEntry(&on.e)
	if tgt != nil && !same {
		nd.freeEntry(tgt)
		f.release(targetChain)
	}
	if on.e.isDir() && nd != on.parent {
		return pathErr("rename", newname, f.reparent(on, nd))
	}
	return nil
}

// checkReplace checks that target may be replaced by the entry of on,
// and returns target's chain.
func (f *FS) checkReplace(on *node, target *entry, nd *dir) ([]uint32, error) {
	switch {
	case on.e.isDir() && !target.isDir():
		return nil, errNotDir
	case !on.e.isDir() && target.isDir():
		return nil, syscall.EISDIR
	case target.isDir():
		td, err := f.loadDir(target.first(f.g.bits))
		if err != nil {
			return nil, err
		}
		es, err := f.list(td)
		if err != nil {
			return nil, err
		}
		if len(es) > 0 {
			return nil, syscall.ENOTEMPTY
		}
	}
	return f.chainOf(target)
}

// reparent points the ".." entry of a moved directory at its new
// parent.
func (f *FS) reparent(on *node, nd *dir) error {
	md, err := f.loadDir(f.key(on))
	if err != nil {
		return err
	}
	if md.slots() < 2 || string(md.slotOf(1)[:11]) != "..         " {
		return nil // no ".." to fix (fsck.fat would have said so before)
	}
	dd := entry{slot: 1}
	copy(dd.raw[:], md.slotOf(1))
	dd.setFirst(f.dotdot(nd))
	md.setSlot(&dd)
	return nil
}

// Truncate sets a file's size, keeping its first bytes and adding
// zeros; the content moves to new clusters like any rewrite.
func (f *FS) Truncate(name string, size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.writable("truncate", name); err != nil {
		return err
	}
	if size < 0 || size > math.MaxUint32 {
		return &fs.PathError{Op: "truncate", Path: name, Err: fmt.Errorf("size %d: %w", size, image.ErrInvalidArgument)}
	}
	n, err := f.lookup("truncate", name)
	if err != nil {
		return err
	}
	if n.isDir() {
		return &fs.PathError{Op: "truncate", Path: name, Err: syscall.EISDIR}
	}
	if int64(n.e.size()) == size {
		return nil
	}
	chain, err := f.fileChain(&n.e)
	if err != nil {
		return pathErr("truncate", name, err)
	}
	buf := make([]byte, size)
	keep := min(size, int64(n.e.size()))
	_, err = (&chainReader{f: f, chain: chain}).readAt(buf[:keep], 0)
	if err != nil && err != io.EOF {
		return pathErr("truncate", name, err)
	}
	return pathErr("truncate", name, f.replace(n.parent, n.e, bytes.NewReader(buf), size))
}

// Chtimes sets a file's modification time and access date (FAT keeps
// no access time of day). The root has no times: it is left alone.
func (f *FS) Chtimes(name string, atime, mtime time.Time) error {
	return f.editEntry("chtimes", name, func(e *entry) {
		e.setModTime(mtime)
		e.setAccessTime(atime)
	})
}

// Chmod sets or clears the read-only attribute from the owner write
// bit; FAT keeps no other permissions.
func (f *FS) Chmod(name string, mode fs.FileMode) error {
	return f.editEntry("chmod", name, func(e *entry) {
		e.raw[11] &^= attrRO
		if mode&0o200 == 0 {
			e.raw[11] |= attrRO
		}
	})
}

func (f *FS) editEntry(op, name string, edit func(*entry)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.writable(op, name); err != nil {
		return err
	}
	n, err := f.lookup(op, name)
	if err != nil || n.parent == nil {
		return err
	}
	e := n.e
	edit(&e)
	if e.raw != n.e.raw {
		n.parent.setSlot(&e)
	}
	return nil
}

func unsupported(op, name, what string) error {
	return &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("FAT has no %s: %w", what, image.ErrUnsupported)}
}

// Symlink fails: FAT has no symbolic links.
func (f *FS) Symlink(target, link string) error {
	return unsupported("symlink", link, "symbolic links")
}

// Link fails: FAT has no hard links.
func (f *FS) Link(oldname, newname string) error {
	return unsupported("link", newname, "hard links")
}

// Chown fails: FAT has no owners.
func (f *FS) Chown(name string, uid, gid int) error {
	return unsupported("chown", name, "owners")
}
