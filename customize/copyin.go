package customize

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// copyIn copies a local file or directory tree into the guest directory
// remoteDir (which must exist): modes and symbolic links are kept (links
// are copied as links, never followed on the host), owners are root.
// Devices, fifos and sockets are refused.
func (g *Guest) copyIn(local, remoteDir string) error {
	dir := name(remoteDir)
	if !g.isDir(dir) {
		return fmt.Errorf("/%s is not a directory in the guest", dir)
	}
	return g.copyTree(filepath.Clean(local), path.Join(dir, filepath.Base(filepath.Clean(local))))
}

func (g *Guest) copyTree(local, n string) error {
	st, err := os.Lstat(local)
	if err != nil {
		return err
	}
	g.created = true
	switch m := st.Mode(); {
	case m.IsRegular():
		f, err := os.Open(local)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := g.FS.WriteFile(n, f, st.Size(), m.Perm()|m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return err
		}
		return g.FS.Chmod(n, m.Perm()|m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
	case m&fs.ModeSymlink != 0:
		target, err := os.Readlink(local)
		if err != nil {
			return err
		}
		if _, err := g.FS.Lstat(n); err == nil {
			if err := g.FS.Remove(n); err != nil {
				return err
			}
		}
		return g.FS.Symlink(target, n)
	case m.IsDir():
		if fi, err := g.FS.Stat(n); err != nil {
			if err := g.FS.Mkdir(n, m.Perm()|m&(fs.ModeSetgid|fs.ModeSticky)); err != nil {
				return err
			}
		} else if !fi.IsDir() {
			return fmt.Errorf("/%s exists and is not a directory", n)
		}
		ents, err := os.ReadDir(local)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := g.copyTree(filepath.Join(local, e.Name()), path.Join(n, e.Name())); err != nil {
				return err
			}
		}
		return g.FS.Chmod(n, m.Perm()|m&(fs.ModeSetgid|fs.ModeSticky))
	}
	return fmt.Errorf("%s is a %v, which copy-in does not copy", local, st.Mode().Type())
}
