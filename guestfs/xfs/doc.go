// Package xfs reads XFS file systems inside disk images without a
// kernel, KVM or root, so that qimg can list, read and inspect the
// CentOS, RHEL, Rocky, Alma and Fedora roots that live on XFS. It is
// read-only: editing XFS is refused elsewhere.
//
// Open takes any io.ReaderAt holding the file system (an image.Image
// from format.Open, or an image.Section of one partition) and returns an
// *FS that implements io/fs.FS, fs.ReadDirFS, fs.StatFS, fs.ReadFileFS
// and fs.ReadLinkFS, so fs.WalkDir, fs.ReadFile and fs.Glob work on
// guests. FileInfo.Sys returns the *Inode (owner, mode, link count,
// inode number, times with nanoseconds and, on v5, the creation time);
// Xattrs lists extended attributes.
//
// # What is read
//
// Version 4 (crc=0) and version 5 (crc=1) file systems as mkfs.xfs makes
// them, with ftype, finobt, reflink, sparse inodes, bigtime, inobtcount,
// rmapbt and nrext64; block sizes of 512 bytes to 64 KiB, directory
// blocks of several file system blocks, inodes of 256 bytes to 2 KiB,
// any number of allocation groups (inode and block numbers are
// AG-relative and translated with agblklog and inopblog). Inode forks in
// local, extents and btree (bmbt) format; directories in short form and
// in block, leaf and node form (every data block is read; the hash index
// and free-space blocks are not needed); symbolic links in the inode and
// in blocks; shared (reflinked) extents; holes and unwritten extents
// read as zeros. Extended attributes in short form, in leaf blocks and
// under a dabtree node, with values in the leaf or in blocks of their
// own, named user., trusted. or security. as Linux names them.
//
// The log is not replayed (as xfs_db reads): a file system that was not
// unmounted cleanly is read as it stands on disk. Files on a realtime
// device and unknown incompatible features are refused with
// image.ErrUnsupported.
//
// # What is verified
//
// The superblock's magic and geometry (block, sector, inode and AG sizes
// agree with their logs, the block count with the AGs and the image).
// On v5 file systems, the CRC32c of the superblock and of every inode,
// block map btree block, directory data block, symbolic link block and
// attribute leaf, node and value block read, with their self-describing
// headers: the magic, the block's own address, the file system's UUID
// and the owning inode. Every inode number and block number is checked
// against the AG geometry and the file system size before it is read;
// extents against the AG they start in, their order and the counts the
// inode records; btree levels fall by one per step (so no walk can
// loop), record counts fit their block; directory and attribute entries
// lie within their block, and entries carry their own offset as XFS
// writes it. Mismatches are image.ErrCorrupt errors naming the image and
// the structure.
//
// # Security
//
// The image is untrusted input. Nothing is allocated from an unchecked
// field: an inode's extents are collected up to the count it records
// and at most 2 Mi, listings stop at 4 Mi entries, a directory is read
// no further than its size, attribute values are at most 64 KiB and
// symbolic link targets 1 KiB, attribute leaves are visited once each,
// and lookups follow at most 40 links, as Linux does. Guest names and
// links never reach the host: symbolic links are resolved inside the
// file system (an absolute target starts at the guest's root, ".."
// stops there), and directory entries whose names hold '/' or NUL are
// reported as corruption rather than handed to callers who might join
// them to a host path. FuzzOpen opens, walks and reads mutated real file
// systems.
package xfs
