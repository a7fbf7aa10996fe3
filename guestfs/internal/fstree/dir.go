package fstree

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

// direntTypes are the file types directory entries record (Linux's DT_*
// values shifted, as ext4's filetype and XFS's ftype store them).
var direntTypes = [...]fs.FileMode{
	1: 0, 2: fs.ModeDir, 3: fs.ModeDevice | fs.ModeCharDevice, 4: fs.ModeDevice,
	5: fs.ModeNamedPipe, 6: fs.ModeSocket, 7: fs.ModeSymlink,
}

// Walk calls fn for every entry of one directory ("." and ".." included)
// until fn returns false: a reader's directory scan.
type Walk[N any] func(fn func(name []byte, ino N, ftype uint8) bool) error

// Dirs finds names in directories through a Cache of whole directories:
// a lookup scans the whole directory (hash indexes are not used), so each
// is scanned once into a map and later lookups in it cost nothing.
type Dirs[N comparable] struct {
	cache *Cache[N, map[string]N]
	// MaxEntries bounds one directory, so that a hostile directory whose
	// blocks all point at one block full of entries cannot exhaust memory.
	maxEntries int
}

// NewDirs returns a lookup cache of at most maxCached names that refuses
// directories of more than maxEntries entries.
func NewDirs[N comparable](maxCached, maxEntries int) *Dirs[N] {
	return &Dirs[N]{cache: NewCache[N, map[string]N](maxCached), maxEntries: maxEntries}
}

// Lookup returns the inode number name has in directory dir, scanned
// with walk when it is not cached; fs.ErrNotExist when there is none.
// tooMany makes the error for a directory over the limit.
func (d *Dirs[N]) Lookup(dir N, name string, walk Walk[N], tooMany func(max int) error) (N, error) {
	names, ok := d.cache.Get(dir)
	if !ok {
		names = map[string]N{}
		var limitErr error
		err := walk(func(n []byte, ino N, _ uint8) bool {
			if len(names) >= d.maxEntries {
				limitErr = tooMany(d.maxEntries)
				return false
			}
			names[string(n)] = ino
			return true
		})
		if err == nil {
			err = limitErr
		}
		if err != nil {
			var zero N
			return zero, err
		}
		d.cache.Put(dir, names, len(names))
	}
	if ino, ok := names[name]; ok {
		return ino, nil
	}
	var zero N
	return zero, fs.ErrNotExist
}

// Changed keeps a cached directory in step with an edit: name now names
// ino, or nothing when removed.
func (d *Dirs[N]) Changed(dir N, name string, ino N, removed bool) {
	d.cache.Update(dir, func(names map[string]N) int {
		if removed {
			delete(names, name)
			return 0
		}
		names[name] = ino
		return 1
	})
}

// Forget drops directory dir, whose inode was freed: a new directory
// may get its number.
func (d *Dirs[N]) Forget(dir N) { d.cache.Delete(dir) }

// Clear forgets every directory (after a commit or a rollback).
func (d *Dirs[N]) Clear() { d.cache.Clear() }

// InfoSource describes inodes by number, for directory entries.
type InfoSource[N any] interface {
	EntryInfo(name string, ino N) (fs.FileInfo, error)
}

// List returns a directory's entries sorted by name, without "." and
// "..", refusing more than maxEntries.
func List[N any](src InfoSource[N], walk Walk[N], maxEntries int, tooMany func(max int) error) ([]fs.DirEntry, error) {
	var ents []fs.DirEntry
	var limitErr error
	err := walk(func(name []byte, ino N, ftype uint8) bool {
		if s := string(name); s != "." && s != ".." {
			if len(ents) >= maxEntries {
				limitErr = tooMany(maxEntries)
				return false
			}
			ents = append(ents, &dirEntry[N]{src: src, name: s, ino: ino, ftype: ftype})
		}
		return true
	})
	if err == nil {
		err = limitErr
	}
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, nil
}

// dirEntry is an fs.DirEntry read from a directory.
type dirEntry[N any] struct {
	src   InfoSource[N]
	name  string
	ino   N
	ftype uint8
}

func (d *dirEntry[N]) Name() string { return d.name }
func (d *dirEntry[N]) IsDir() bool  { return d.Type().IsDir() }

// Type comes from the entry's file type when the file system records
// one, else from the inode.
func (d *dirEntry[N]) Type() fs.FileMode {
	if int(d.ftype) < len(direntTypes) && d.ftype != 0 {
		return direntTypes[d.ftype]
	}
	fi, err := d.src.EntryInfo(d.name, d.ino)
	if err != nil {
		return fs.ModeIrregular
	}
	return fi.Mode().Type()
}

func (d *dirEntry[N]) Info() (fs.FileInfo, error) { return d.src.EntryInfo(d.name, d.ino) }

func (d *dirEntry[N]) String() string { return fs.FormatDirEntry(d) }

// Inode returns the inode number of an entry that List made with src;
// an entry of another source is refused.
func Inode[N any](src InfoSource[N], d fs.DirEntry) (N, bool) {
	e, ok := d.(*dirEntry[N])
	if !ok || e.src != src {
		var zero N
		return zero, false
	}
	return e.ino, true
}

// errNotDir is what a path through a file that is not a directory gets.
var errNotDir = fmt.Errorf("not a directory: %w", fs.ErrNotExist)
