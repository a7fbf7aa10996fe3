// Package guestfs finds what a guest disk image holds, in pure Go and with
// no kernel, appliance or root: its partitions (package partition), its
// LVM2 volume groups and logical volumes (package lvm), and what each
// device holds (package detect), named as libguestfs names them
// (/dev/sda, /dev/sda1, /dev/VG/LV). Filesystems are read by the packages
// below it (ext4, iso9660, ...), each on a device's window of the image.
//
// Open walks the image once and returns the Disk: every device with its
// window (an image.Image of its own) and content. Devices whose content
// qimg cannot open (LUKS, btrfs, swap, unknown) are listed and named, so
// that callers can say what they found.
//
// Disk.Mount opens a device's filesystem read-only (ext2/3/4, XFS,
// ISO9660, FAT, NTFS); Disk.MountWritable opens it for editing (ext2/3/4,
// FAT) as a WritableFileSystem, whose changes reach the image at Commit,
// all or nothing: through the journal of ext3/ext4, and for ext2, ext4
// without a journal and FAT through a redo log (package redo) given with
// WithRedoLog; the CLI keeps it beside the image (RedoLogPath). Before an
// edit, Disk.Recover finishes an edit a crash interrupted (MountWritable
// does it for its log); Disk.ViewRedoLog shows it finished, read-only.
package guestfs
