package fstree

import (
	"bytes"
	"fmt"
	"io/fs"
	"time"

	"github.com/qimg/qimg/image"
)

// memNode is an inode of memTree.
type memNode struct {
	ino    int
	mode   fs.FileMode
	target string         // a symlink's
	names  map[string]int // a directory's
	data   []byte         // a file's
}

func (n *memNode) IsDir() bool     { return n.mode.IsDir() }
func (n *memNode) IsSymlink() bool { return n.mode&fs.ModeSymlink != 0 }

// memTree is a tree of inodes in memory, numbered from 1 (the root).
type memTree struct{ nodes map[int]*memNode }

func newMemTree() *memTree {
	return &memTree{nodes: map[int]*memNode{1: {ino: 1, mode: fs.ModeDir | 0o755, names: map[string]int{}}}}
}

// add makes name (no slashes) in directory dir and returns its number.
func (t *memTree) add(dir int, name string, n *memNode) int {
	n.ino = len(t.nodes) + 1
	if n.IsDir() {
		n.names = map[string]int{}
	}
	t.nodes[n.ino] = n
	t.nodes[dir].names[name] = n.ino
	return n.ino
}

func (t *memTree) walk(dir int) Walk[int] {
	return func(fn func(name []byte, ino int, ftype uint8) bool) error {
		d := t.nodes[dir]
		if !fn([]byte("."), dir, 2) || !fn([]byte(".."), dir, 2) {
			return nil
		}
		for name, ino := range d.names {
			if !fn([]byte(name), ino, 0) {
				return nil
			}
		}
		return nil
	}
}

func (t *memTree) Root() (*memNode, error) { return t.nodes[1], nil }

func (t *memTree) Child(dir *memNode, name string) (*memNode, error) {
	ino, ok := dir.names[name]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return t.nodes[ino], nil
}

func (t *memTree) Target(link *memNode) (string, error) { return link.target, nil }

func (t *memTree) Errorf(kind error, format string, args ...any) error {
	return image.FileErrorf("mem", "memfs: "+format+": %w", append(args, kind)...)
}

func (t *memTree) EntryInfo(name string, ino int) (fs.FileInfo, error) {
	n, ok := t.nodes[ino]
	if !ok {
		return nil, fmt.Errorf("inode %d: %w", ino, fs.ErrNotExist)
	}
	return memInfo{name, n}, nil
}

type memInfo struct {
	name string
	n    *memNode
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return int64(len(i.n.data)) }
func (i memInfo) Mode() fs.FileMode  { return i.n.mode }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return i.n.IsDir() }
func (i memInfo) Sys() any           { return i.n }

// memData is an open memNode, counting the reads that reach it.
type memData struct {
	t     *memTree
	n     *memNode
	reads int
}

func (d *memData) Info(name string) fs.FileInfo { return memInfo{name, d.n} }
func (d *memData) IsDir() bool                  { return d.n.IsDir() }
func (d *memData) Size() int64                  { return int64(len(d.n.data)) }
func (d *memData) ReadDir() ([]fs.DirEntry, error) {
	return List[int](d.t, d.t.walk(d.n.ino), 1000, func(max int) error { return fmt.Errorf("over %d", max) })
}

func (d *memData) ReadAt(p []byte, off int64) error {
	d.reads++
	if off < 0 || off+int64(len(p)) > int64(len(d.n.data)) {
		return fmt.Errorf("read %d at %d outside %d bytes", len(p), off, len(d.n.data))
	}
	copy(p, d.n.data[off:])
	return nil
}

// pattern is n bytes no two 64 KiB windows share.
func pattern(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%08d,", i)
	}
	return b.Bytes()[:n]
}
