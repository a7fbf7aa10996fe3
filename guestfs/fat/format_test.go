package fat

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/internal/qemutest"
)

// formatted makes a file of size bytes and formats it.
func formatted(t *testing.T, size int64, label string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fmt.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := Format(f, size, label); err != nil {
		t.Fatal(err)
	}
	return img
}

// TestFormat formats volumes on both sides of the FAT12/FAT16 line and
// lets fsck.fat, blkid and mtools judge them, then writes into each with
// mtools and with OpenWritable.
func TestFormat(t *testing.T) {
	need(t, "fsck.fat", "mcopy", "mtype", "blkid")
	for _, c := range []struct {
		size  int64
		label string
		typ   string
	}{
		{MinFormatSize, "cidata", "FAT12"},
		{1 << 20, "CIDATA", "FAT12"},
		{16 << 20, "config-2", "FAT12"},
		{16<<20 + 512, "X", "FAT16"},
		{64 << 20, "config-2", "FAT16"},
		{MaxFormatSize, "", "FAT16"},
	} {
		img := formatted(t, c.size, c.label)
		fsckClean(t, img)
		tags := qemutest.Blkid(t, img)
		if tags["TYPE"] != "vfat" || tags["LABEL"] != c.label {
			t.Errorf("%d bytes: blkid says %v, want vfat labelled %q", c.size, tags, c.label)
		}
		f, err := os.OpenFile(img, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		fsys, err := OpenWritable(f, c.size, img)
		if err != nil {
			t.Fatalf("%d bytes: %v", c.size, err)
		}
		if fsys.Type() != c.typ || fsys.Label() != c.label {
			t.Errorf("%d bytes: %s labelled %q, want %s labelled %q", c.size, fsys.Type(), fsys.Label(), c.typ, c.label)
		}
		content := strings.Repeat("seed\n", 1000)
		if err := fsys.Mkdir("openstack", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := fsys.WriteFile("openstack/meta_data.json", strings.NewReader(content), int64(len(content)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := fsys.Commit(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.Close()
		fsckClean(t, img)
		if got := run(t, "mtype", "-i", img, "::/openstack/meta_data.json"); got != content {
			t.Errorf("%d bytes: mtype read %d bytes, want %d", c.size, len(got), len(content))
		}
		src := filepath.Join(t.TempDir(), "user-data")
		os.WriteFile(src, []byte("#cloud-config\n"), 0o644)
		run(t, "mcopy", "-i", img, src, "::/user-data")
		fsckClean(t, img)
	}
}

func TestFormatRefuses(t *testing.T) {
	dev := &memDev{}
	for _, c := range []struct {
		size  int64
		label string
	}{
		{MinFormatSize - 512, "x"}, {MaxFormatSize + 512, "x"}, {1<<20 + 1, "x"},
		{1 << 20, "twelve chars"}, {1 << 20, "a/b"}, {1 << 20, "trailing "}, {1 << 20, "é"},
	} {
		if err := Format(dev, c.size, c.label); err == nil {
			t.Errorf("Format(%d, %q) succeeded", c.size, c.label)
		}
	}
}

// memDev is a device in memory.
type memDev struct{ b []byte }

func (m *memDev) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}
