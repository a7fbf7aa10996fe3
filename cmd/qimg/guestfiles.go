package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/guestfs"
	"github.com/qimg/qimg/guestfs/inspect"
	"github.com/qimg/qimg/image"
)

// guestOptions are the flags of the guest file commands.
type guestOptions struct {
	format, device string
}

func (o *guestOptions) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&o.format, "format", "f", "", "image format; probed if omitted")
	f.StringVarP(&o.device, "mount", "m", "", "the device holding the filesystem (/dev/sda1, /dev/VG/LV); needed when there are several")
}

// openDisk opens the image read-only and finds its devices; the caller
// closes the image. An edit a crash interrupted after its commit (its
// redo log complete beside the image) is shown as finished, in memory,
// with a note: the next edit of the image writes it.
func openDisk(e *env, imagePath, format string) (image.Image, *guestfs.Disk, error) {
	img, _, err := openData(imagePath, format, false, e.chainPolicy())
	if err != nil {
		return nil, nil, err
	}
	disk, err := guestfs.Open(img, imagePath)
	var dev string
	closeLog := func() error { return nil }
	if err == nil {
		dev, closeLog, err = disk.ViewRedoLog(guestfs.RedoLogPath(imagePath))
	}
	if err != nil {
		img.Close()
		return nil, nil, fail("%s", reason(imagePath, err))
	}
	if dev != "" {
		fmt.Fprintf(e.stderr, "qimg: note: %s holds an interrupted edit of %s, shown here as finished; the next qimg edit of the image (inject, copy-in) writes it\n", guestfs.RedoLogPath(imagePath), dev)
	}
	return withCloser{img, closeLog}, disk, nil
}

// withCloser is an image that closes something else with itself.
type withCloser struct {
	image.Image
	also func() error
}

func (w withCloser) Close() error {
	err := w.Image.Close()
	if aerr := w.also(); err == nil {
		err = aerr
	}
	return err
}

// open opens the image read-only and the filesystem to use.
func (o *guestOptions) open(e *env, imagePath string) (guestfs.FileSystem, func(), error) {
	img, disk, err := openDisk(e, imagePath, o.format)
	if err != nil {
		return nil, nil, err
	}
	dev := o.device
	if dev == "" {
		dev, err = inspect.Root(disk)
	}
	var fsys guestfs.FileSystem
	if err == nil {
		fsys, err = disk.Mount(dev)
	}
	if err != nil {
		img.Close()
		return nil, nil, fail("%s", reason(imagePath, err))
	}
	return fsys, func() { img.Close() }, nil
}

// guestPath turns a guest path ("/etc/hosts") into an fs.FS name.
func guestPath(p string) string {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	if p == "" {
		return "."
	}
	return p
}

// guestError is the message for a guest path that failed.
func guestError(imagePath, p string, err error) error {
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fail("%s: %s: No such file or directory", imagePath, p)
	case errors.As(err, &pe):
		return fail("%s: %s: %s", imagePath, p, pe.Err)
	}
	return fail("%s: %s: %s", imagePath, p, err)
}

func newCatCmd(e *env) *cobra.Command {
	var o guestOptions
	cmd := &cobra.Command{
		Use:   "cat [-f FMT] [-m DEV] IMAGE PATH...",
		Short: "Print files from inside an image",
		Long: `Print the contents of files inside a guest image, as virt-cat does,
without a kernel, appliance or root. Paths are inside the guest: symlinks
resolve within the guest's filesystem, never on the host.`,
		Args: minArgs(2, "Expecting an image and at least one path"),
		RunE: func(cmd *cobra.Command, args []string) error {
			fsys, done, err := o.open(e, args[0])
			if err != nil {
				return err
			}
			defer done()
			for _, p := range args[1:] {
				if err := catFile(e.stdout, fsys, p); err != nil {
					return guestError(args[0], p, err)
				}
			}
			return nil
		},
	}
	o.flags(cmd)
	return cmd
}

func catFile(w io.Writer, fsys guestfs.FileSystem, p string) error {
	f, err := fsys.Open(guestPath(p))
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return err
	} else if fi.IsDir() {
		return errIsDir
	}
	_, err = io.Copy(w, f)
	return err
}

// errIsDir and errNotDir are spelt as coreutils spells them.
var (
	errIsDir  = errors.New("Is a directory")
	errNotDir = errors.New("Not a directory")
)

