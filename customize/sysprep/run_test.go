package sysprep_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/qimg/qimg/customize"
	"github.com/qimg/qimg/customize/sysprep"
	"github.com/qimg/qimg/guestfs/ext4"
	"github.com/qimg/qimg/guestfs/inspect"
)

// memDevice is an ext4 device in memory.
type memDevice struct{ b []byte }

func (m *memDevice) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (m *memDevice) WriteAt(p []byte, off int64) (int, error) { return copy(m.b[off:], p), nil }
func (m *memDevice) Flush() error                             { return nil }

// openImage opens a gzipped ext4 image (testdata/debian.img.gz, made by
// mkfs.ext4 -d from a tree with a machine ID, ssh host keys, a netplan
// file matching by MAC address, a /tmp file and dbus's machine-id link)
// in memory for editing.
func openImage(name string) (*ext4.FS, error) {
	dev, err := readImage(name)
	if err != nil {
		return nil, err
	}
	return ext4.OpenWritable(dev, int64(len(dev.b)), name)
}

func readImage(name string) (*memDevice, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(zr)
	return &memDevice{b: raw}, err
}

var debian = inspect.OS{Type: "linux", Distro: "debian", MajorVersion: 12, PackageManagement: "apt"}

// failingFS fails the first removal, after other changes were staged.
type failingFS struct{ *ext4.FS }

func (f failingFS) RemoveAll(name string) error { return errors.New("disk on fire") }

// TestRunAllOrNothing: an error in one operation leaves the image as it
// was, although earlier operations had staged changes.
func TestRunAllOrNothing(t *testing.T) {
	dev, err := readImage("testdata/debian.img.gz")
	if err != nil {
		t.Fatal(err)
	}
	before := bytes.Clone(dev.b)
	fsys, err := ext4.OpenWritable(dev, int64(len(dev.b)), "debian.img")
	if err != nil {
		t.Fatal(err)
	}
	ops, _ := sysprep.Select("", []string{"machine-id,tmp-files"})
	err = sysprep.Run(context.Background(), &customize.Guest{FS: failingFS{fsys}}, debian, ops)
	if err == nil || !strings.Contains(err.Error(), "tmp-files: disk on fire") {
		t.Fatalf("Run: %v", err)
	}
	if !bytes.Equal(dev.b, before) {
		t.Fatal("a failed run changed the image")
	}
}

func TestRunRefusesWindows(t *testing.T) {
	fsys, err := openImage("testdata/debian.img.gz")
	if err != nil {
		t.Fatal(err)
	}
	win := inspect.OS{Type: "windows", ProductName: "Windows Server 2022 Standard"}
	err = sysprep.Run(context.Background(), &customize.Guest{FS: fsys}, win, sysprep.Defaults())
	if err == nil || !strings.Contains(err.Error(), "Windows Server 2022") {
		t.Fatalf("Run on Windows: %v", err)
	}
}

// TestRunDefaults: the default operations on the small Debian image.
func TestRunDefaults(t *testing.T) {
	fsys, err := openImage("testdata/debian.img.gz")
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	if err := sysprep.Run(context.Background(), &customize.Guest{FS: fsys, Log: &log}, debian, sysprep.Defaults()); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"tmp/junk", "etc/ssh/ssh_host_ed25519_key"} {
		if _, err := fsys.Lstat(gone); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v", gone, err)
		}
	}
	if fi, err := fsys.Lstat("var/lib/dbus/machine-id"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("dbus's link: %v %v", fi, err)
	}
	if n := strings.Count(log.String(), "Performing"); n != len(sysprep.Defaults()) {
		t.Errorf("%d operations performed, want %d:\n%s", n, len(sysprep.Defaults()), log.String())
	}
}
