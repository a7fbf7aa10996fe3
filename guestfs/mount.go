package guestfs

import (
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/qimg/qimg/guestfs/ext4"
	"github.com/qimg/qimg/guestfs/fat"
	"github.com/qimg/qimg/guestfs/iso9660"
	"github.com/qimg/qimg/guestfs/ntfs"
	"github.com/qimg/qimg/guestfs/xfs"
	"github.com/qimg/qimg/image"
)

// FileSystem is a filesystem qimg reads: an fs.FS whose paths are inside
// the guest (symlinks never reach the host), with Lstat and ReadLink.
type FileSystem interface {
	fs.ReadDirFS
	fs.StatFS
	Lstat(name string) (fs.FileInfo, error)
	ReadLink(name string) (string, error)
}

// openers open the filesystems qimg reads, by blkid type.
var openers = map[string]func(r io.ReaderAt, size int64, name string) (FileSystem, error){
	"iso9660": func(r io.ReaderAt, size int64, name string) (FileSystem, error) { return iso9660.Open(r, size, name) },
	"ext2":    openExt,
	"ext3":    openExt,
	"ext4":    openExt,
	"ntfs":    func(r io.ReaderAt, size int64, name string) (FileSystem, error) { return ntfs.Open(r, size, name) },
	"xfs":     openXFS,
	"vfat":    func(r io.ReaderAt, size int64, name string) (FileSystem, error) { return fat.Open(r, size, name) },
}

func openExt(r io.ReaderAt, size int64, name string) (FileSystem, error) {
	return ext4.Open(r, size, name)
}

func openXFS(r io.ReaderAt, size int64, name string) (FileSystem, error) {
	return xfs.Open(r, size, name)
}

// Readable lists the filesystem types Mount opens.
func Readable() []string { return sortedKeys(openers) }

func sortedKeys[V any](m map[string]V) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Mount opens the filesystem on the device named dev, read-only.
// Content qimg cannot open (LUKS, btrfs, swap, unknown) is an error that
// names it and lists what is supported.
func (d *Disk) Mount(dev string) (FileSystem, error) {
	dv, err := d.readable(dev)
	if err != nil {
		return nil, err
	}
	open, ok := openers[dv.Content.Type]
	if !ok {
		return nil, d.unsupported(dv, "reads", Readable())
	}
	return open(dv.Image, dv.Image.Size(), fmt.Sprintf("%s:%s", d.Name, dv.Name))
}

// readable finds the device named dev, which must have been read.
func (d *Disk) readable(dev string) (*Device, error) {
	dv, ok := d.Device(dev)
	if !ok {
		return nil, image.FileErrorf(d.Name, "no device %s (the image has %s): %w", dev, d.names(), image.ErrInvalidArgument)
	}
	if dv.Image == nil {
		return nil, image.FileErrorf(d.Name, "%s cannot be read: %w", dv.Name, dv.Err)
	}
	return dv, nil
}

// unsupported is the error for a device whose content qimg does not
// read (or edit: verb), naming what it holds and what qimg supports.
func (d *Disk) unsupported(dv *Device, verb string, supported []string) error {
	what := dv.Content.Type
	if what == "" {
		what = "nothing qimg recognises"
	}
	return image.FileErrorf(d.Name, "%s holds %s; qimg %s %s: %w", dv.Name, what, verb,
		strings.Join(supported, ", "), image.ErrUnsupported)
}

// OnlyFilesystem names the one device with a filesystem qimg reads, for
// commands not told which to use; several or none is an error listing
// what there is.
func (d *Disk) OnlyFilesystem() (string, error) {
	m := d.Mountable()
	switch len(m) {
	case 1:
		return m[0].Name, nil
	case 0:
		return "", image.FileErrorf(d.Name, "no filesystem qimg reads (%s) on %s: %w", strings.Join(Readable(), ", "), d.names(), image.ErrUnsupported)
	}
	var names []string
	for _, dv := range m {
		names = append(names, dv.Name)
	}
	return "", image.FileErrorf(d.Name, "several filesystems (%s): say which with -m: %w", strings.Join(names, ", "), image.ErrInvalidArgument)
}

func (d *Disk) names() string {
	var names []string
	for _, dv := range d.Devices {
		names = append(names, dv.Name)
	}
	return strings.Join(names, ", ")
}

// Mountable lists the devices holding a filesystem FS opens.
func (d *Disk) Mountable() []*Device {
	var devs []*Device
	for i := range d.Devices {
		if _, ok := openers[d.Devices[i].Content.Type]; ok && d.Devices[i].Image != nil {
			devs = append(devs, &d.Devices[i])
		}
	}
	return devs
}
