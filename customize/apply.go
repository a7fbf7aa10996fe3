package customize

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/qimg/qimg/guestfs"
	"github.com/qimg/qimg/internal/unixmode"
)

// Guest is a filesystem being customized.
type Guest struct {
	FS guestfs.WritableFileSystem
	// Log gets one line per operation, as virt-customize prints them;
	// nil is quiet.
	Log io.Writer
	// created records that a new file or directory was made, which
	// SELinux guests must label.
	created bool
	// needCloudInit records an option that configures cloud-init.
	needCloudInit bool
}

// discarder is what a filesystem offers to drop staged changes.
type discarder interface{ Discard() error }

// Apply runs ops in order and commits them at once. On an error nothing
// is committed: the staged changes are discarded and the image is left
// as it was.
func Apply(ctx context.Context, g *Guest, ops []Op) error {
	err := g.applyAll(ctx, ops)
	if err == nil {
		err = g.FS.Commit(ctx)
	}
	if err != nil {
		if d, ok := g.FS.(discarder); ok {
			d.Discard()
		}
		return err
	}
	return nil
}

func (g *Guest) applyAll(ctx context.Context, ops []Op) error {
	for _, op := range ops {
		if err := ctx.Err(); err != nil {
			return err
		}
		g.logf("%s", describe(op))
		if err := g.apply(op); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	if g.needCloudInit && !g.hasCloudInit() {
		g.logf("Warning: the guest has no cloud-init; qimg cannot install packages offline: install cloud-init in the image (or use --firstboot-command)")
	}
	if g.created {
		return g.selinuxRelabel()
	}
	return nil
}

func (g *Guest) logf(format string, args ...any) {
	if g.Log != nil {
		fmt.Fprintf(g.Log, format+"\n", args...)
	}
}

// describe is the line logged for an operation.
func describe(op Op) string {
	spec, ok := lookupSpec(op.Name)
	if !ok {
		return op.String()
	}
	return spec.log(spec.split(op.Arg))
}

// apply runs one operation.
func (g *Guest) apply(op Op) error {
	spec, ok := lookupSpec(op.Name)
	if !ok {
		return fmt.Errorf("unknown operation --%s", op.Name)
	}
	return spec.run(g, spec.split(op.Arg))
}

// links makes --link's symbolic links (fields: target, links).
func (g *Guest) links(f []string) error {
	for _, l := range f[1:] {
		if err := g.symlink(f[0], l); err != nil {
			return err
		}
	}
	return nil
}

// chmod sets a mode (fields: octal mode, path; checked by Parse).
func (g *Guest) chmod(f []string) error {
	mode, _ := strconv.ParseUint(f[0], 8, 32)
	return g.FS.Chmod(name(f[1]), unixmode.PermToFileMode(uint32(mode)))
}

// chown sets the owner (fields: uid, gid, path; checked by Parse).
func (g *Guest) chown(f []string) error {
	uid, _ := strconv.Atoi(f[0])
	gid, _ := strconv.Atoi(f[1])
	return g.FS.Chown(name(f[2]), uid, gid)
}

// name turns a guest path ("/etc/hosts", relative paths count from the
// root) into a filesystem name ("etc/hosts", "." for the root).
func name(p string) string {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	if p == "" {
		return "."
	}
	return p
}

// maxLinks bounds the symbolic links followed to the final file.
const maxLinks = 40

// resolve follows symbolic links at the end of a guest name, inside the
// guest, to the file an open(2) would reach; a dangling link resolves to
// what it names, so writing through it creates the target.
func (g *Guest) resolve(n string) (string, error) {
	for range maxLinks {
		fi, err := g.FS.Lstat(n)
		if errors.Is(err, fs.ErrNotExist) {
			return n, nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return n, nil
		}
		target, err := g.FS.ReadLink(n)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			n = name(target)
		} else {
			n = name(path.Join(path.Dir(n), target))
		}
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", n)
}

// isDir reports whether a guest name is a directory (following links).
func (g *Guest) isDir(n string) bool {
	fi, err := g.FS.Stat(n)
	return err == nil && fi.IsDir()
}

// writeFile writes data to a guest file, through links; a new file is
// root:root 0644.
func (g *Guest) writeFile(remote string, data []byte) error {
	n, err := g.resolve(name(remote))
	if err != nil {
		return err
	}
	return g.write(n, bytes.NewReader(data), int64(len(data)))
}

func (g *Guest) write(n string, r io.Reader, size int64) error {
	if _, err := g.FS.Lstat(n); errors.Is(err, fs.ErrNotExist) {
		g.created = true
	}
	return g.FS.WriteFile(n, r, size, 0o644)
}

// upload copies a local file to REMOTE, or into it if it is a directory.
func (g *Guest) upload(local, remote string) error {
	f, err := os.Open(local)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", local)
	}
	n := name(remote)
	if g.isDir(n) {
		n = path.Join(n, path.Base(local))
	}
	if n, err = g.resolve(n); err != nil {
		return err
	}
	return g.write(n, f, st.Size())
}

