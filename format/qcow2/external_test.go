package qcow2_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

// A missing backing or data file fails Open with an *image.ExternalError
// naming the image, the file as stored and as opened; MetadataOnly opens
// an image whose data file is missing, and its reads fail.
func TestMissingExternalFiles(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	ov, base := filepath.Join(sub, "ov.qcow2"), filepath.Join(sub, "base.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", base, "1M")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", ov)
	data, dataFile := filepath.Join(sub, "data.qcow2"), filepath.Join(sub, "d.raw")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", "-o", "data_file="+dataFile, data, "1M")
	for _, f := range []string{base, dataFile} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		file, name, path string
		kind             image.ExternalKind
	}{
		{ov, "base.qcow2", base, image.KindBackingFile},
		{data, dataFile, dataFile, image.KindDataFile},
	} {
		_, err := qcow2.Open(c.file, chained(c.file, nil))
		var xe *image.ExternalError
		if !errors.As(err, &xe) || xe.Image != c.file || xe.Kind != c.kind || xe.Name != c.name || xe.Path != c.path || !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Open %s: %v (%+v), want the %s %s missing", c.file, err, xe, c.kind, c.path)
		}
	}
	img, err := qcow2.Open(data, &qcow2.OpenOptions{MetadataOnly: true})
	if err != nil {
		t.Fatalf("MetadataOnly: %v", err)
	}
	defer img.Close()
	if img.Header().DataFile != dataFile || img.ReadError() == nil {
		t.Fatalf("header %+v, read error %v", img.Header(), img.ReadError())
	}
	if _, err := img.ReadAt(make([]byte, 512), 0); !errors.Is(err, image.ErrInvalidArgument) {
		t.Fatalf("ReadAt of a metadata-only image: %v", err)
	}
	if _, err := qcow2.Open(data, &qcow2.OpenOptions{MetadataOnly: true, Writable: true}); !errors.Is(err, image.ErrInvalidArgument) {
		t.Fatalf("writable MetadataOnly: %v", err)
	}
}
