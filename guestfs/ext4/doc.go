// Package ext4 reads ext2, ext3 and ext4 file systems inside disk images
// without a kernel, KVM or root: the first file system of qimg's
// libguestfs replacement. It is read-only for now; the write side will
// grow in this package on the same structures.
//
// Open takes any io.ReaderAt holding the file system (an image.Image
// from format.Open, or an image.Section of one partition) and returns an
// *FS that implements io/fs.FS, fs.ReadDirFS, fs.StatFS and
// fs.ReadLinkFS, so fs.WalkDir, fs.ReadFile and fs.Glob work on guests.
// FileInfo.Sys returns the *Inode (owner, permissions, flags, times with
// nanoseconds and creation time); Xattrs lists extended attributes.
//
// # What is read
//
// Block sizes of 1 to 64 KiB; 32- and 64-bit group descriptors (64bit,
// desc_size), flex_bg and meta_bg placement, bigalloc clusters, uninit_bg
// and metadata_csum groups whose inode tables are partly or not
// initialised; 128-byte and larger inodes with their extra fields; extent trees of any depth up to
// the kernel's 5 and ext2/ext3 block maps up to triple indirect blocks;
// sparse files (holes and unwritten extents read as zeros) past 4 GiB;
// inline_data files, directories and symbolic links; directories with or
// without htree indexes (every block is scanned; index blocks hide behind
// entries of inode 0); fast, slow and inline symbolic links; extended
// attributes in the inode, in an attribute block and in their own inode
// (ea_inode), named with their namespace (user., trusted., security.,
// system., system.posix_acl_access and _default, whose values are
// returned in ext4's on-disk ACL encoding).
//
// The journal is not replayed (as debugfs reads): a file system that
// needs recovery is read as it stands, and Info says so. casefold
// directories are read, but names are matched exactly. File systems
// using compression, encryption, an external journal device (journal_dev)
// or Lustre's dirdata, and unknown incompatible features, are refused with
// image.ErrUnsupported naming the feature as mke2fs does.
//
// # What is verified
//
// The superblock's magic and geometry (block and inode counts agree with
// the group count, the file system fits in the image). With
// metadata_csum, the CRC32c checksums of the superblock, of every group
// descriptor, inode, extent tree block, directory leaf block and
// attribute block read; htree index blocks' checksums and the crc16 of
// uninit_bg descriptors are not checked. Every block number is checked
// against the block count before it is read; extent nodes' magic, entry
// counts, order and depth (which falls by one per level, so trees cannot
// loop); directory records' lengths against their block; attribute
// entries and values against their area. Mismatches are
// image.ErrCorrupt errors naming the image and the structure.
//
// # Security
//
// The image is untrusted input. Nothing is allocated from an unchecked
// field: descriptors are read on demand into a bounded cache, listings
// stop at a few million entries, a directory reads no more blocks than
// the file system has, symbolic link targets are at most 4096 bytes, and
// lookups follow at most 40 links, as Linux does. Guest names and links
// never reach the host: symbolic links are resolved inside the file
// system (an absolute target starts at the guest's root, ".." stops
// there), and directory entries whose names hold '/' or NUL are reported
// as corruption rather than handed to callers who might join them to a
// host path. FuzzOpen opens, walks and reads mutated real file systems.
package ext4
