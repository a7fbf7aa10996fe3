package guestfs

import (
	"github.com/qimg/qimg/guestfs/ext4"
	"github.com/qimg/qimg/guestfs/fat"
	"github.com/qimg/qimg/image"
)

// editors open the filesystems qimg edits, by blkid type.
var editors = map[string]func(dev image.WritableImage, name string) (WritableFileSystem, error){
	"ext2": openExtWritable,
	"ext3": openExtWritable,
	"ext4": openExtWritable,
	"vfat": func(dev image.WritableImage, name string) (WritableFileSystem, error) {
		return fat.OpenWritable(dev, dev.Size(), name)
	},
}

func openExtWritable(dev image.WritableImage, name string) (WritableFileSystem, error) {
	return ext4.OpenWritable(dev, dev.Size(), name)
}

var (
	_ WritableFileSystem = (*ext4.FS)(nil)
	_ WritableFileSystem = (*fat.FS)(nil)
)

// Editable lists the filesystem types MountWritable opens.
func Editable() []string { return sortedKeys(editors) }

// MountWritable opens the filesystem on the device named dev for
// editing; the disk image must have been opened writable. Changes reach
// the image at the filesystem's Commit. Filesystems qimg reads but does
// not edit (XFS, ISO9660) are refused with a message that says so.
func (d *Disk) MountWritable(dev string) (WritableFileSystem, error) {
	dv, err := d.readable(dev)
	if err != nil {
		return nil, err
	}
	if dv.Content.Type == "ntfs" {
		return nil, image.FileErrorf(d.Name, "%s is NTFS (Windows), which qimg reads but does not edit: configure Windows at boot with cloudbase-init and a config drive (qimg seed --config-drive), and upload it with the Glance properties a Windows image needs (os_type=windows, hw_disk_bus, hw_vif_model): %w", dv.Name, image.ErrUnsupported)
	}
	open, ok := editors[dv.Content.Type]
	if !ok {
		return nil, d.unsupported(dv, "edits", Editable())
	}
	w, ok := dv.Image.(image.WritableImage)
	if !ok {
		return nil, image.FileErrorf(d.Name, "%s: the image was opened read-only: %w", dv.Name, image.ErrInvalidArgument)
	}
	return open(w, d.Name+":"+dv.Name)
}
