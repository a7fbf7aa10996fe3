package qcow2

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

// TestSnapshotRefusals: what cannot be done fails and leaves the image
// as it was.
func TestSnapshotRefusals(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for _, c := range []struct {
		name, opts string
		op         func(*Image) error
		want       error
	}{
		{"refcount-overflow", "refcount_bits=1", func(img *Image) error { return img.CreateSnapshot(ctx, "s", time.Now()) }, image.ErrLimit},
		{"version-2", "compat=0.10", func(img *Image) error { return img.CreateSnapshot(ctx, "s", time.Now()) }, image.ErrUnsupported},
		{"data-file", "data_file=" + filepath.Join(dir, "data"), func(img *Image) error { return img.CreateSnapshot(ctx, "s", time.Now()) }, ErrNoSnapshots},
		{"apply-unknown", "", func(img *Image) error { return img.ApplySnapshot(ctx, "nope") }, ErrSnapshotNotFound},
		{"delete-unknown", "", func(img *Image) error { return img.DeleteSnapshot(ctx, "nope") }, ErrSnapshotNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name+".qcow2")
			args := []string{"create", "-q", "-f", "qcow2"}
			if c.opts != "" {
				args = append(args, "-o", c.opts)
			}
			qemutest.Img(t, append(args, path, "2M")...)
			qemutest.IO(t, path, "write -P 1 0 1M")
			before := qemutest.ToRaw(t, path)
			img, err := Open(path, &OpenOptions{Writable: true})
			if err != nil {
				t.Fatal(err)
			}
			err = c.op(img)
			if cerr := img.Close(); cerr != nil {
				t.Fatal(cerr)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			qemutest.Check(t, path)
			if out := qemutest.Img(t, "snapshot", "-l", path); out != "" {
				t.Errorf("snapshots after a refusal:\n%s", out)
			}
			if string(qemutest.ToRaw(t, path)) != string(before) {
				t.Error("the refusal changed the data")
			}
		})
	}
}
