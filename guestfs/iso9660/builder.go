package iso9660

import (
	"bytes"
	"io"
	"io/fs"
	"strings"

	"github.com/qimg/qimg/image"
)

// MaxFileSize is the largest file Write accepts: one extent's 32-bit size.
// Larger files would need multi-extent records, which the writer does not
// make (seed ISOs and config drives hold a few KiB).
const MaxFileSize = 1<<32 - 1

// maxNameLen is the longest name component, as on Linux; Rock Ridge
// carries it whole (split over NM entries and continuation areas).
const maxNameLen = 255

// node is one file, directory or symbolic link of the tree being built.
type node struct {
	name     string // the real name, one component ("" for the root)
	mode     fs.FileMode
	data     io.ReaderAt // file content, size bytes
	size     int64
	target   string // symbolic link target
	parent   *node
	children map[string]*node
	ino      uint32 // serial number for PX, set by Write

	extent uint32 // file data location, set by Write
}

func (n *node) isDir() bool     { return n.mode.IsDir() }
func (n *node) isSymlink() bool { return n.mode&fs.ModeSymlink != 0 }

// Builder collects a tree in memory for Write. Paths are slash-separated
// and relative to the root ("openstack/latest/meta_data.json"; a leading
// "/" is ignored); missing parent directories are made with mode 0755.
// The zero value is not ready: use NewBuilder.
type Builder struct {
	root *node
}

// NewBuilder returns a Builder holding an empty root directory.
func NewBuilder() *Builder {
	return &Builder{root: &node{mode: fs.ModeDir | 0o755, children: map[string]*node{}}}
}

// clean checks a path and splits it into its components.
func clean(p string) ([]string, error) {
	p = strings.TrimPrefix(p, "/")
	if p == "" || !fs.ValidPath(p) {
		return nil, image.Errorf(image.ErrInvalidArgument, "iso9660: invalid path %q", p)
	}
	parts := strings.Split(p, "/")
	for _, c := range parts {
		if len(c) > maxNameLen {
			return nil, image.Errorf(image.ErrInvalidArgument, "iso9660: name longer than %d bytes in %q", maxNameLen, p)
		}
	}
	return parts, nil
}

// parentOf returns the directory that will hold p's last component,
// making missing directories on the way.
func (b *Builder) parentOf(p string) (*node, string, error) {
	parts, err := clean(p)
	if err != nil {
		return nil, "", err
	}
	dir := b.root
	for _, c := range parts[:len(parts)-1] {
		next, ok := dir.children[c]
		if !ok {
			next = &node{name: c, mode: fs.ModeDir | 0o755, parent: dir, children: map[string]*node{}}
			dir.children[c] = next
		} else if !next.isDir() {
			return nil, "", image.Errorf(image.ErrInvalidArgument, "iso9660: %q: %s is not a directory", p, c)
		}
		dir = next
	}
	return dir, parts[len(parts)-1], nil
}

// add puts n at p; an existing entry of the same name is an error, except
// that AddDir on an existing directory only sets its mode.
func (b *Builder) add(p string, n *node) error {
	dir, name, err := b.parentOf(p)
	if err != nil {
		return err
	}
	if old, ok := dir.children[name]; ok {
		if old.isDir() && n.isDir() {
			old.mode = n.mode
			return nil
		}
		return image.Errorf(image.ErrInvalidArgument, "iso9660: %q added twice", p)
	}
	n.name, n.parent = name, dir
	dir.children[name] = n
	return nil
}

// AddDir adds a directory with the permission bits of mode.
func (b *Builder) AddDir(p string, mode fs.FileMode) error {
	return b.add(p, &node{mode: fs.ModeDir | mode.Perm(), children: map[string]*node{}})
}

// AddFile adds a regular file holding data (not copied: do not change it
// before Write) with the permission bits of mode.
func (b *Builder) AddFile(p string, data []byte, mode fs.FileMode) error {
	return b.AddFileReader(p, bytes.NewReader(data), int64(len(data)), mode)
}

// AddFileReader adds a regular file of size bytes read from r at Write,
// for content too large to hold in memory.
func (b *Builder) AddFileReader(p string, r io.ReaderAt, size int64, mode fs.FileMode) error {
	if size < 0 || size > MaxFileSize {
		return image.Errorf(image.ErrInvalidArgument, "iso9660: %q: size %d outside 0..%d", p, size, int64(MaxFileSize))
	}
	return b.add(p, &node{mode: mode.Perm(), data: r, size: size})
}

// AddSymlink adds a symbolic link to target, of up to 4095 bytes as on
// Linux (libisofs reads only up to 1024). Only Rock Ridge records links;
// the Joliet tree leaves them out, as genisoimage and xorriso do.
func (b *Builder) AddSymlink(p, target string) error {
	if target == "" || len(target) > 4095 {
		return image.Errorf(image.ErrInvalidArgument, "iso9660: %q: bad symbolic link target length %d", p, len(target))
	}
	return b.add(p, &node{mode: fs.ModeSymlink | 0o777, target: target})
}
