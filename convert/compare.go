package convert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/qimg/qimg/image"
)

// CompareOptions tunes Compare.
type CompareOptions struct {
	// Strict makes a size or block status difference (data, zero,
	// allocated) a mismatch (qemu-img compare -s).
	Strict bool
	// Progress, if set, is called with bytes compared and total.
	Progress func(done, total int64)
}

// CompareResult says whether two images have the same guest content.
type CompareResult struct {
	Identical bool
	// Offset is the first differing byte when not Identical.
	Offset int64
	// Reason is qemu-img compare's message for the difference.
	Reason string
}

const compareChunk = 1 << 20

// Compare reports whether a and b read the same. As in qemu-img compare,
// images of different sizes are identical when the extra part of the
// larger one reads as zeros, unless Strict.
func Compare(ctx context.Context, a, b image.Image, o CompareOptions) (CompareResult, error) {
	if o.Strict && a.Size() != b.Size() {
		return CompareResult{Reason: "Strict mode: Image size mismatch!"}, nil
	}
	common := min(a.Size(), b.Size())
	total := max(a.Size(), b.Size())
	bufA, bufB := make([]byte, compareChunk), make([]byte, compareChunk)
	for off := int64(0); off < total; {
		if err := ctx.Err(); err != nil {
			return CompareResult{}, err
		}
		var r CompareResult
		var n int64
		var err error
		if off < common {
			n, r, err = compareRange(a, b, off, min(compareChunk, common-off), bufA, bufB, o.Strict)
		} else {
			longer, second := a, false
			if b.Size() > a.Size() {
				longer, second = b, true
			}
			n, r, err = zeroRange(longer, second, off, min(compareChunk, total-off), bufA)
		}
		if err != nil || r.Reason != "" {
			return r, err
		}
		off += n
		if o.Progress != nil {
			o.Progress(off, total)
		}
	}
	return CompareResult{Identical: true}, nil
}

// compareRange compares up to n bytes at off and returns how many it
// covered. Runs that read as zeros in both images are not read.
func compareRange(a, b image.Image, off, n int64, bufA, bufB []byte, strict bool) (int64, CompareResult, error) {
	ea, err := a.Extent(off, n)
	if err != nil {
		return 0, CompareResult{}, err
	}
	eb, err := b.Extent(off, n)
	if err != nil {
		return 0, CompareResult{}, err
	}
	n = min(ea.Length, eb.Length)
	if strict && (ea.Allocated != eb.Allocated || ea.Data != eb.Data || ea.Zero != eb.Zero) {
		return 0, mismatch(off, "block status mismatch"), nil
	}
	if !ea.Data && !eb.Data {
		return n, CompareResult{}, nil
	}
	if err := readFull(a, bufA[:n], off, false); err != nil {
		return 0, CompareResult{}, err
	}
	if err := readFull(b, bufB[:n], off, true); err != nil {
		return 0, CompareResult{}, err
	}
	if i := firstDiff(bufA[:n], bufB[:n]); i >= 0 {
		return 0, mismatch(off+int64(i), ""), nil
	}
	return n, CompareResult{}, nil
}

// zeroRange checks that the part of the larger image past the common size
// reads as zeros.
func zeroRange(img image.Image, second bool, off, n int64, buf []byte) (int64, CompareResult, error) {
	e, err := img.Extent(off, n)
	if err != nil {
		return 0, CompareResult{}, err
	}
	if !e.Data {
		return e.Length, CompareResult{}, nil
	}
	if err := readFull(img, buf[:e.Length], off, second); err != nil {
		return 0, CompareResult{}, err
	}
	for i, x := range buf[:e.Length] {
		if x != 0 {
			return 0, mismatch(off+int64(i), ""), nil
		}
	}
	return e.Length, CompareResult{}, nil
}

func mismatch(off int64, what string) CompareResult {
	r := CompareResult{Offset: off}
	if what != "" {
		r.Reason = fmt.Sprintf("Strict mode: Offset %d %s!", off, what)
	} else {
		r.Reason = fmt.Sprintf("Content mismatch at offset %d!", off)
	}
	return r
}

// ReadError is a failed read of one of the compared images, with the
// guest offset the read started at, which qemu-img compare reports.
type ReadError struct {
	Second bool  // the second image (b) failed, not the first
	Offset int64 // where the failed read started
	Err    error
}

func (e *ReadError) Error() string { return e.Err.Error() }

func (e *ReadError) Unwrap() error { return e.Err }

// readFull reads p at off; second says which image failed if it fails.
func readFull(img image.Image, p []byte, off int64, second bool) error {
	if err := readAll(img, p, off); err != nil {
		return &ReadError{Second: second, Offset: off, Err: err}
	}
	return nil
}

func readAll(img image.Image, p []byte, off int64) error {
	_, err := img.ReadAt(p, off)
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// firstDiff is the index of the first differing byte, or -1.
func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}
