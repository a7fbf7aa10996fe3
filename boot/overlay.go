package boot

import (
	"bytes"
	"io"
	"os"
	"path/filepath"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/image"
)

// createOverlay writes a qcow2 image at path whose backing file is base
// (of format baseFormat; "" probes it), so that the guest's writes land in
// the overlay and base stays as it was. QEMU opens a backing file
// read-only.
func createOverlay(path, base, baseFormat string) error {
	abs, err := filepath.Abs(base)
	if err != nil {
		return err
	}
	// Open the image first, so that a damaged one is refused with an
	// error that names it rather than the overlay.
	img, baseFormat, err := format.Open(abs, format.OpenOptions{Format: baseFormat})
	if err != nil {
		return err
	}
	img.Close()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	t, err := format.Create(f, path, format.QCOW2, 0, format.CreateOptions{
		QCOW2: qcow2.CreateOptions{BackingFile: abs, BackingFormat: baseFormat},
	})
	if err != nil {
		f.Close()
		return err
	}
	return t.Close()
}

// IsISO9660 reports whether the image at path is an ISO 9660 file system
// (its first volume descriptor says CD001), which a guest expects on a
// CD-ROM.
func IsISO9660(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	if !st.Mode().IsRegular() {
		return false, image.FileErrorf(path, "seed is not a regular file: %w", image.ErrInvalidArgument)
	}
	magic := make([]byte, 5)
	if _, err := f.ReadAt(magic, 32769); err == io.EOF || err == io.ErrUnexpectedEOF {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return bytes.Equal(magic, []byte("CD001")), nil
}
