// Package fstree holds what qimg's inode-based filesystem readers (ext2/3/4
// and XFS) share above their on-disk formats: path resolution that never
// leaves the guest, bounded caches of inodes and directories, directory
// listings, and the fs.File that reads a file's data.
//
// A reader supplies its inodes through small interfaces (Tree, Data,
// InfoSource); everything here is format-free and bounded: a hostile
// image costs at most the limits a reader passes in, never an allocation
// sized from a field on disk.
package fstree
