package detect

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Content is what a device holds.
type Content struct {
	// Type is blkid's TYPE ("ext4", "xfs", ...), or "" when nothing is
	// recognised.
	Type  string
	Label string
	UUID  string
}

// prober recognises one kind of content from the device's bytes.
type prober func(d *device) (Content, bool)

// probers run in blkid's spirit: signatures at fixed places that cannot
// collide come first; FAT, whose boot sector shape NTFS and others share,
// comes after NTFS.
var probers = []prober{probeLUKS, probeLVM, probeXFS, probeBtrfs, probeExt, probeSwap, probeNTFS, probeFAT, probeISO9660}

// Probe tells what the device r of size bytes holds. An unrecognised
// device gives a zero Content and no error; an error means the device
// could not be read.
func Probe(r io.ReaderAt, size int64) (Content, error) {
	d := &device{r: r, size: size}
	for _, p := range probers {
		if c, ok := p(d); ok {
			return c, nil
		}
		if d.err != nil {
			return Content{}, d.err
		}
	}
	return Content{}, d.err
}

// device reads fixed places of the device, remembering the first real
// read error (a short device is not an error: its signatures are absent).
type device struct {
	r    io.ReaderAt
	size int64
	err  error
}

// at returns n bytes at off, or nil when the device is shorter.
func (d *device) at(off int64, n int) []byte {
	if off < 0 || off+int64(n) > d.size {
		return nil
	}
	b := make([]byte, n)
	got, err := d.r.ReadAt(b, off)
	if got == n {
		return b
	}
	if err != nil && !errors.Is(err, io.EOF) && d.err == nil {
		d.err = fmt.Errorf("reading %d bytes at %d: %w", n, off, err)
	}
	return nil
}

// uuid formats 16 bytes as blkid does: 8-4-4-4-12 lower-case hex.
func uuid(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// cstring is a NUL-padded (or NUL-terminated) name.
func cstring(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
