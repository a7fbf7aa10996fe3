package qcow2

import (
	"bytes"
	"context"
	"errors"
	"io"

	"github.com/qimg/qimg/image"
)

// SetBacking names a new backing file (and its format) in the header, or
// none when name is empty: what `qemu-img rebase -u` does. Nothing else
// changes, so the image reads differently unless the new file holds what
// the old chain did; Rebase copies what is needed first. The image keeps
// reading through the chain it was opened with until it is reopened.
func (img *Image) SetBacking(name, format string) error {
	img.mu.Lock()
	defer img.mu.Unlock()
	if err := img.checkWrite(0, 0); err != nil {
		return err
	}
	if name != "" && format == "" {
		return img.errorf(image.ErrInvalidArgument, "backing format must be specified")
	}
	if name == "" {
		format = ""
	}
	h := *img.hdr
	h.BackingFile, h.BackingFormat = name, format
	if _, err := img.writeHeader(&h); err != nil {
		return err
	}
	img.hdr = &h
	return nil
}

// Rebase gives the image newBase (nil, with an empty name: no backing
// file) as its backing file, named name with format in the header, without changing what it
// reads: wherever this image does not hold the data itself and the
// current chain and newBase differ, the current content is written into
// the image, cluster by cluster, as `qemu-img rebase` does. The header is
// changed last, so an interrupted rebase leaves the old backing file
// named and the content unchanged. progress, if not nil, is called with
// the bytes examined so far and the virtual size.
func (img *Image) Rebase(ctx context.Context, newBase image.Image, name, format string, progress func(done, total int64)) error {
	if (newBase == nil) != (name == "") {
		return img.errorf(image.ErrInvalidArgument, "a new backing file needs both a name and an open image")
	}
	if name != "" && format == "" {
		return img.errorf(image.ErrInvalidArgument, "backing format must be specified")
	}
	if err := img.copyDifferences(ctx, newBase, progress); err != nil {
		return err
	}
	return img.SetBacking(name, format)
}

// copyChunk is how much guest data Rebase compares and Commit copies at a
// time.
const copyChunk = 1 << 20

// copyDifferences writes into the image, cluster by cluster, the current
// content of the ranges it does not define itself where newBase reads
// differently.
func (img *Image) copyDifferences(ctx context.Context, newBase image.Image, progress func(done, total int64)) error {
	size, cs := img.Size(), img.hdr.ClusterSize()
	chunk := max(copyChunk, cs)
	cur, other := make([]byte, chunk), make([]byte, chunk)
	for e, err := range image.Extents(img, 0, size) {
		if err != nil {
			return err
		}
		if e.Allocated && e.Depth == 0 {
			continue // this image defines it: no backing file shows through
		}
		// Whole clusters, so that each is compared and written once.
		end := min(size, (e.End()+cs-1)&^(cs-1))
		for off := e.Start &^ (cs - 1); off < end; off += chunk {
			if err := ctx.Err(); err != nil {
				return err
			}
			n := min(chunk, end-off)
			if err := img.copyIfDifferent(cur[:n], other[:n], off, newBase); err != nil {
				return err
			}
			if progress != nil {
				progress(min(off+n, e.End()), size)
			}
		}
	}
	return nil
}

// copyIfDifferent compares len(cur) bytes at off as the image reads them
// now with newBase and writes the clusters that differ.
func (img *Image) copyIfDifferent(cur, other []byte, off int64, newBase image.Image) error {
	if _, err := img.ReadAt(cur, off); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	clear(other)
	if newBase != nil && off < newBase.Size() {
		m := min(int64(len(other)), newBase.Size()-off)
		if _, err := newBase.ReadAt(other[:m], off); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
	}
	cs, n := img.hdr.ClusterSize(), int64(len(cur))
	for i := int64(0); i < n; {
		j := i // past the run of differing clusters that starts at i
		for j < n && !bytes.Equal(cur[j:min(j+cs, n)], other[j:min(j+cs, n)]) {
			j = min(j+cs, n)
		}
		if j == i {
			i = min(i+cs, n)
			continue
		}
		if _, err := img.WriteAt(cur[i:j], off+i); err != nil {
			return err
		}
		i = j
	}
	return nil
}