func newLsCmd(e *env) *cobra.Command {
	var o guestOptions
	var long, recursive bool
	cmd := &cobra.Command{
		Use:   "ls [-f FMT] [-m DEV] [-l] [-R] IMAGE PATH",
		Short: "List a directory inside an image",
		Long: `List a directory inside a guest image, as virt-ls does: names one per line,
sorted; -R lists every path below the directory; -l adds mode, size and
modification time (and link targets).`,
		Args: exactArgs(2, "Expecting an image and a directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			fsys, done, err := o.open(e, args[0])
			if err != nil {
				return err
			}
			defer done()
			l := lister{w: e.stdout, fsys: fsys, long: long}
			dir := guestPath(args[1])
			if fi, serr := fsys.Stat(dir); serr == nil && !fi.IsDir() {
				return guestError(args[0], args[1], errNotDir)
			}
			if recursive {
				err = listTree(fsys, dir, l)
			} else {
				var entries []fs.DirEntry
				if entries, err = fsys.ReadDir(dir); err == nil {
					for _, d := range entries {
						if err = l.line(path.Join(dir, d.Name()), d.Name()); err != nil {
							break
						}
					}
				}
			}
			if err != nil {
				return guestError(args[0], args[1], err)
			}
			return nil
		},
	}
	o.flags(cmd)
	cmd.Flags().BoolVarP(&long, "long", "l", false, "show mode, size and modification time")
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "list every path below the directory")
	return cmd
}

// listTree prints every path below dir. A directory met twice (a loop,
// or a hard link to a directory, which ext4 forbids) is an error: on a
// hostile image each level could double the paths to list.
func listTree(fsys guestfs.FileSystem, dir string, l lister) error {
	seen := map[uint64]bool{}
	return fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if id, ok := guestfs.FileID(fi); ok {
				if seen[id] {
					return fmt.Errorf("/%s: directory met twice (a loop or a hard link to a directory): the filesystem is corrupt", p)
				}
				seen[id] = true
			}
		}
		if p == dir {
			return nil
		}
		return l.line(p, "/"+p)
	})
}

// lister prints one line per entry.
type lister struct {
	w    io.Writer
	fsys guestfs.FileSystem
	long bool
}

func (l lister) line(name, shown string) error {
	shown = quoteName(shown)
	if !l.long {
		_, err := fmt.Fprintln(l.w, shown)
		return err
	}
	fi, err := l.fsys.Lstat(name)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := l.fsys.ReadLink(name)
		if err != nil {
			return err
		}
		shown += " -> " + quoteName(target)
	}
	_, err = fmt.Fprintf(l.w, "%s %10d %s %s\n", modeString(fi.Mode()), fi.Size(), fi.ModTime().UTC().Format("2006-01-02 15:04:05"), shown)
	return err
}

// modeString spells a mode as ls -l does ("lrwxrwxrwx", "crw-rw----"),
// where Go's FileMode.String uses its own letters for the type.
func modeString(m fs.FileMode) string {
	t := byte('-')
	switch {
	case m&fs.ModeSymlink != 0:
		t = 'l'
	case m.IsDir():
		t = 'd'
	case m&fs.ModeCharDevice != 0:
		t = 'c'
	case m&fs.ModeDevice != 0:
		t = 'b'
	case m&fs.ModeNamedPipe != 0:
		t = 'p'
	case m&fs.ModeSocket != 0:
		t = 's'
	}
	perm := []byte(m.Perm().String())
	perm[0] = t
	if m&fs.ModeSetuid != 0 {
		perm[3] = sticky(perm[3], 's')
	}
	if m&fs.ModeSetgid != 0 {
		perm[6] = sticky(perm[6], 's')
	}
	if m&fs.ModeSticky != 0 {
		perm[9] = sticky(perm[9], 't')
	}
	return string(perm)
}

// sticky is ls's letter for a set-id or sticky bit over x (or -).
func sticky(x, letter byte) byte {
	if x == 'x' {
		return letter
	}
	return letter - 'a' + 'A'
}

// quoteName escapes what a guest name must not print raw, as ls -b does:
// control characters (a newline would forge a line of the listing, an
// escape sequence would drive the terminal), bytes that are not UTF-8,
// and the backslash that starts an escape.
func quoteName(name string) string {
	if !needsQuoting(name) {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(name); {
		r, size := utf8.DecodeRuneInString(name[i:])
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == utf8.RuneError && size <= 1, unicode.IsControl(r):
			for _, c := range []byte(name[i : i+size]) {
				fmt.Fprintf(&b, "\\%03o", c)
			}
		default:
			b.WriteString(name[i : i+size])
		}
		i += size
	}
	return b.String()
}

func needsQuoting(name string) bool {
	for _, r := range name {
		if r == '\\' || r == utf8.RuneError || unicode.IsControl(r) {
			return true
		}
	}
	return false
}
