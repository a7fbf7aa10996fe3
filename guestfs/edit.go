package guestfs

import (
	"context"
	"io"
	"slices"

	"github.com/qimg/qimg/guestfs/ext4"
	"github.com/qimg/qimg/guestfs/fat"
	"github.com/qimg/qimg/guestfs/redo"
	"github.com/qimg/qimg/image"
)

// editor opens one type of filesystem for editing.
type editor struct {
	open func(dev image.WritableImage, name string) (WritableFileSystem, error)
	// journaled reports whether the filesystem on dev commits all or
	// nothing by itself; the others need a redo log for that.
	journaled func(dev io.ReaderAt, size int64, name string) (bool, error)
}

// editors open the filesystems qimg edits, by blkid type.
var editors = map[string]editor{
	"ext2": {openExtWritable, extJournaled},
	"ext3": {openExtWritable, extJournaled},
	"ext4": {openExtWritable, extJournaled},
	"vfat": {func(dev image.WritableImage, name string) (WritableFileSystem, error) {
		return fat.OpenWritable(dev, dev.Size(), name)
	}, noJournal},
}

func openExtWritable(dev image.WritableImage, name string) (WritableFileSystem, error) {
	return ext4.OpenWritable(dev, dev.Size(), name)
}

// extJournaled reports whether the file system has a journal (blkid
// names an ext4 without one "ext4" too).
func extJournaled(dev io.ReaderAt, size int64, name string) (bool, error) {
	f, err := ext4.Open(dev, size, name)
	if err != nil {
		return false, err
	}
	return slices.Contains(f.Info().Features, "has_journal"), nil
}

func noJournal(io.ReaderAt, int64, string) (bool, error) { return false, nil }

var (
	_ WritableFileSystem = (*ext4.FS)(nil)
	_ WritableFileSystem = (*fat.FS)(nil)
)

// Editable lists the filesystem types MountWritable opens.
func Editable() []string { return sortedKeys(editors) }

// EditOption configures MountWritable.
type EditOption func(*editConfig)

type editConfig struct {
	redoLog string
	trace   redo.Trace
}

// WithRedoLog makes the commits of filesystems that have no journal of
// their own (ext2, ext3 and ext4 made without one, FAT) all or nothing:
// their writes go to a redo log at path (package redo; the CLI keeps it
// beside the image, RedoLogPath) and reach the device only once the log
// is complete and durable. MountWritable first finishes or drops an
// edit a log at path holds (Recover). A journaled ext3/ext4 commits
// through its journal and writes no log.
func WithRedoLog(path string) EditOption { return func(c *editConfig) { c.redoLog = path } }

// WithRedoTrace has t called before each step of the redo log, in
// recovery and in commits (for progress, and for crash tests).
func WithRedoTrace(t redo.Trace) EditOption { return func(c *editConfig) { c.trace = t } }

// MountWritable opens the filesystem on the device named dev for
// editing; the disk image must have been opened writable. Changes reach
// the image at the filesystem's Commit: all or nothing for a journaled
// ext3/ext4, and for the others with WithRedoLog; without it, a crash in
// the middle of an ext2 or FAT commit leaves a filesystem that needs
// fsck. Filesystems qimg reads but does not edit (XFS, ISO9660) are
// refused with a message that says so.
func (d *Disk) MountWritable(dev string, opts ...EditOption) (WritableFileSystem, error) {
	var c editConfig
	for _, o := range opts {
		o(&c)
	}
	dv, err := d.readable(dev)
	if err != nil {
		return nil, err
	}
	if dv.Content.Type == "ntfs" {
		return nil, image.FileErrorf(d.Name, "%s is NTFS (Windows), which qimg reads but does not edit: configure Windows at boot with cloudbase-init and a config drive (qimg seed --config-drive), and upload it with the Glance properties a Windows image needs (os_type=windows, hw_disk_bus, hw_vif_model): %w", dv.Name, image.ErrUnsupported)
	}
	ed, ok := editors[dv.Content.Type]
	if !ok {
		return nil, d.unsupported(dv, "edits", Editable())
	}
	w, ok := dv.Image.(image.WritableImage)
	if !ok {
		return nil, image.FileErrorf(d.Name, "%s: the image was opened read-only: %w", dv.Name, image.ErrInvalidArgument)
	}
	name := d.Name + ":" + dv.Name
	if c.redoLog == "" {
		return ed.open(w, name)
	}
	if _, err := d.Recover(context.Background(), c.redoLog, opts...); err != nil {
		return nil, err
	}
	journaled, err := ed.journaled(w, w.Size(), name)
	if err != nil || journaled {
		if err != nil {
			return nil, err
		}
		return ed.open(w, name)
	}
	log, err := redo.New(w, c.redoLog, d.redoTarget(dv), redo.WithTrace(c.trace))
	if err != nil {
		return nil, err
	}
	return ed.open(log, name)
}
