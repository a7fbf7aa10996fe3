package image

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// HostFiler is an image whose own data runs are stored verbatim in a host
// file, so that a copy can move them from file to file inside the kernel
// instead of through memory.
type HostFiler interface {
	// HostFile is the file that holds the image's data: an extent at
	// depth 0 that is data, neither zero nor compressed, and has a
	// HostOffset holds exactly the guest bytes at that offset of it. Nil
	// when the image stores no guest bytes verbatim (an encrypted image)
	// or its storage is not a host file.
	HostFile() *os.File
}

// FileRangeWriter is a writable image that can take the bytes of a write
// from a range of a host file, copied inside the kernel.
type FileRangeWriter interface {
	// WriteAtFrom writes p at off exactly as WriteAt does (the same
	// allocation, ordering and result); the caller promises that src
	// holds the same bytes as p from srcOff, and the image may copy them
	// from there, in the kernel, rather than from p.
	WriteAtFrom(p []byte, off int64, src *os.File, srcOff int64) (int, error)
}

// CopyFileRange writes p to dst at dstOff like dst.WriteAt, but takes the
// bytes from src at srcOff (which must hold the same bytes as p) with
// copy_file_range, so that they do not pass through user space. What the
// kernel will not copy (another file system, a kernel without the call,
// the end of src) is written from p, so the result never depends on the
// file systems.
func CopyFileRange(dst *os.File, dstOff int64, p []byte, src *os.File, srcOff int64) (int, error) {
	done := 0
	for done < len(p) {
		so, do := srcOff+int64(done), dstOff+int64(done)
		n, err := unix.CopyFileRange(int(src.Fd()), &so, int(dst.Fd()), &do, len(p)-done, 0)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err == nil && n > 0:
			done += n
			continue
		case err != nil && !kernelRefused(err):
			return done, &os.PathError{Op: "copy_file_range", Path: dst.Name(), Err: err}
		}
		// Refused, or src ends early (the bytes past its end are in p).
		n, err = dst.WriteAt(p[done:], dstOff+int64(done))
		return done + n, err
	}
	return done, nil
}

// kernelRefused reports whether copy_file_range failed because it cannot
// copy between these files at all, rather than because of an I/O error.
func kernelRefused(err error) bool {
	for _, refused := range []error{unix.EXDEV, unix.EINVAL, unix.ENOSYS, unix.EOPNOTSUPP} {
		if errors.Is(err, refused) {
			return true
		}
	}
	return false
}
