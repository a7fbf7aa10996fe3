package hive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/qimg/qimg/image"
)

const (
	baseBlockSize = 4096 // the base block; hive bins follow it
	hbinHeader    = 32
	// MaxValueSize bounds the value data read (the largest values of a
	// real SOFTWARE hive are a few hundred KiB).
	MaxValueSize = 16 << 20
	// maxCell bounds one cell: a hive bin is rarely over 1 MiB, but old
	// hives keep a large value in one cell.
	maxCell = MaxValueSize + 8
)

// Hive is an open registry hive file.
type Hive struct {
	r     io.ReaderAt
	name  string
	end   int64 // end of the hive bins data, an offset in the file
	root  uint32
	minor uint32
}

// Open reads the base block of the hive file r of size bytes; name is
// used in messages.
func Open(r io.ReaderAt, size int64, name string) (*Hive, error) {
	b := make([]byte, baseBlockSize)
	if size < baseBlockSize+hbinHeader {
		return nil, image.FileErrorf(name, "hive of %d bytes: shorter than a base block and a bin: %w", size, image.ErrCorrupt)
	}
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, image.FileErrorf(name, "reading the hive base block: %w", err)
	}
	if string(b[:4]) != "regf" {
		return nil, image.FileErrorf(name, "no hive signature \"regf\": %w", image.ErrCorrupt)
	}
	if err := checkBase(b); err != nil {
		return nil, image.FileErrorf(name, "hive base block: %w", err)
	}
	h := &Hive{r: r, name: name, root: le32(b[36:]), minor: le32(b[24:])}
	h.end = min(baseBlockSize+int64(le32(b[40:])), size)
	bin := make([]byte, 4)
	if _, err := r.ReadAt(bin, baseBlockSize); err != nil {
		return nil, image.FileErrorf(name, "reading the first hive bin: %w", err)
	}
	if string(bin) != "hbin" {
		return nil, image.FileErrorf(name, "first hive bin has no signature \"hbin\": %w", image.ErrCorrupt)
	}
	return h, nil
}

// checkBase checks the version, file type and checksum of a base block.
func checkBase(b []byte) error {
	major, minor := le32(b[20:]), le32(b[24:])
	if major != 1 || minor < 1 || minor > 6 {
		return fmt.Errorf("version %d.%d (1.1 to 1.6 are read): %w", major, minor, image.ErrUnsupported)
	}
	if t := le32(b[28:]); t != 0 {
		return fmt.Errorf("file type %d is a log or external file, not a primary hive: %w", t, image.ErrUnsupported)
	}
	if sum, want := checksum(b), le32(b[508:]); sum != want {
		return fmt.Errorf("checksum %#x, computed %#x: %w", want, sum, image.ErrCorrupt)
	}
	return nil
}

// checksum is the XOR of the base block's first 127 dwords, with 0 and
// ^0 replaced as Windows writes them.
func checksum(b []byte) uint32 {
	var x uint32
	for i := 0; i < 508; i += 4 {
		x ^= le32(b[i:])
	}
	switch x {
	case 0:
		return 1
	case 0xFFFFFFFF:
		return 0xFFFFFFFE
	}
	return x
}

// cell returns up to limit bytes of the data of the allocated cell at
// off (relative to the first hive bin), without its size field, and the
// size of the whole data. Reading no more than a structure needs keeps
// a list whose entries all point at one huge cell cheap.
func (h *Hive) cell(off uint32, what string, limit int) ([]byte, int, error) {
	at := baseBlockSize + int64(off)
	if off == 0xFFFFFFFF || at+4 > h.end {
		return nil, 0, h.corrupt("%s: cell offset %#x outside the hive bins", what, off)
	}
	var sz [4]byte
	if _, err := h.r.ReadAt(sz[:], at); err != nil {
		return nil, 0, h.readErr(what, err)
	}
	size := int64(int32(le32(sz[:])))
	if size >= 0 {
		return nil, 0, h.corrupt("%s: cell at %#x is free", what, off)
	}
	size = -size
	if size < 8 || size > maxCell || at+size > h.end {
		return nil, 0, h.corrupt("%s: cell at %#x of %d bytes overruns the hive bins", what, off, size)
	}
	data := make([]byte, min(size-4, int64(limit)))
	if _, err := h.r.ReadAt(data, at+4); err != nil {
		return nil, 0, h.readErr(what, err)
	}
	return data, int(size - 4), nil
}

func (h *Hive) corrupt(format string, args ...any) error {
	return image.FileErrorf(h.name, "hive: %s: %w", fmt.Sprintf(format, args...), image.ErrCorrupt)
}

func (h *Hive) readErr(what string, err error) error {
	if errors.Is(err, io.EOF) {
		return h.corrupt("%s: truncated", what)
	}
	return image.FileErrorf(h.name, "hive: reading %s: %w", what, err)
}

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }
