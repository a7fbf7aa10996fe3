package iso9660_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/qimg/qimg/guestfs/iso9660"
	"github.com/qimg/qimg/image"
)

// systemArea is the 16 blocks before the first volume descriptor. The
// fuzz input starts after it, so that seeds and mutations are not spent
// on zeros.
const systemArea = 16 * 2048

// fuzzImage makes an image of fuzz input: the system area, the input,
// and zeros to a whole block.
func fuzzImage(data []byte) []byte {
	img := make([]byte, systemArea+len(data)+(2048-len(data)%2048)%2048)
	copy(img[systemArea:], data)
	return img
}

// seedISO writes a small tree with every kind of record the reader
// knows, and returns it without the system area and trailing zeros.
func seedISO(t testing.TB, opts iso9660.Options) []byte {
	items := []item{
		{path: "user-data", data: []byte("#cloud-config\n"), mode: 0o644},
		{path: "openstack/latest/" + string(bytes.Repeat([]byte("n"), 240)), data: []byte("{}"), mode: 0o600},
		{path: "link", target: "openstack/latest", mode: fs.ModeSymlink | 0o777},
		{path: "empty", data: nil, mode: 0o644},
	}
	var buf bytes.Buffer
	if err := iso9660.Write(&buf, build(t, items), opts); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimRight(buf.Bytes()[systemArea:], "\x00")
}

// FuzzOpen: any image opens or fails with an error of a known class;
// what opens can be walked and every file read, without a panic.
func FuzzOpen(f *testing.F) {
	f.Add(seedISO(f, iso9660.Options{VolumeID: "cidata", RockRidge: true, Joliet: true, Time: fixed}))
	f.Add(seedISO(f, iso9660.Options{VolumeID: "config-2", Joliet: true, Time: fixed}))
	f.Fuzz(func(t *testing.T, data []byte) {
		img := fuzzImage(data)
		fsys, err := iso9660.Open(bytes.NewReader(img), int64(len(img)), "fuzz.iso")
		if err != nil {
			for _, class := range []error{image.ErrWrongFormat, image.ErrCorrupt, image.ErrLimit, image.ErrUnsupported} {
				if errors.Is(err, class) {
					return
				}
			}
			t.Fatalf("error of no class: %v", err)
		}
		// Files may share extents, so reading all of them may cost much
		// more than the image size: read at most 4 MiB in all.
		budget := int64(4 << 20)
		_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.Type()&fs.ModeSymlink != 0 {
				_, _ = fsys.ReadLink(p)
				return nil
			}
			if d.IsDir() {
				return nil
			}
			file, err := fsys.Open(p)
			if err != nil {
				return nil
			}
			defer file.Close()
			n, _ := io.Copy(io.Discard, io.LimitReader(file, budget))
			if budget -= n; budget <= 0 {
				return fs.SkipAll
			}
			return nil
		})
	})
}

// TestWriteSeeds rewrites testdata/fuzz/FuzzOpen/seed-rr from the
// writer when QIMG_WRITE_SEEDS is set; the stored seed is what the
// writer made when it was last run.
func TestWriteSeeds(t *testing.T) {
	if os.Getenv("QIMG_WRITE_SEEDS") == "" {
		t.Skip("set QIMG_WRITE_SEEDS=1 to rewrite the fuzz seeds")
	}
	seed := seedISO(t, iso9660.Options{VolumeID: "cidata", RockRidge: true, Joliet: true, Time: fixed})
	dir := filepath.Join("testdata", "fuzz", "FuzzOpen")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	text := "go test fuzz v1\n[]byte(" + strconv.Quote(string(seed)) + ")\n"
	if err := os.WriteFile(filepath.Join(dir, "seed-rr"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
