package openstack

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/qimg/qimg/convert"
	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/image"
)

// source is what an upload sends: the file as it is, the guest disk read
// as raw (--convert raw, streamed), or a qcow2 written to a temporary
// file (--convert qcow2; a qcow2 cannot be streamed, since its tables
// come before the data they describe).
type source struct {
	data    io.ReaderAt
	size    int64
	presets map[string]string
	closers []io.Closer
}

func (s *source) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i].Close())
	}
	return errors.Join(errs...)
}

// openSource opens the data a plan sends, and reads the guest for
// presets on the way.
func openSource(ctx context.Context, plan *Plan, tempDir string) (*source, error) {
	img, _, err := format.Open(plan.Path, format.OpenOptions{Format: plan.Detected, Backing: image.RefuseBacking})
	if err != nil {
		return nil, err
	}
	s := &source{closers: []io.Closer{img}}
	s.presets = Presets(img, plan.Path)
	switch plan.Convert {
	case "raw":
		s.data, s.size = img, img.Size()
	case "qcow2":
		err = s.convertQcow2(ctx, img, tempDir)
	default:
		err = s.openFile(plan.Path)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	plan.Size = s.size
	return s, nil
}

func (s *source) openFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, f)
	st, err := f.Stat()
	if err != nil {
		return err
	}
	s.data, s.size = f, st.Size()
	return nil
}

// convertQcow2 writes the guest disk to a temporary qcow2 and sends that;
// the file is unlinked as soon as it is open, so nothing is left behind.
func (s *source) convertQcow2(ctx context.Context, img image.Image, tempDir string) error {
	dir, err := os.MkdirTemp(tempDir, "qimg-upload-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tmp := dir + "/image.qcow2"
	if err := convert.Convert(ctx, img, tmp, convert.Options{Format: format.QCOW2}); err != nil {
		return err
	}
	return s.openFile(tmp)
}

// hashAll reads src to the end for its digests (--skip-existing needs
// the hash before deciding to send anything).
func hashAll(ctx context.Context, src io.ReaderAt, size int64) (Digests, error) {
	h := newHashingReader(src, size, nil)
	defer h.Close()
	buf := make([]byte, chunkSize)
	for {
		if err := ctx.Err(); err != nil {
			return Digests{}, err
		}
		_, err := h.Read(buf)
		if errors.Is(err, io.EOF) {
			return h.Digests(), nil
		}
		if err != nil {
			return Digests{}, err
		}
	}
}
