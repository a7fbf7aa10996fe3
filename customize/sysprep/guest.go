package sysprep

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"

	"github.com/qimg/qimg/guestfs"
	"github.com/qimg/qimg/guestfs/inspect"
)

// guest is the filesystem being prepared and what the operations learn
// while they run.
type guest struct {
	fs  guestfs.WritableFileSystem
	os  inspect.OS
	log io.Writer
	// created records that a new file was made: on an SELinux guest it
	// has no label, so selinux-relabel schedules a relabel. Edited files
	// keep theirs (WriteFile and Truncate keep extended attributes).
	created bool
	// budget bounds the directory entries globs and walks visit, so a
	// corrupt directory tree that loops cannot make sysprep run forever.
	budget int
}

// walkBudget is the directory entries one run may visit: far more than
// the directories sysprep looks at hold on a real guest.
const walkBudget = 4 << 20

// maxConfig bounds the configuration files sysprep reads and edits.
const maxConfig = 1 << 20

func (g *guest) logf(format string, args ...any) {
	if g.log != nil {
		fmt.Fprintf(g.log, format+"\n", args...)
	}
}

// exists reports whether a guest name exists (a dangling link does).
func (g *guest) exists(name string) (bool, error) {
	_, err := g.fs.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// isRegular reports whether name is a regular file (not following a
// final link).
func (g *guest) isRegular(name string) bool {
	fi, err := g.fs.Lstat(name)
	return err == nil && fi.Mode().IsRegular()
}

// isDir reports whether name is a directory, following links.
func (g *guest) isDir(name string) bool {
	fi, err := g.fs.Stat(name)
	return err == nil && fi.IsDir()
}

// remove removes a file, link or directory tree if it is there.
func (g *guest) remove(name string) error {
	ok, err := g.exists(name)
	if !ok {
		return err
	}
	g.logf("  Removing /%s", name)
	return g.fs.RemoveAll(name)
}

// removeGlobs removes everything the patterns match.
func (g *guest) removeGlobs(patterns ...string) error {
	for _, p := range patterns {
		names, err := g.glob(p)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := g.remove(n); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeFiles removes what the patterns match except directories.
func (g *guest) removeFiles(patterns ...string) error {
	for _, p := range patterns {
		names, err := g.glob(p)
		if err != nil {
			return err
		}
		for _, n := range names {
			if fi, err := g.fs.Lstat(n); err == nil && !fi.IsDir() {
				if err := g.remove(n); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// removeFilesUnder removes every file and link below dir, keeping the
// directories, except those whose base name keep accepts.
func (g *guest) removeFilesUnder(dir string, keep func(base string) bool) error {
	return g.walk(dir, func(name string, d fs.DirEntry) error {
		if d.IsDir() || (keep != nil && keep(d.Name())) {
			return nil
		}
		return g.remove(name)
	})
}

// maxDepth bounds how deep walk descends.
const maxDepth = 64

// walk calls fn for every entry below dir, parents before children,
// without following links below dir. A missing dir is no error.
func (g *guest) walk(dir string, fn func(name string, d fs.DirEntry) error) error {
	if !g.isDir(dir) {
		return nil
	}
	return g.walkDepth(dir, fn, 0)
}

func (g *guest) walkDepth(dir string, fn func(string, fs.DirEntry) error, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("/%s: directories nested more than %d deep", dir, maxDepth)
	}
	ents, err := g.readDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := path.Join(dir, e.Name())
		if err := fn(name, e); err != nil {
			return err
		}
		if e.IsDir() {
			if err := g.walkDepth(name, fn, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// readDir lists a directory, charging its entries to the budget.
func (g *guest) readDir(dir string) ([]fs.DirEntry, error) {
	ents, err := g.fs.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	g.budget -= len(ents) + 1
	if g.budget < 0 {
		return nil, fmt.Errorf("/%s: more than %d directory entries visited; is the directory tree looping?", dir, walkBudget)
	}
	return ents, nil
}

// readConfig reads a regular configuration file; ok is false (and the
// file left alone, with a note) when it is not a regular file of at
// most maxConfig bytes.
func (g *guest) readConfig(name string) (data []byte, ok bool, err error) {
	fi, err := g.fs.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if !fi.Mode().IsRegular() {
		return nil, false, nil
	}
	if fi.Size() > maxConfig {
		g.logf("  Skipping /%s: larger than %d bytes", name, maxConfig)
		return nil, false, nil
	}
	data, err = fs.ReadFile(g.fs, name)
	if err != nil {
		return nil, false, err
	}
	return data, true, nil
}

// rewrite replaces the contents of an existing file, keeping its owner,
// mode and extended attributes (so its SELinux label).
func (g *guest) rewrite(name string, data []byte) error {
	return g.fs.WriteFile(name, bytes.NewReader(data), int64(len(data)), 0o644)
}

// create writes a new file, root:root with mode perm.
func (g *guest) create(name string, data []byte, perm fs.FileMode) error {
	g.logf("  Creating /%s", name)
	g.created = true
	return g.fs.WriteFile(name, bytes.NewReader(data), int64(len(data)), perm)
}

// editLines removes the lines of a configuration file that drop
// accepts, logging each; the other lines keep their bytes.
func (g *guest) editLines(name string, drop func(line string) bool) error {
	data, ok, err := g.readConfig(name)
	if !ok {
		return err
	}
	var out []byte
	changed := false
	for _, line := range splitLines(data) {
		if drop(string(trimEOL(line))) {
			g.logf("  Editing /%s: removing %q", name, trimEOL(line))
			changed = true
			continue
		}
		out = append(out, line...)
	}
	if !changed {
		return nil
	}
	return g.rewrite(name, out)
}

// splitLines splits data after each newline, keeping them.
func splitLines(data []byte) [][]byte {
	return bytes.SplitAfter(data, []byte("\n"))
}

func trimEOL(line []byte) []byte {
	return bytes.TrimRight(line, "\r\n")
}

// distroIn reports whether the guest's distribution is one of names.
func (g *guest) distroIn(names ...string) bool {
	return slices.Contains(names, g.os.Distro)
}

// redHatFamily are the distributions virt-sysprep treats as Red Hat's
// (ifcfg network scripts, /etc/sysconfig), with Rocky and Alma.
var redHatFamily = []string{"fedora", "rhel", "centos", "scientificlinux", "oraclelinux", "redhat-based", "rocky", "almalinux"}

func (g *guest) redHat() bool { return g.distroIn(redHatFamily...) }
