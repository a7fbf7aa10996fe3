// Package imagetest holds the checks every format's tests and fuzz
// targets run on an image.Image: whatever the input, errors are classified
// and name the file, reads and extents agree, and nothing panics.
package imagetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

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

// DiskRaw writes a disk-like raw file of size bytes: 256 KiB pieces of
// random data, text, written zeros and holes, chosen by seed, with data in
// the last (possibly partial) sector so the tail is exercised.
func DiskRaw(t testing.TB, dir string, size int64, seed uint64) string {
	t.Helper()
	p := filepath.Join(dir, fmt.Sprintf("disk-%d-%d.raw", size, seed))
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, uint64(size)))
	const piece = 256 << 10
	buf := make([]byte, piece)
	for off := int64(0); off < size; off += piece {
		n := min(piece, size-off)
		switch r.IntN(5) {
		case 0, 1: // random data
			for i := range buf[:n] {
				buf[i] = byte(r.Uint32())
			}
		case 2: // text, mostly zeros around it
			clear(buf[:n])
			for i := int64(r.IntN(4096)); i < n; i += 5000 {
				copy(buf[i:n], fmt.Sprintf("offset %d of %s", off+i, p))
			}
		case 3: // written zeros
			clear(buf[:n])
		case 4: // a hole
			continue
		}
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			t.Fatal(err)
		}
	}
	// Whole zero blocks whatever the seed: written zeros in the second
	// MiB, a hole in the fourth.
	if size >= 2<<20 {
		if _, err := f.WriteAt(make([]byte, 1<<20), 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	if size >= 5<<20 {
		if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 3<<20, 1<<20); err != nil {
			if _, err := f.WriteAt(make([]byte, 1<<20), 3<<20); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := f.WriteAt([]byte("the last bytes"), max(0, size-14)); err != nil {
		t.Fatal(err)
	}
	return p
}

// ConcurrentReads reads random ranges of img from 8 goroutines (run it
// under -race) and fails unless each read returns what want holds, to the
// end of the disk, and Extent succeeds on the same range. Each goroutine
// does reads of 1 to maxLen bytes from random offsets, some past the end.
func ConcurrentReads(t testing.TB, img image.Image, want []byte, seed uint64, reads, maxLen int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), seed))
			buf := make([]byte, maxLen)
			for range reads {
				off := r.Int64N(img.Size())
				n := 1 + r.IntN(maxLen)
				got, err := img.ReadAt(buf[:n], off)
				exp := want[off:min(off+int64(n), int64(len(want)))]
				if got != len(exp) || (err != nil && err != io.EOF) || !bytes.Equal(buf[:got], exp) {
					errs <- fmt.Errorf("ReadAt(%d bytes at %d) = %d, %v", n, off, got, err)
					return
				}
				if _, err := img.Extent(off, int64(n)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
