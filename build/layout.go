package build

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/qimg/qimg/image"
)

// A Layout is where an installer ISO keeps its kernel and initrd and how
// its installer is told to run unattended.
type Layout struct {
	Name   string // "debian-installer", "subiquity", "anaconda" or "custom"
	Kernel string // path of the kernel inside the ISO
	Initrd string // path of the initrd inside the ISO
	// Answers is the name the answer file gets in the root of the
	// initrd, or "" when it goes on a NoCloud seed as user-data.
	Answers string
	// Args are the kernel arguments that start the install unattended;
	// "{volume}" stands for the ISO's volume id (as a label on the
	// kernel command line).
	Args string
}

// layouts are the installers FindLayout knows, the first found wins.
var layouts = []Layout{
	// Debian's d-i loads /preseed.cfg from its initrd by itself;
	// priority=critical asks nothing the preseed file leaves out.
	{Name: "debian-installer", Kernel: "install.amd/vmlinuz", Initrd: "install.amd/initrd.gz", Answers: "preseed.cfg", Args: "auto=true priority=critical"},
	// Debian's netboot mini.iso.
	{Name: "debian-installer", Kernel: "linux", Initrd: "initrd.gz", Answers: "preseed.cfg", Args: "auto=true priority=critical"},
	// Ubuntu's live server installer: the autoinstall config comes as
	// cloud-init user-data on a cidata seed.
	{Name: "subiquity", Kernel: "casper/vmlinuz", Initrd: "casper/initrd", Args: "autoinstall"},
	// Anaconda (RHEL, CentOS, Rocky, Alma, Fedora): the second stage is
	// on the ISO, found by its label.
	{Name: "anaconda", Kernel: "images/pxeboot/vmlinuz", Initrd: "images/pxeboot/initrd.img", Answers: "ks.cfg", Args: "inst.stage2=hd:LABEL={volume} inst.ks=file:/ks.cfg"},
}

// ErrNoLayout means the ISO holds no installer FindLayout knows.
var ErrNoLayout = errors.New("no known installer layout")

// FindLayout returns the layout of the installer in iso (whose volume id
// is volumeID), its paths as the ISO spells them, and its arguments with
// the volume id filled in. Names are compared without case, as an ISO
// without Rock Ridge or Joliet has upper-case names.
func FindLayout(iso fs.FS, name, volumeID string) (Layout, error) {
	for _, l := range layouts {
		kernel, kerr := lookupFold(iso, l.Kernel)
		initrd, ierr := lookupFold(iso, l.Initrd)
		if kerr != nil || ierr != nil {
			continue
		}
		l.Kernel, l.Initrd = kernel, initrd
		l.Args = strings.ReplaceAll(l.Args, "{volume}", kernelLabel(volumeID))
		return l, nil
	}
	var known []string
	for _, l := range layouts {
		known = append(known, l.Kernel)
	}
	return Layout{}, image.FileErrorf(name, "%w (looked for %s; name the kernel and initrd with --kernel and --initrd)", ErrNoLayout, strings.Join(known, ", "))
}

// CustomLayout is the layout the caller names: kernel and initrd paths in
// iso, the answer file in the initrd's root under answersName.
func CustomLayout(iso fs.FS, name, kernel, initrd, answersName string) (Layout, error) {
	l := Layout{Name: "custom", Answers: answersName}
	var err error
	if l.Kernel, err = lookupFold(iso, strings.TrimPrefix(kernel, "/")); err != nil {
		return l, image.FileErrorf(name, "kernel %s: %w", kernel, err)
	}
	if l.Initrd, err = lookupFold(iso, strings.TrimPrefix(initrd, "/")); err != nil {
		return l, image.FileErrorf(name, "initrd %s: %w", initrd, err)
	}
	return l, nil
}

// lookupFold finds the regular file p in fsys, comparing each name
// without case, and returns its path as fsys spells it.
func lookupFold(fsys fs.FS, p string) (string, error) {
	if !fs.ValidPath(p) || p == "." {
		return "", fmt.Errorf("%q is not a path inside the ISO: %w", p, image.ErrInvalidArgument)
	}
	dir := "."
	parts := strings.Split(p, "/")
	for i, want := range parts {
		entries, err := fs.ReadDir(fsys, dir)
		if err != nil {
			return "", err
		}
		found := false
		for _, e := range entries {
			if !strings.EqualFold(e.Name(), want) {
				continue
			}
			last := i == len(parts)-1
			if last && !e.Type().IsRegular() || !last && !e.IsDir() {
				continue
			}
			dir, found = path.Join(dir, e.Name()), true
			break
		}
		if !found {
			return "", fmt.Errorf("%s: %w", p, fs.ErrNotExist)
		}
	}
	return dir, nil
}

// kernelLabel writes a volume id as dracut reads a LABEL= on the kernel
// command line: characters other than letters, digits and "-._" as \xNN.
func kernelLabel(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String()
}
