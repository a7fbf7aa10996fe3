package ext4

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// Fuzz inputs describe a sparse image, so that seeds made from real file
// systems stay a few KiB: records of a 16-bit chunk number, a repeat
// count and 16 bytes, placed at chunk*16 (count+1 times, for the 0xff
// padding of bitmaps) in an image of fuzzImageSize zero bytes. Mutating a
// record mutates the file system where it lies.
const (
	fuzzChunk     = 16
	fuzzRecord    = 3 + fuzzChunk
	fuzzImageSize = 1 << 20 // what 16-bit chunk numbers address
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
		n := 0
		for n < 255 && at+2*fuzzChunk <= len(img) && bytes.Equal(c, img[at+fuzzChunk:at+2*fuzzChunk]) {
			n++
			at += fuzzChunk
		}
		out = binary.LittleEndian.AppendUint16(out, uint16((at-n*fuzzChunk)/fuzzChunk))
		out = append(out, byte(n))
		out = append(out, c...)
	}
	return out
}

// walkAll opens, stats and reads everything in fsys, as a guest
// inspection would, with bounds so a hostile file size cannot make the
// walk slow: what is being fuzzed is the parsing, not the patience.
func walkAll(fsys *FS) {
	visited := 0
	fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if visited++; visited > 500 {
			return fs.SkipAll
		}
		fsys.Lstat(p)
		fsys.Xattrs(p)
		if d.Type()&fs.ModeSymlink != 0 {
			fsys.ReadLink(p)
		}
		if f, err := fsys.Open(p); err == nil {
			io.Copy(io.Discard, io.LimitReader(f, 1<<20))
			f.Close()
		}
		return nil
	})
}

func FuzzOpen(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		img := decodeFuzz(data)
		fsys, err := Open(bytes.NewReader(img), int64(len(img)), "fuzz")
		if err != nil {
			return
		}
		fsys.Info()
		walkAll(fsys)
	})
}

// TestFuzzSeeds remakes testdata/fuzz/FuzzOpen from small real file
// systems when QIMG_EXT4_SEEDS=1 (the seeds are committed).
func TestFuzzSeeds(t *testing.T) {
	if os.Getenv("QIMG_EXT4_SEEDS") != "1" {
		t.Skip("set QIMG_EXT4_SEEDS=1 to remake the seeds")
	}
	need(t, "mkfs.ext4", "debugfs")
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(filepath.Join(src, "dir/sub"), 0o755)
	os.WriteFile(filepath.Join(src, "dir/sub/file"), []byte("hello, fuzz\n"), 0o644)
	os.WriteFile(filepath.Join(src, "tiny"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(src, "blocks"), bytes.Repeat([]byte("a block and a bit of text. "), 45), 0o644)
	os.Symlink("dir/sub/file", filepath.Join(src, "fast"))
	os.Symlink("/dir/sub/"+longName+"/../file", filepath.Join(src, "slow"))
	for i := range 4 {
		os.WriteFile(filepath.Join(src, "dir", fmt.Sprintf("e%02d", i)), nil, 0o644)
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzOpen")
	os.MkdirAll(dir, 0o755)
	for name, opts := range map[string][]string{
		"ext4":        {"-t", "ext4"},
		"ext4-nocsum": {"-t", "ext4", "-O", "^metadata_csum"},
		"inline":      {"-t", "ext4", "-O", "inline_data,^metadata_csum"},
		"ext2":        {"-t", "ext2"},
		"ext4-4k":     {"-t", "ext4", "-b", "4096", "-O", "^metadata_csum"},
	} {
		img := filepath.Join(t.TempDir(), "seed.img")
		size := "200K"
		if name == "ext4-4k" {
			size = "512K"
		}
		args := append([]string{"-q", "-F", "-b", "1024", "-N", "64", "-O", "^has_journal,^resize_inode", "-d", src}, opts...)
		run(t, "mkfs.ext4", append(args, img, size)...)
		run(t, "debugfs", "-w", "-R", "ea_set /tiny user.fuzz seed", img)
		raw, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		enc := encodeFuzz(raw)
		fsys, err := Open(bytes.NewReader(decodeFuzz(enc)), fuzzImageSize, name)
		if err != nil {
			t.Fatalf("%s: seed does not open: %v", name, err)
		}
		walkAll(fsys)
		seed := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", enc)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(seed), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes", name, len(seed))
	}
}

// memDev is a Device over a byte slice.
type memDev struct{ b []byte }

func (m *memDev) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memDev) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m.b)) {
		return 0, fmt.Errorf("write past the device")
	}
	return copy(m.b[off:], p), nil
}

func (m *memDev) Flush() error { return nil }

// FuzzEdit opens mutated file systems for writing and makes every kind
// of edit, then commits: hostile metadata must give errors, never a
// panic, a hang or a write outside the device.
func FuzzEdit(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		dev := &memDev{b: decodeFuzz(data)}
		fsys, err := OpenWritable(dev, int64(len(dev.b)), "fuzz")
		if err != nil {
			return
		}
		body := bytes.Repeat([]byte("fuzz "), 700)
		fsys.WriteFile("new", bytes.NewReader(body), int64(len(body)), 0o644)
		fsys.WriteFile("tiny", bytes.NewReader(body[:10]), 10, 0o644)
		fsys.Mkdir("dir/made", 0o755)
		fsys.Rename("fast", "dir/sub/moved")
		fsys.Symlink(string(bytes.Repeat([]byte("l/"), 40)), "dir/slowlink")
		fsys.Link("tiny", "dir/hard")
		fsys.Truncate("blocks", 100)
		fsys.SetXattr("tiny", "user.a", body[:300])
		fsys.Chmod("new", 0o600)
		fsys.RemoveAll("dir")
		fsys.Commit(context.Background())
		walkAll(fsys)
	})
}
