package image

import (
	"errors"
	"io"
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
	// CopyFrom writes the n bytes that src holds at srcOff to off, as
	// WriteAt would write them, copied inside the kernel where it can
	// (qemu-img -C: nobody reads them), else read and written through a
	// buffer. Bytes past the end of src are written as zeros.
	CopyFrom(off, n int64, src *os.File, srcOff int64) error
}

// CopyFileRange writes p to dst at dstOff like dst.WriteAt, but takes the
// bytes from src at srcOff (which must hold the same bytes as p) with
// copy_file_range, so that they do not pass through user space. What the
// kernel will not copy (another file system, a kernel without the call,
// the end of src) is written from p, so the result never depends on the
// file systems.
func CopyFileRange(dst *os.File, dstOff int64, p []byte, src *os.File, srcOff int64) (int, error) {
	done, err := copyInKernel(dst, dstOff, src, srcOff, int64(len(p)))
	if err != nil || done == int64(len(p)) {
		return int(done), err
	}
	// Refused, or src ends early (the bytes past its end are in p).
	n, err := dst.WriteAt(p[done:], dstOff+done)
	return int(done) + n, err
}

// CopyFileData writes the n bytes src holds at srcOff to dst at
// dstOff with copy_file_range, and where the kernel will not copy them,
// reads and writes them through a buffer; bytes past the end of src are
// written as zeros (a raw image's last partial sector reads as zeros).
func CopyFileData(dst *os.File, dstOff int64, src *os.File, srcOff, n int64) error {
	done, err := copyInKernel(dst, dstOff, src, srcOff, n)
	if err != nil || done == n {
		return err
	}
	buf := make([]byte, min(n-done, 1<<20))
	for done < n {
		b := buf[:min(int64(len(buf)), n-done)]
		k, err := src.ReadAt(b, srcOff+done)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		clear(b[k:])
		if _, err := dst.WriteAt(b, dstOff+done); err != nil {
			return err
		}
		done += int64(len(b))
	}
	return nil
}

// KernelCopies reports whether copy_file_range copies from src to dst at
// all (not across most file systems, nor on kernels without it): the
// kernel checks a copy of no bytes as it checks any other.
func KernelCopies(dst, src *os.File) bool {
	var so, do int64
	_, err := unix.CopyFileRange(int(src.Fd()), &so, int(dst.Fd()), &do, 0, 0)
	return err == nil
}

// copyInKernel copies up to n bytes with copy_file_range and returns how
// many it copied: fewer, with no error, when the kernel refuses these
// files or src ends early.
func copyInKernel(dst *os.File, dstOff int64, src *os.File, srcOff, n int64) (int64, error) {
	var done int64
	for done < n {
		so, do := srcOff+done, dstOff+done
		k, err := unix.CopyFileRange(int(src.Fd()), &so, int(dst.Fd()), &do, int(min(n-done, 1<<30)), 0)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err == nil && k > 0:
			done += int64(k)
			continue
		case err != nil && !kernelRefused(err):
			return done, &os.PathError{Op: "copy_file_range", Path: dst.Name(), Err: err}
		}
		return done, nil
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
