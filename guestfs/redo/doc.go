// Package redo makes the edits of filesystems that have no journal of
// their own (ext2, ext4 made without one, FAT) all or nothing, with a
// redo (write-ahead) log kept in a file beside the image.
//
// A Log wraps the device window a filesystem edits (an
// image.WritableImage): until Commit, writes are appended to the log file
// and the device is not touched; reads see the device with the logged
// writes laid over them, through an in-memory index of extents whose size
// grows with the number of writes, not with their bytes. Commit writes a
// table of the final extents and a footer (CRC32C of the data, the table
// and the header, and the header's random nonce), syncing the log before
// and after the footer and then its directory: that is the moment the edit
// happens. Only then are the extents written to the device, the device
// flushed, the log removed and its directory synced. ext4 and fat call a
// device's Commit at the end of their own, so the filesystem's Commit is
// the log's.
//
// After a crash, the next edit of the image first calls Read: a log with
// no valid footer of its own never committed and none of it reached the
// device, so it is removed (ErrIncomplete, Remove); a committed one is
// replayed onto its device (Pending.Replay), which is safe to repeat if
// it is itself interrupted, then removed. Read-only users can look at the
// image as the edit leaves it without writing anything (Pending.View).
// Each log names its Target (device, window, sizes, what the device
// holds); package guestfs replays a log only onto the device it names and
// refuses, naming both files, a log that does not match the image. The
// log does not record what the device held before, so an image changed by
// another program after the crash and before qimg finishes the edit is
// not detected unless its size or layout changed.
//
// The file is a header (512 bytes), the data of every write in the order
// they came, a table of 24-byte entries (device offset, length, position
// of the bytes in the log or -1 for zeros), sorted and disjoint, and a
// 64-byte footer. Read checks all of it in one pass of the file, with no
// allocation sized from a field: the table is read in batches, a view
// searches it in the file. A file that is not a log, and a committed log
// whose checksums fail, are errors naming the file (image.ErrCorrupt).
// FuzzRead reads, views and replays mutated logs.
package redo
