package image

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// FileRun reports how the file system stores the length bytes of f from
// off: as a hole (zero is true; so is the space past the end of the file)
// or as data, and how many bytes from off that run covers, at most length.
// A file system without SEEK_DATA and SEEK_HOLE reports everything as
// data. QEMU's file driver answers block status queries this way, which
// shows through formats whose data runs are plain file ranges (a static
// VDI, a qcow2 image with preallocated metadata).
func FileRun(f *os.File, off, length int64) (zero bool, n int64) {
	fd := int(f.Fd())
	data, err := unix.Seek(fd, off, unix.SEEK_DATA)
	switch {
	case errors.Is(err, unix.ENXIO): // a hole up to the end of the file, or past it
		return true, length
	case err != nil: // no hole support
		return false, length
	case data > off:
		return true, min(length, data-off)
	}
	if hole, err := unix.Seek(fd, off, unix.SEEK_HOLE); err == nil && hole > off {
		return false, min(length, hole-off)
	}
	return false, length
}
