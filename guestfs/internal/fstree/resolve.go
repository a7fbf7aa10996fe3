package fstree

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/qimg/qimg/image"
)

// Node is an inode as path resolution sees it.
type Node interface {
	IsDir() bool
	IsSymlink() bool
}

// Tree is what a reader gives Resolve.
type Tree[I Node] interface {
	Root() (I, error)
	// Child returns the inode dir's entry name names (fs.ErrNotExist
	// when there is none).
	Child(dir I, name string) (I, error)
	// Target returns a symbolic link's target as stored.
	Target(link I) (string, error)
	// Errorf reports a problem of the tree's image, of kind
	// image.ErrCorrupt or image.ErrLimit, naming the image and the
	// filesystem type.
	Errorf(kind error, format string, args ...any) error
}

// Bounds of path resolution.
const (
	// MaxSymlinks is how many symbolic links one path may pass, as
	// Linux's MAXSYMLINKS.
	MaxSymlinks = 40
	// MaxDepth bounds the directories a path descends through.
	MaxDepth = 2048
	// maxComponents bounds a path grown by link targets.
	maxComponents = 1 << 16
)

// PathErr wraps err as io/fs wants: with the operation and the path.
func PathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// Resolve resolves name, a valid fs.FS path, to its inode. Symbolic
// links in the middle of the path are always followed, the last one only
// if follow is set. Links resolve inside the tree: an absolute target
// starts again at its root, and ".." never climbs above the root, so no
// name in the guest can reach the host. Errors are *fs.PathError with op.
func Resolve[I Node](t Tree[I], op, name string, follow bool) (I, error) {
	in, err := resolve(t, name, follow)
	if err != nil {
		return in, PathErr(op, name, err)
	}
	return in, nil
}

func resolve[I Node](t Tree[I], name string, follow bool) (I, error) {
	var zero I
	if !fs.ValidPath(name) {
		return zero, fs.ErrInvalid
	}
	root, err := t.Root()
	if err != nil {
		return zero, err
	}
	// stack holds the directories from the root down to the current
	// one, which is what ".." pops.
	stack := []I{root}
	var rest []string
	if name != "." {
		rest = strings.Split(name, "/")
	}
	links := 0
	for len(rest) > 0 {
		comp := rest[0]
		rest = rest[1:]
		switch comp {
		case "", ".":
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		dir := stack[len(stack)-1]
		if !dir.IsDir() {
			return zero, errNotDir
		}
		in, err := t.Child(dir, comp)
		if err != nil {
			return zero, err
		}
		if in.IsSymlink() && (len(rest) > 0 || follow) {
			links++
			if links > MaxSymlinks {
				return zero, fmt.Errorf("too many levels of symbolic links: %w", fs.ErrInvalid)
			}
			target, err := t.Target(in)
			if err != nil {
				return zero, err
			}
			if strings.HasPrefix(target, "/") {
				stack = stack[:1]
			}
			rest = append(strings.Split(target, "/"), rest...)
			if len(rest) > maxComponents {
				return zero, t.Errorf(image.ErrCorrupt, "path through symbolic links too long")
			}
			continue
		}
		if len(stack) > MaxDepth {
			return zero, t.Errorf(image.ErrLimit, "path deeper than %d directories", MaxDepth)
		}
		stack = append(stack, in)
	}
	return stack[len(stack)-1], nil
}

// baseName is the name fs.FileInfo gives the file at an fs.FS path.
func baseName(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[i+1:]
	}
	return name
}
