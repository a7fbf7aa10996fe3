package format_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

// backingFormatExt is the qcow2 header extension that names the backing
// file's format.
const backingFormatExt = 0xe2792aca

// TestBackingLoops opens chains that loop; each must stop at the depth
// limit with a classified error naming the file instead of recursing
// forever, and leave the files as they were.
func TestBackingLoops(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.qcow2"), filepath.Join(dir, "b.qcow2")
	self := filepath.Join(dir, "self.qcow2")
	qemutest.Img(t, "create", "-f", "qcow2", "-u", "-b", "b.qcow2", "-F", "qcow2", a, "1M")
	qemutest.Img(t, "create", "-f", "qcow2", "-u", "-b", "a.qcow2", "-F", "qcow2", b, "1M")
	qemutest.Img(t, "create", "-f", "qcow2", "-u", "-b", "self.qcow2", "-F", "qcow2", self, "1M")
	// Without a backing format the format is probed: same loop.
	noFmt := filepath.Join(dir, "nofmt.qcow2")
	qemutest.Img(t, "create", "-f", "qcow2", "-u", "-b", "nofmt.qcow2", "-F", "qcow2", noFmt, "1M")
	nf, err := os.ReadFile(noFmt)
	if err != nil {
		t.Fatal(err)
	}
	var ext [4]byte
	binary.BigEndian.PutUint32(ext[:], backingFormatExt)
	i := bytes.Index(nf, ext[:])
	if i < 0 {
		t.Fatal("no backing format extension")
	}
	binary.BigEndian.PutUint32(nf[i:], 0x11111111) // now an unknown extension
	if err := os.WriteFile(noFmt, nf, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{a, b, self, noFmt} {
		orig, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = format.Open(p, format.OpenOptions{})
		if !errors.Is(err, image.ErrLimit) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "chain") {
			t.Fatalf("%s: want a chain-depth ErrLimit naming the file, got %v", p, err)
		}
		if _, err := format.OpenChain(p, format.OpenOptions{}); !errors.Is(err, image.ErrLimit) {
			t.Fatalf("OpenChain %s: want ErrLimit, got %v", p, err)
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, orig) {
			t.Fatalf("%s changed", p)
		}
	}
	// A backing file that does not exist is an error, not a panic.
	missing := filepath.Join(dir, "missing.qcow2")
	qemutest.Img(t, "create", "-f", "qcow2", "-u", "-b", "nowhere.qcow2", "-F", "qcow2", missing, "1M")
	_, _, err = format.Open(missing, format.OpenOptions{})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing backing file: %v", err)
	}
	var be *format.BackingError
	if _, err := format.OpenChain(missing, format.OpenOptions{}); !errors.As(err, &be) || be.Name != filepath.Join(dir, "nowhere.qcow2") {
		t.Fatalf("OpenChain of a missing backing file: %v", err)
	}
}
