package fstree

import (
	"fmt"
	"io/fs"
)

// FS is a Tree with what the io/fs methods need besides resolution; a
// reader's FS implements fs.FS, fs.StatFS, fs.ReadDirFS, fs.ReadFileFS
// and fs.ReadLinkFS with the functions below.
type FS[I Node] interface {
	Tree[I]
	// Open opens an inode under the fs.FS path name.
	Open(name string, in I) (*File, error)
	// Stat describes an inode under the name given.
	Stat(name string, in I) fs.FileInfo
	// List lists a directory as List does.
	List(dir I) ([]fs.DirEntry, error)
}

// Open opens the named file, following symbolic links inside the tree.
func Open[I Node](t FS[I], name string) (fs.File, error) {
	in, err := Resolve(t, "open", name, true)
	if err != nil {
		return nil, err
	}
	file, err := t.Open(name, in)
	if err != nil {
		return nil, err
	}
	return file, nil
}

// ReadFile reads the named file whole, following symbolic links.
func ReadFile[I Node](t FS[I], name string) ([]byte, error) {
	in, err := Resolve(t, "readfile", name, true)
	if err != nil {
		return nil, err
	}
	file, err := t.Open(name, in)
	if err != nil {
		return nil, err
	}
	return file.ReadAll()
}

// Stat describes the named file, following symbolic links.
func Stat[I Node](t FS[I], name string) (fs.FileInfo, error) {
	return stat(t, "stat", name, true)
}

// Lstat describes the named file without following a final symbolic link.
func Lstat[I Node](t FS[I], name string) (fs.FileInfo, error) {
	return stat(t, "lstat", name, false)
}

func stat[I Node](t FS[I], op, name string, follow bool) (fs.FileInfo, error) {
	in, err := Resolve(t, op, name, follow)
	if err != nil {
		return nil, err
	}
	return t.Stat(baseName(name), in), nil
}

// ReadDir lists the named directory sorted by name, without "." and "..".
func ReadDir[I Node](t FS[I], name string) ([]fs.DirEntry, error) {
	in, err := Resolve(t, "readdir", name, true)
	if err != nil {
		return nil, err
	}
	ents, err := t.List(in)
	if err != nil {
		return nil, PathErr("readdir", name, err)
	}
	return ents, nil
}

// ReadLink returns the target of the named symbolic link as stored.
func ReadLink[I Node](t FS[I], name string) (string, error) {
	in, err := Resolve(t, "readlink", name, false)
	if err != nil {
		return "", err
	}
	return Target(t, "readlink", name, in)
}

// Target returns the target of link, found under name, as stored; an
// inode that is not a symbolic link is an invalid argument.
func Target[I Node](t Tree[I], op, name string, link I) (string, error) {
	if !link.IsSymlink() {
		return "", PathErr(op, name, fmt.Errorf("not a symbolic link: %w", fs.ErrInvalid))
	}
	target, err := t.Target(link)
	if err != nil {
		return "", PathErr(op, name, err)
	}
	return target, nil
}