// appendLine appends line and a newline, adding a newline first if the
// file does not end with one; a file with CRLF line ends gets CRLF.
func (g *Guest) appendLine(remote, line string) error {
	n, err := g.resolve(name(remote))
	if err != nil {
		return err
	}
	old, err := fs.ReadFile(g.FS, n)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	eol := "\n"
	if bytes.Contains(old, []byte("\r\n")) {
		eol = "\r\n"
	}
	data := old
	if len(data) > 0 && !bytes.HasSuffix(data, []byte("\n")) {
		data = append(data, eol...)
	}
	data = append(append(data, line...), eol...)
	return g.write(n, bytes.NewReader(data), int64(len(data)))
}

// mkdirAll creates a directory and its missing parents (root:root 0755).
func (g *Guest) mkdirAll(n string) error {
	if n == "." {
		return nil
	}
	fi, err := g.FS.Stat(n)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("/%s exists and is not a directory", n)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := g.mkdirAll(path.Dir(n)); err != nil {
		return err
	}
	g.created = true
	return g.FS.Mkdir(n, 0o755)
}

// delete removes a file or a whole tree; a missing path is an error
// (a typo should not pass silently).
func (g *Guest) delete(remote string) error {
	n := name(remote)
	if n == "." {
		return fmt.Errorf("refusing to delete the guest's root")
	}
	if _, err := g.FS.Lstat(n); err != nil {
		return err
	}
	return g.FS.RemoveAll(n)
}

// move renames SOURCE to DEST, or into DEST when it is a directory.
func (g *Guest) move(src, dst string) error {
	s, d := name(src), name(dst)
	if g.isDir(d) {
		d = path.Join(d, path.Base(s))
	}
	return g.FS.Rename(s, d)
}

// symlink creates LINK pointing at TARGET (stored as given).
func (g *Guest) symlink(target, link string) error {
	g.created = true
	return g.FS.Symlink(target, name(link))
}

// touch creates an empty file or sets an existing one's times to now.
func (g *Guest) touch(remote string) error {
	n, err := g.resolve(name(remote))
	if err != nil {
		return err
	}
	if _, err := g.FS.Stat(n); errors.Is(err, fs.ErrNotExist) {
		return g.write(n, bytes.NewReader(nil), 0)
	}
	now := time.Now()
	return g.FS.Chtimes(n, now, now)
}

// selinuxRelabel schedules a relabel on an SELinux guest that got new
// files, whose labels qimg does not compute.
func (g *Guest) selinuxRelabel() error {
	cfg, err := fs.ReadFile(g.FS, "etc/selinux/config")
	if err != nil {
		return nil // no SELinux
	}
	for _, line := range strings.Split(string(cfg), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "SELINUX="); ok && strings.TrimSpace(v) != "disabled" {
			g.logf("SELinux guest: /.autorelabel created so that the new files are labelled at the next boot")
			return g.FS.WriteFile(".autorelabel", bytes.NewReader(nil), 0, 0o644)
		}
	}
	return nil
}
