// Package fat reads and writes FAT12, FAT16 and FAT32 volumes with
// long file names (VFAT): EFI system partitions and vfat cloud-init
// seeds, inside disk images, without a kernel, mtools or root.
//
// Open takes any io.ReaderAt holding the volume (an image.Image from
// format.Open, or an image.Section of one partition) and returns an *FS
// that implements io/fs.FS, fs.ReadDirFS and fs.StatFS, so fs.WalkDir,
// fs.ReadFile and fstest.TestFS work on it. OpenWritable does the same
// on a device that can also be written, and the FS then implements
// guestfs.WritableFileSystem: WriteFile, Mkdir, Remove, RemoveAll,
// Rename, Truncate, Chtimes, Chmod (the read-only attribute, from the
// owner write bit) and Commit; Symlink, Link and Chown fail with
// image.ErrUnsupported, and ReadLink always fails: FAT has no links.
//
// Format makes a new, empty FAT12 or FAT16 volume (a vfat cloud-init
// seed labelled CIDATA, a config drive labelled config-2), laid out as
// mkfs.fat lays out a small disk, for OpenWritable to fill.
//
// # Names
//
// Names are looked up as Windows and Linux's vfat do: case-insensitively
// (Unicode simple folding), by long name or by 8.3 short name, and are
// listed as stored: the long name, else the short name in upper case
// unless the NT case flags (byte 12) say lower. A new name that is a
// valid 8.3 name in one case per part gets a short entry only (lower
// case through the NT flags, as Linux and mtools write it); any other
// name gets long-name slots with the short name's checksum and a short
// name BASIS~N.EXT unique in its directory, both on the device and as
// staged. Names Windows forbids (control characters, "*/:<>?\|, a
// trailing dot or space, more than 255 UTF-16 units) are refused.
// Times are read and written as UTC; modes are 0755 for directories and
// 0644 for files, without write bits when the read-only attribute is set.
//
// # What is read and verified
//
// The boot sector's geometry: 512 to 4096 bytes per sector (a power of
// two), a power-of-two cluster, at least one reserved sector, 1 to 4
// FATs, a FAT large enough for the clusters, a root directory and data
// area inside the total sectors, and total sectors inside the device.
// FAT32 is told by its BPB layout (no 16-bit FAT size), as Linux and
// fsck.fat tell it, because mkfs.vfat -F 32 makes small FAT32 volumes
// with fewer clusters than the specification's 65525; FAT12 and FAT16
// are told apart by the cluster count, as the specification says, and a
// FAT16 layout with more than 65524 clusters is corruption. Cluster
// chains are followed in bounds: a chain that meets a free, bad or
// out-of-range cluster, or that is longer than the volume has clusters
// (a cycle), is corruption, and so is a file whose chain is shorter than
// its size. Directories are at most 65536 slots (2 MiB), as Linux
// allows. Like Linux and fsck.fat, every slot of a directory is read (a
// slot whose first byte is zero is free, not the end); long-name slots
// out of sequence or whose checksum does not match the short entry
// after them are ignored, as Linux ignores them; volume labels, "." and
// ".." are not listed. A name holding '/' or NUL, an empty name, a long
// name "." or "..", and a directory entry that leads back to a directory
// on its own path are corruption. Errors are image.ErrCorrupt errors
// naming the image and the structure.
//
// # Writing
//
// Every change is staged in memory: directory slots, FAT entries and the
// content of new files (held in memory until Commit). A failed method
// (ENOSPC, a bad name) leaves the staged state as it was; nothing
// reaches the device before Commit. Staging follows one rule: new file
// content and new directory clusters go only to clusters free in the
// FAT on the device, and new entries only to slots free on the device;
// a cluster or slot freed in the same transaction is not reused before
// Commit. So content is never changed in place: overwriting, growing,
// shrinking (Truncate) or renaming a file gives it new slots or a new
// chain, and the old ones are freed at the end. (A transaction that
// replaces a file therefore needs room for both versions; the error
// says ENOSPC and wraps image.ErrLimit.) Directories grow by zeroed
// clusters and never shrink, as on Linux. OpenWritable refuses a volume
// whose dirty bit is set (in the boot sector, or FAT entry 1's
// clean-shutdown bit on FAT16 and FAT32), whose FAT copies differ or
// whose FAT32 mirroring is off: fsck.fat should look at those first.
// Every FAT copy is kept the same; FAT32's FSInfo gets the free count
// (counted, not trusted) and the next-free hint; the dirty bit is never
// set.
//
// # Commit, and what a crash leaves
//
// FAT has no journal. On a Device with a Commit method (a redo log,
// package guestfs/redo, which guestfs.Disk.MountWritable uses with
// WithRedoLog, as qimg's commands do) the writes below wait in the log
// and Commit ends with the device's Commit: the edit is all or nothing,
// and fsck.fat finds nothing at any point. On a plain device an update
// that touches several sectors cannot be atomic, and Commit writes in
// this order, flushing the device (its
// Flush or Sync method, if any) after each step, so that at any point
// the volume is the old or the new one, or one of them with only the
// leftovers below, never a volume with an entry pointing at free
// clusters, two entries sharing clusters, or a chain shorter than its
// file. The parenthesised text is what fsck.fat -n (dosfstools 4.2)
// prints if the process dies right after the step.
//
//  1. New clusters: file content, new directories, and zeroed clusters
//     that extend old directories. Nothing on the device reaches them.
//     (nothing: the old volume, clean)
//  2. FAT32 only: the FSInfo free count is marked unknown, 0xFFFFFFFF.
//     ("Free cluster summary uninitialized", exit status 0)
//  3. FAT entries of the new chains, to FAT copies 2..n and then to copy
//  1. Linux and fsck.fat read copy 1, so until it is written the
//     volume reads as before. ("FATs differ but appear to be intact.
//     Using first FAT." until copy 1 is written; then "Reclaimed N
//     unused clusters": the new chains are allocated but unreferenced)
//  4. The same for the FAT entries that link old directories to their
//     new, zeroed clusters (empty slots, harmless once linked).
//  5. Directory slots, phase 1: every new, changed and removed entry,
//     one sector write each. When the whole transaction changes one
//     directory sector (editing, adding and removing a few files in one
//     directory; renaming within a sector), that write is the switch
//     from the old tree to the new one. Otherwise a crash here leaves
//     some directories changed and others not: a mixture of the old
//     and new trees in which every file holds its old or its new
//     content. ("Reclaimed N unused clusters": content not yet
//     reachable, and content already replaced)
//  6. Phases 2 to 4, for an entry that moves to another directory or
//     sector and keeps its chain (Rename): its old slots are freed,
//     then a moved directory's ".." is pointed at its new parent, then
//     its new slots are written, so it is never in two places at once.
//     A crash between the first and the last of these leaves the moved
//     file or directory in no directory. ("Reclaimed N unused
//     clusters"; fsck.fat -a saves them as FSCKnnnn.REC, the name is
//     lost)
//  7. FAT entries of freed chains, to copy 1 first: after it the volume
//     reads as the new one. ("FATs differ but appear to be intact.
//     Using first FAT." until the other copies are written)
//  8. FAT32 only: FSInfo's free count and next-free hint. (the new
//     volume, clean)
//
// A sector write is assumed atomic; a write of several sectors may land
// in part (the crash test writes half of one and then dies). The steps'
// order on stable storage depends on the flushes: a device without
// Flush or Sync is trusted to keep the order of writes. If ctx is done
// before step 2, Commit returns without having changed anything on the
// device; from step 2 on it finishes. A write error from step 2 on
// leaves the FS unusable and the volume in one of the states above.
// fsck.fat -a repairs every one of them without losing an entry that
// was in the old or the new tree. TestCrash kills a child process at
// every write of a Commit, whole and torn, and checks all of this with
// fsck.fat and mtools.
//
// # Security
//
// The volume is untrusted input. Nothing is allocated from an unchecked
// field: the FAT is read a sector at a time (at most the FAT's size,
// which fits in the volume), directories are at most 2 MiB, a file's
// chain is at most its size in clusters and never longer than the
// volume's cluster count, and lookups stop at a directory entry that
// loops. Guest names never reach outside the guest: names holding '/'
// or NUL are reported as corruption rather than handed to callers who
// might join them to a host path. FuzzOpen opens, walks, reads, edits
// and commits mutated real volumes.
package fat
