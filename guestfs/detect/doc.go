// Package detect tells what a device of a guest image holds (a file
// system, swap, an encrypted or LVM volume) from the signatures at its
// start, as blkid does: the type name, label and UUID, spelled as blkid
// and libguestfs spell them (ext4, xfs, vfat, ntfs, btrfs, swap,
// crypto_LUKS, LVM2_member, iso9660).
//
// Probe reads a few fixed places of the device (at most 64 KiB plus the
// btrfs superblock) through an io.ReaderAt, so it works on any window of
// any image (image.Section); it never trusts a length from the device.
// Content qimg cannot open is still named, so that a command can say
// what it found ("crypto_LUKS: encrypted, not supported") rather than
// "unknown".
package detect
