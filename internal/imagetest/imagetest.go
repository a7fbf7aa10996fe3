// Package imagetest holds the checks every format's tests and fuzz
// targets run on an image.Image: whatever the input, errors are classified
// and name the file, reads and extents agree, and nothing panics.
package imagetest

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/qimg/qimg/image"
)

var classes = []error{
	image.ErrWrongFormat, image.ErrCorrupt, image.ErrUnsupported, image.ErrEncrypted,
	image.ErrLimit, image.ErrInvalidArgument, image.ErrReadOnly, image.ErrBackingRefused,
}

// CheckError fails unless err wraps one of the image.Err* classes and, if
// name is not empty, names the file.
func CheckError(t testing.TB, what, name string, err error) {
	t.Helper()
	classified := false
	for _, c := range classes {
		classified = classified || errors.Is(err, c)
	}
	if !classified {
		t.Fatalf("%s: error wraps no image.Err* class: %v", what, err)
	}
	if name != "" && !strings.Contains(err.Error(), name) {
		t.Fatalf("%s: error does not name the file %q: %v", what, name, err)
	}
}

// MaxRead bounds how much of a virtual disk Exercise reads, so that a
// hostile header announcing a huge disk costs a fuzzer little time.
const MaxRead = 16 << 20

var (
	bufMu sync.Mutex // Exercise shares one buffer between fuzz inputs
	buf   = make([]byte, MaxRead)
	zeros = make([]byte, 1<<20)
)

// ErrorCheck judges an error: CheckError, or a stricter one of a format.
type ErrorCheck func(t testing.TB, what, name string, err error)

// Exercise reads the first MaxRead bytes of img in 1 MiB chunks and walks
// its extents, failing on any inconsistency: a short read without an
// error, an error check rejects (nil means CheckError), an extent that
// does not start where asked, is empty or leaves the disk, or a run
// reported as zeros (Zero, or not Data) that does not read as zeros.
func Exercise(t testing.TB, img image.Image, name string, check ErrorCheck) {
	t.Helper()
	if check == nil {
		check = CheckError
	}
	bufMu.Lock()
	defer bufMu.Unlock()
	size := img.Size()
	if size < 0 {
		t.Fatalf("negative size %d", size)
	}
	limit := min(size, MaxRead)
	readOK := make([]bool, (limit+(1<<20)-1)>>20)
	for off := int64(0); off < limit; off += 1 << 20 {
		chunk := buf[off:min(off+1<<20, limit)]
		n, err := img.ReadAt(chunk, off)
		if err != nil && err != io.EOF {
			check(t, "ReadAt", name, err)
			continue
		}
		if n != len(chunk) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", len(chunk), off, n, err)
		}
		readOK[off>>20] = true
	}
	pos := int64(0)
	for i := 0; i < 4096 && pos < size; i++ {
		e, err := img.Extent(pos, size-pos)
		if err != nil {
			check(t, "Extent", name, err)
			return
		}
		if e.Start != pos || e.Length <= 0 || e.End() > size {
			t.Fatalf("Extent(%d) = %+v (size %d)", pos, e, size)
		}
		for o := e.Start; (e.Zero || !e.Data) && o < min(e.End(), limit); {
			k := o >> 20
			end := min(e.End(), limit, (k+1)<<20)
			if readOK[k] && !bytes.Equal(buf[o:end], zeros[:end-o]) {
				t.Fatalf("extent %+v reads as zeros but [%d,%d) does not", e, o, end)
			}
			o = end
		}
		pos = e.End()
	}
}
