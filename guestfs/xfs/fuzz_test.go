package xfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/qimg/qimg/internal/imagetest"
)

// Fuzz inputs describe a sparse image, so that seeds made from real file
// systems (32 MiB, mostly zeros) stay a few KiB: records of a 24-bit
// chunk number, a repeat count and 16 bytes, placed at chunk*16 (count+1
// times) in an image of fuzzImageSize zero bytes. Mutating a record
// mutates the file system where it lies. The image is served from a map
// of chunks: nothing of its size is allocated.
const (
	fuzzChunk     = 16
	fuzzRecord    = 4 + fuzzChunk
	fuzzImageSize = 32 << 20
)

// sparseImage is an io.ReaderAt over the chunks a fuzz input sets,
// sorted by chunk number so that reads of zeros cost nothing.
type sparseImage struct {
	at   []int64 // chunk numbers, ascending
	data [][]byte
}

func decodeFuzz(data []byte) *sparseImage {
	chunks := map[int64][]byte{}
	for ; len(data) >= fuzzRecord; data = data[fuzzRecord:] {
		c := int64(binary.LittleEndian.Uint32(data[:4]) & 0xffffff)
		for n := int(data[3]); n >= 0 && c*fuzzChunk < fuzzImageSize; n, c = n-1, c+1 {
			chunks[c] = data[4:fuzzRecord]
		}
	}
	img := &sparseImage{at: slices.Sorted(maps.Keys(chunks))}
	for _, c := range img.at {
		img.data = append(img.data, chunks[c])
	}
	return img
}

func (s *sparseImage) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= fuzzImageSize {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > fuzzImageSize-off {
		n = int(fuzzImageSize - off)
	}
	clear(p[:n])
	i, _ := slices.BinarySearch(s.at, off/fuzzChunk)
	for ; i < len(s.at) && s.at[i]*fuzzChunk < off+int64(n); i++ {
		start := s.at[i] * fuzzChunk
		lo, hi := max(start, off), min(start+fuzzChunk, off+int64(n))
		copy(p[lo-off:hi-off], s.data[i][lo-start:hi-start])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func encodeFuzz(img []byte) []byte {
	var out []byte
	for at := 0; at+fuzzChunk <= len(img) && at < fuzzImageSize; at += fuzzChunk {
		c := img[at : at+fuzzChunk]
		if bytes.Count(c, []byte{0}) == fuzzChunk {
			continue
		}
		n := 0
		for n < 255 && at+2*fuzzChunk <= len(img) && bytes.Equal(c, img[at+fuzzChunk:at+2*fuzzChunk]) {
			n++
			at += fuzzChunk
		}
		rec := binary.LittleEndian.AppendUint32(nil, uint32((at-n*fuzzChunk)/fuzzChunk))
		rec[3] = byte(n)
		out = append(append(out, rec...), c...)
	}
	return out
}

// walkAll opens, stats and reads everything in fsys, as a guest
// inspection would, with bounds so a hostile file size cannot make the
// walk slow: what is being fuzzed is the parsing, not the patience.
func walkAll(t testing.TB, fsys *FS) {
	visited := 0
	check := func(err error) {
		var pe *fs.PathError
		if err != nil && errors.As(err, &pe) {
			err = pe.Err
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrInvalid) {
			imagetest.CheckError(t, "walk", "", err)
		}
	}
	fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			check(err)
			return nil
		}
		if visited++; visited > 500 {
			return fs.SkipAll
		}
		_, err = fsys.Lstat(p)
		check(err)
		_, err = fsys.Xattrs(p)
		check(err)
		if d.Type()&fs.ModeSymlink != 0 {
			_, err = fsys.ReadLink(p)
			check(err)
		}
		if f, err := fsys.Open(p); err == nil {
			io.Copy(io.Discard, io.LimitReader(f, 1<<20))
			f.Close()
		} else {
			check(err)
		}
		return nil
	})
}

// seedImages are the gzipped file systems in testdata every fuzz run
// starts from (the example's, and its v4 twin).
var seedImages = []string{"example.img.gz", "example-v4.img.gz"}

func FuzzOpen(f *testing.F) {
	for _, name := range seedImages {
		raw := gunzipped(f, name)
		f.Add(encodeFuzz(raw))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img := decodeFuzz(data)
		fsys, err := Open(img, fuzzImageSize, "fuzz")
		if err != nil {
			imagetest.CheckError(t, "Open", "fuzz", err)
			return
		}
		fsys.Info()
		walkAll(t, fsys)
	})
}

// gunzipped returns a testdata image unpacked.
func gunzipped(t testing.TB, name string) []byte {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "img")
	if err := imagetest.Gunzip(filepath.Join("testdata", name), dst); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestSeedsRoundTrip checks the fuzz encoding serves the seed images
// byte for byte, and that they read whole through it.
func TestSeedsRoundTrip(t *testing.T) {
	for _, name := range seedImages {
		raw := gunzipped(t, name)
		img := decodeFuzz(encodeFuzz(raw))
		got := make([]byte, len(raw))
		if _, err := img.ReadAt(got, 0); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if !bytes.Equal(got, raw) {
			t.Fatalf("%s: the fuzz encoding does not round-trip", name)
		}
		fsys, err := Open(img, fuzzImageSize, name)
		if err != nil {
			t.Fatal(err)
		}
		walkAll(t, fsys)
		if data, err := fs.ReadFile(fsys, "home/guest/escape"); err != nil || !bytes.HasPrefix(data, []byte("NAME=")) {
			t.Fatalf("%s: %q, %v", name, data, err)
		}
	}
}

// TestMakeTestdata remakes testdata/example.img.gz and its v4 twin when
// QIMG_XFS_TESTDATA=1 (they are committed, so the example and the fuzz
// seeds need no xfsprogs).
func TestMakeTestdata(t *testing.T) {
	if os.Getenv("QIMG_XFS_TESTDATA") != "1" {
		t.Skip("set QIMG_XFS_TESTDATA=1 to remake the images")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "os-release"), []byte("NAME=\"Example Linux\"\nID=example\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("Hello from inside the guest.\n"), 0o644)
	proto := fmt.Sprintf(exampleProto, dir, dir)
	pf := filepath.Join(dir, "proto")
	os.WriteFile(pf, []byte(proto), 0o644)
	for name, opt := range map[string]string{"example.img": "crc=1", "example-v4.img": "crc=0"} {
		img := filepath.Join(dir, name)
		os.WriteFile(img, nil, 0o644)
		os.Truncate(img, 32<<20)
		run(t, "mkfs.xfs", "-q", "-f", "-d", "agcount=2", "-L", "example", "-m", opt+",uuid=5d2a6f1c-2f6b-4c1e-9b2e-0c1d2e3f4a5b", "-p", pf, img)
		if opt == "crc=1" {
			run(t, "xfs_db", "-x", "-c", "path /home/guest/hello.txt", "-c", "attr_set -u -v 5 comment", img)
		}
		repairClean(t, img)
		run(t, "sh", "-c", "gzip -9 -n -c "+img+" > testdata/"+name+".gz")
	}
}

// exampleProto is the prototype of the example images (%s: the folder
// holding os-release and hello.txt).
const exampleProto = `/dev/null
0 0
d--755 0 0
etc d--755 0 0
 os-release ---644 0 0 %s/os-release
 $
home d--755 0 0
 guest d--750 1000 1000
  hello.txt ---644 1000 1000 %s/hello.txt
  release l--777 1000 1000 /etc/os-release
  escape l--777 1000 1000 ../../../../../etc/os-release
  $
 $
$
`
