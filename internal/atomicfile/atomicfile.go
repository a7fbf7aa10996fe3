// Package atomicfile replaces a file in one step: content is written to a
// temporary file beside the target and renamed over it only when complete,
// so a crash leaves the old file or the complete new one, never a mix.
package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
)

// Write creates a temporary file beside path and calls fill with it. When
// fill succeeds the file is closed and renamed to path; otherwise it is
// removed. fill may close the file itself (an image that owns its file
// closes it). With durable set the file and the directory are synced, so
// the new content also survives a power loss; without it a killed process
// still leaves the old file or the complete new one.
func Write(path string, durable bool, fill func(f *os.File) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".qimg-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := fill(tmp); err != nil {
		return err
	}
	if durable {
		if err := tmp.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
			return err
		}
	}
	if err := tmp.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if durable {
		return syncDir(dir)
	}
	return nil
}

// syncDir makes the rename durable.
func syncDir(dir string) error {
	SyncDir(dir) // not supported everywhere; the rename itself is done
	return nil
}

// SyncDir makes the creations, renames and removals of files in dir
// durable (fsync of the directory). A file system that cannot sync a
// directory (EINVAL) is not an error: it keeps no such order to wait for.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
