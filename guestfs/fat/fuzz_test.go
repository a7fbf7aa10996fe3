package fat

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Fuzz inputs describe a sparse image, so that seeds made from real
// volumes stay a few KiB: records of a 16-bit chunk number, a repeat
// count and 64 bytes, placed at chunk*64 (count+1 times) in an image of
// fuzzImageSize zero bytes.
const (
	fuzzChunk     = 64
	fuzzRecord    = 3 + fuzzChunk
	fuzzImageSize = 1 << 16 * fuzzChunk // 4 MiB
)

func decodeFuzz(data []byte) []byte {
	img := make([]byte, fuzzImageSize)
	for ; len(data) >= fuzzRecord; data = data[fuzzRecord:] {
		at := int(binary.LittleEndian.Uint16(data)) * fuzzChunk
		for n := int(data[2]); n >= 0 && at < len(img); n, at = n-1, at+fuzzChunk {
			copy(img[at:at+fuzzChunk], data[3:fuzzRecord])
		}
	}
	return img
}

func encodeFuzz(img []byte) []byte {
	var out []byte
	for at := 0; at+fuzzChunk <= len(img) && at < fuzzImageSize; at += fuzzChunk {
		c := img[at : at+fuzzChunk]
		if bytes.Count(c, []byte{0}) == fuzzChunk {
			continue
		}
		start, n := at, 0
		for n < 255 && at+2*fuzzChunk <= len(img) && bytes.Equal(c, img[at+fuzzChunk:at+2*fuzzChunk]) {
			n++
			at += fuzzChunk
		}
		out = binary.LittleEndian.AppendUint16(out, uint16(start/fuzzChunk))
		out = append(out, byte(n))
		out = append(out, c...)
	}
	return out
}

// memDevice is a volume in memory.
type memDevice []byte

func (m memDevice) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m)) {
		return 0, io.EOF
	}
	n := copy(p, m[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m memDevice) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > int64(len(m)) {
		return 0, io.ErrShortWrite
	}
	return copy(m[off:], p), nil
}

// walkAll opens, stats and reads everything, with bounds so a hostile
// size cannot make the walk slow.
func walkAll(fsys *FS) []string {
	var paths []string
	fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if len(paths) > 500 {
			return fs.SkipAll
		}
		paths = append(paths, p)
		fsys.Lstat(p)
		fsys.ReadLink(p)
		if f, err := fsys.Open(p); err == nil {
			io.Copy(io.Discard, io.LimitReader(f, 1<<20))
			f.Close()
		}
		return nil
	})
	return paths
}

// editAll stages edits of a hostile volume and commits them: errors
// are fine, panics and hangs are not.
func editAll(dev memDevice, paths []string) {
	f, err := OpenWritable(dev, int64(len(dev)), "fuzz")
	if err != nil {
		return
	}
	f.WriteFile("fuzz new file.txt", strings.NewReader("new"), 3, 0o644)
	f.Mkdir("NEWDIR", 0o755)
	for i, p := range paths {
		if i > 20 || p == "." {
			continue
		}
		switch i % 4 {
		case 0:
			f.Rename(p, "NEWDIR/moved")
		case 1:
			f.WriteFile(p, strings.NewReader("over"), 4, 0o644)
		case 2:
			f.Truncate(p, 5000)
		default:
			f.RemoveAll(p)
		}
	}
	f.Commit(context.Background())
	walkAll(f)
}

func FuzzOpen(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		img := decodeFuzz(data)
		fsys, err := Open(bytes.NewReader(img), int64(len(img)), "fuzz")
		if err != nil {
			return
		}
		fsys.Label()
		editAll(memDevice(img), walkAll(fsys))
	})
}

// TestFuzzSeeds remakes testdata/fuzz/FuzzOpen from small real volumes
// when QIMG_FAT_SEEDS=1 (the seeds are committed).
func TestFuzzSeeds(t *testing.T) {
	if os.Getenv("QIMG_FAT_SEEDS") != "1" {
		t.Skip("set QIMG_FAT_SEEDS=1 to remake the seeds")
	}
	need(t, "mkfs.vfat", "mcopy")
	src := t.TempDir()
	m := tree{"EFI/BOOT/BOOTX64.EFI": pattern(3000, 1), "hello.txt": []byte("hello\n"),
		"A long name.cfg": []byte("long\n"), "empty": {}}
	for i := range 20 {
		m[fmt.Sprintf("dir/entry %02d with a long name", i)] = []byte{byte(i)}
	}
	writeHost(t, src, withParents(m))
	dir := filepath.Join("testdata", "fuzz", "FuzzOpen")
	os.MkdirAll(dir, 0o755)
	for name, v := range map[string]struct {
		size int64
		args []string
	}{
		"fat12":    {200 << 10, []string{"-F", "12"}},
		"fat16":    {4 << 20, []string{"-F", "16", "-s", "1", "-r", "64"}},
		"fat32":    {4 << 20, []string{"-F", "32", "-s", "1"}},
		"fat12-4k": {1 << 20, []string{"-F", "12", "-S", "4096"}},
	} {
		img := mkfs(t, v.size, v.args...)
		if name == "fat32" { // mtools takes a FAT32 this small for FAT16
			f, file := openRW(t, img)
			for p, b := range withParents(m) {
				if b == nil {
					f.Mkdir(p, 0o755)
				}
			}
			for p, b := range m {
				if err := f.WriteFile(p, bytes.NewReader(b), int64(len(b)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.Commit(context.Background()); err != nil {
				t.Fatal(err)
			}
			file.Close()
		} else {
			mcopyTree(t, img, src)
		}
		raw, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		enc := encodeFuzz(raw)
		fsys, err := Open(bytes.NewReader(decodeFuzz(enc)), fuzzImageSize, name)
		if err != nil {
			t.Fatalf("%s: seed does not open: %v", name, err)
		}
		if n := len(walkAll(fsys)); n < 20 {
			t.Fatalf("%s: seed walks %d names", name, n)
		}
		seed := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", enc)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(seed), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes", name, len(seed))
	}
}
