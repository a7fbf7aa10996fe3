// Package ext4 reads and edits ext2, ext3 and ext4 file systems inside
// disk images without a kernel, KVM or root: the first file system of
// qimg's libguestfs replacement.
//
// Open takes any io.ReaderAt holding the file system (an image.Image
// from format.Open, or an image.Section of one partition) and returns an
// *FS that implements io/fs.FS, fs.ReadDirFS, fs.StatFS and
// fs.ReadLinkFS, so fs.WalkDir, fs.ReadFile and fs.Glob work on guests.
// FileInfo.Sys returns the *Inode (owner, permissions, flags, times with
// nanoseconds and creation time); Xattrs lists extended attributes.
// OpenEntry and ReadLinkEntry act on an entry a listing returned, by its
// inode number, so a walk of a tree (copy-out) scans each directory once
// and never looks a path up from the root; such a walker must itself
// stop at a directory it meets twice, which only a corrupt file system
// holds.
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
// A journal that needs recovery is replayed in memory (the image is not
// changed): reads see what the kernel would see after mounting it. casefold
// directories are read, but names are matched exactly. File systems
// using compression, encryption, an external journal device (journal_dev)
// or Lustre's dirdata, and unknown incompatible features, are refused with
// image.ErrUnsupported naming the feature as mke2fs does.
//
// # Editing
//
// OpenWritable opens a file system on a Device (an image.WritableImage
// or a window of one) for editing: WriteFile (create or replace),
// Truncate, Mkdir, Remove, RemoveAll, Rename (across directories,
// replacing), Link, Symlink (fast and slow), Chmod, Chown, Chtimes,
// SetXattr and RemoveXattr. Changes are staged in memory: metadata
// blocks in a transaction, file data in blocks free both now and at the
// last commit; reads see them. An operation that fails (a missing path,
// no space left half way) stages nothing: what it changed is put back.
// A change larger than the journal can log fails at Commit before
// anything is written. Commit writes the changes all or nothing: with a
// journal (ext3, ext4) the metadata is logged as one jbd2 transaction in
// the kernel's format (block tags of 32 or 64 bits, checksums v2/v3 when
// the journal has them), made the log's start, then checkpointed and the
// journal emptied; a crash at any point leaves the old file system or a
// journal that the kernel, e2fsck and OpenWritable replay into the new
// one. An ext2 file system (or an ext4 made without a journal) has none:
// its blocks are written in place after the data, so a crash in between
// needs e2fsck, unless the Device is a redo log (package guestfs/redo,
// which guestfs.Disk.MountWritable uses with WithRedoLog): FS.Commit ends
// with the device's Commit, and the edit is then all or nothing too. A
// journal that needs recovery is replayed by OpenWritable before anything
// else.
//
// Allocation keeps what e2fsck checks right: block and inode bitmaps
// (initialising BLOCK_UNINIT and INODE_UNINIT groups, with their
// checksums), group descriptor counts and checksums (metadata_csum or
// uninit_bg's CRC16), the superblock's free counts, i_blocks, link counts
// (dir_nlink past 65000 subdirectories). Files get extent trees of any
// depth (with their checksums) on ext4 and block maps with indirect
// blocks on ext2/ext3; deleting frees every data and tree block and the
// attribute block's reference. Directories grow by a block when full;
// htree directories get entries in the leaf their hash (legacy, half_md4
// or tea, signed or unsigned) names, leaves split by hash, and the index
// grows a level or splits its nodes as the kernel's does. Attributes
// (SELinux labels) stay in place through every rewrite, and are set in
// the inode while they fit, then in a block, sorted as the kernel
// searches them. Not edited: inline_data directories and files,
// casefolded or encrypted directories, and file systems with bigalloc,
// meta_bg, ea_inode, quota or unknown read-only features (refused at
// OpenWritable with image.ErrUnsupported).
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
