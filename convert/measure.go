package convert

import (
	"errors"
	"fmt"
	"os"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/image"
)

// Measurement is what qemu-img measure prints: the file size an image
// needs.
type Measurement struct {
	// Required is the file size for the source's data (or an empty image).
	Required int64
	// FullyAllocated is the file size with every cluster allocated.
	FullyAllocated int64
	// Bitmaps is the room the source's persistent bitmaps need; qemu-img
	// shows it only when HasBitmaps (source and target both qcow2 v3).
	Bitmaps    int64
	HasBitmaps bool
}

// MeasureOptions says what kind of image to measure for.
type MeasureOptions struct {
	// Format is the target format: "raw" (the default) or "qcow2".
	Format string
	// QCOW2 holds the qcow2 creation options (-o).
	QCOW2 qcow2.CreateOptions
}

// BlockStatusError means the source's extents could not be read while
// counting its data.
type BlockStatusError struct{ Err error }

func (e *BlockStatusError) Error() string { return "reading block status: " + e.Err.Error() }

func (e *BlockStatusError) Unwrap() error { return e.Err }

// Measure computes the size of an image of o.Format holding src's data,
// as qemu-img measure FILE does: data is counted from src's extents
// (through its backing chain), zeros cost nothing, and a qcow2 with a
// backing file counts every cluster.
func Measure(src image.Image, o MeasureOptions) (Measurement, error) {
	var m Measurement
	size := src.Size()
	if o.Format != format.QCOW2 {
		return rawSize(size, o, false)
	}
	cs := o.QCOW2.EffectiveClusterSize()
	if b, ok := src.(image.BitmapHolder); ok {
		n, has, err := b.PersistentBitmapsSize(cs)
		m.HasBitmaps = has && o.QCOW2.Compat != "0.10" && o.QCOW2.Compat != "v2"
		if m.HasBitmaps && err != nil {
			return m, err
		}
		m.Bitmaps = n
	}
	data := (size + cs - 1) / cs * cs
	if o.QCOW2.BackingFile == "" {
		var err error
		if data, err = countData(src, cs); err != nil {
			return m, &BlockStatusError{Err: err}
		}
	}
	var err error
	m.Required, m.FullyAllocated, err = qcow2.Measure(size, o.QCOW2, data)
	return m, err
}

// MeasureSize computes the size of an empty image of the given virtual
// size, as qemu-img measure --size does.
func MeasureSize(size int64, o MeasureOptions) (Measurement, error) {
	if o.Format != format.QCOW2 {
		return rawSize(size, o, true)
	}
	var m Measurement
	var err error
	m.Required, m.FullyAllocated, err = qcow2.Measure(size, o.QCOW2, 0)
	return m, err
}

// rawSize is a raw image's size: the virtual size, rounded up to whole
// sectors when it was given (--size) rather than read from an image.
func rawSize(size int64, o MeasureOptions, given bool) (Measurement, error) {
	if o.Format != "" && o.Format != format.Raw {
		return Measurement{}, fmt.Errorf("measure for format %q: %w", o.Format, image.ErrUnsupported)
	}
	if given {
		size = (size + 511) &^ 511
	}
	return Measurement{Required: size, FullyAllocated: size}, nil
}

// countData counts src's data bytes as qcow2_measure does. Where src
// names a file whose holes read as zeros inside its data runs (a static
// VDI), a run in a hole counts as zeros, as QEMU's block status sees it
// through the file layer.
func countData(src image.Image, clusterSize int64) (int64, error) {
	holes, err := holeFile(src)
	if err != nil {
		return 0, err
	}
	if holes != nil {
		defer holes.Close()
	}
	var total int64
	size := src.Size()
	for off := int64(0); off < size; {
		ext, err := src.Extent(off, size-off)
		if err != nil {
			return 0, err
		}
		if ext.Length <= 0 {
			return 0, errors.New("extent of no length")
		}
		if holes != nil && ext.Depth == 0 && ext.Data && !ext.Zero && ext.HostOffset >= 0 {
			ext.Zero, ext.Length = image.FileRun(holes, ext.HostOffset, ext.Length)
		}
		add, next := qcow2.CountRequired(ext, clusterSize)
		total += add
		off = next
	}
	return total, nil
}

// holeFile opens the file whose holes show through src's data runs, or
// returns nil if src names none.
func holeFile(src image.Image) (*os.File, error) {
	m, ok := src.(image.Mapper)
	if !ok {
		return nil, nil
	}
	l, err := m.HostLayout()
	if err != nil || l.HoleFile == "" {
		return nil, err
	}
	return os.Open(l.HoleFile)
}
