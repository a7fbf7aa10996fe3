package ntfs_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/qimg/qimg/guestfs/ntfs"
	"github.com/qimg/qimg/internal/imagetest"
)

// Fuzz inputs are patches to testdata/fuzzbase.img.gz, a 2 MiB volume
// made by mkntfs and ntfscp: records of a 32-bit offset (modulo the
// volume's size), a length byte and that many bytes. Mutating a record
// mutates the filesystem's structures where it lands, where mutating a
// whole image would spend the fuzzer's time on $UpCase and $LogFile.
var fuzzBase = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "ntfsfuzz")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "base.img")
	if err := imagetest.Gunzip("testdata/fuzzbase.img.gz", p); err != nil {
		return nil, err
	}
	return os.ReadFile(p)
})

func applyPatches(base, data []byte) []byte {
	img := bytes.Clone(base)
	for len(data) >= 5 {
		off := int(binary.LittleEndian.Uint32(data) % uint32(len(img)))
		n := min(int(data[4]), len(data)-5)
		copy(img[off:], data[5:5+n])
		data = data[5+n:]
	}
	return img
}

func patchAt(off int, b ...byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(off)), append([]byte{byte(len(b))}, b...)...)
}

// fuzzSeeds damage the headers of the first MFT records (the
// filesystem's own, the root, the first files) and of every index
// record, and the boot sector's geometry.
func fuzzSeeds(base []byte) [][]byte {
	seeds := [][]byte{nil, patchAt(0x0D, 0x80), patchAt(0x30, 0xFF, 0xFF), patchAt(0x40, 0x7F), patchAt(0x44, 0xE0)}
	records := 0
	for off := 0; off+1024 <= len(base); off += 512 {
		switch string(base[off : off+4]) {
		case "FILE":
			if records++; records > 28 {
				continue
			}
			seeds = append(seeds, patchAt(off+0x14, 0xF0), patchAt(off+0x38+4, 0xFF, 0xFF), patchAt(off+0x20, 5))
		case "INDX":
			seeds = append(seeds, patchAt(off+0x18, 0xFF), patchAt(off+0x40+8, 0x08))
		}
	}
	return seeds
}

func FuzzOpen(f *testing.F) {
	base, err := fuzzBase()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range fuzzSeeds(base) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img := applyPatches(base, data)
		const name = "FUZZ.img"
		fsys, err := ntfs.Open(bytes.NewReader(img), int64(len(img)), name)
		if err != nil {
			imagetest.CheckError(t, "Open", name, err)
			return
		}
		walkAll(t, fsys, name)
	})
}

// walkAll walks, stats and reads the filesystem with bounds, checking
// that every error is classified and names the image.
func walkAll(t *testing.T, fsys *ntfs.FS, name string) {
	check := func(what string, err error) {
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			imagetest.CheckError(t, what, name, err)
		}
	}
	visited := 0
	fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if visited++; visited > 300 {
			return fs.SkipAll
		}
		if err != nil {
			check("walk "+p, err)
			return nil
		}
		if _, err := d.Info(); err != nil {
			check("info "+p, err)
		}
		if d.IsDir() {
			return nil
		}
		f, err := fsys.Open(p)
		if err != nil {
			check("open "+p, err)
			return nil
		}
		_, err = io.Copy(io.Discard, io.LimitReader(f, 1<<16))
		check("read "+p, err)
		f.Close()
		return nil
	})
}
