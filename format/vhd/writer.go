package vhd

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"os"
	"sync"
	"time"

	"github.com/qimg/qimg/image"
)

// CreateOptions mirror qemu-img's -o options for vpc.
type CreateOptions struct {
	// Subformat is "dynamic" (the default) or "fixed".
	Subformat string
	// ForceSize is qemu-img's force_size: keep the size asked for (rounded
	// to whole sectors) instead of rounding it up to a CHS geometry, and
	// say so with the creator "qem2" and the maximum geometry. Hyper-V
	// and Azure size disks by the footer's current_size and want sizes
	// in whole MiB; Virtual PC then sees a wrong size.
	ForceSize bool
}

// Layout of a new dynamic disk, as qemu-img lays it out: footer copy,
// dynamic header, BAT (padded to whole sectors with unallocated entries),
// then blocks in allocation order, each a bitmap followed by its data,
// and the footer at the end.
const (
	dynHeaderOffset = footerSize
	batOffset       = dynHeaderOffset + dynHeaderSize
)

// Writer writes a new VHD sequentially: the target of a conversion. Guest
// data arrives through WriteAt and WriteZeroes in increasing,
// non-overlapping offset order; gaps read as zeros. Close writes the
// metadata. Calls are serialised, but out-of-order offsets are refused.
type Writer struct {
	mu     sync.Mutex
	f      *os.File
	name   string
	size   int64
	foot   footer
	pos    int64 // everything before pos has been written or skipped
	closed bool

	dynamic bool
	bat     []uint32
	next    int64 // where the next block (or the final footer) goes
	dirty   bool  // metadata changed since it was last written
}

// Create starts a VHD of (at least) size bytes in f, which it truncates
// first; name is used in errors. The virtual size is rounded as qemu-img
// rounds it (see Size). The Writer owns f: Close closes it.
func Create(f *os.File, name string, size int64, opts CreateOptions) (*Writer, error) {
	dynamic := true
	switch opts.Subformat {
	case "", SubformatDynamic:
	case SubformatFixed:
		dynamic = false
	default:
		return nil, image.FileErrorf(name, "invalid VHD subformat %q (want dynamic or fixed): %w", opts.Subformat, image.ErrInvalidArgument)
	}
	if size < 0 {
		return nil, image.FileErrorf(name, "negative disk size %d: %w", size, image.ErrInvalidArgument)
	}
	// qemu-img rounds the size up to whole sectors, then (without
	// force_size) up to a CHS geometry; the geometry written is the one
	// of the rounded size.
	size = (size + 511) &^ 511
	_, _, _, sectors, err := roundedSize(size, opts.ForceSize)
	if err != nil {
		return nil, image.FileErrorf(name, "%w", err)
	}
	size = sectors * 512
	cyls, heads, secs, _, err := roundedSize(size, opts.ForceSize)
	if err != nil {
		return nil, image.FileErrorf(name, "%w", err)
	}
	w := &Writer{f: f, name: name, size: size, dynamic: dynamic, dirty: true}
	w.foot = footer{
		features:    2, // "reserved", always set
		version:     0x00010000,
		dataOffset:  ^uint64(0),
		timestamp:   uint32(time.Now().Unix() - timestampBase),
		creatorApp:  [4]byte{'q', 'e', 'm', 'u'},
		creatorVer:  0x00050003, // Virtual PC 2007, as qemu-img writes
		creatorOS:   [4]byte{'W', 'i', '2', 'k'},
		origSize:    uint64(size),
		currentSize: uint64(size),
		cyls:        cyls,
		heads:       heads,
		secsPerCyl:  secs,
		diskType:    typeFixed,
	}
	if opts.ForceSize {
		w.foot.creatorApp = [4]byte{'q', 'e', 'm', '2'}
	}
	if _, err := rand.Read(w.foot.uuid[:]); err != nil {
		return nil, err
	}
	// A random (version 4) UUID, as QEMU's qemu_uuid_generate makes.
	w.foot.uuid[6] = w.foot.uuid[6]&0x0f | 0x40
	w.foot.uuid[8] = w.foot.uuid[8]&0x3f | 0x80
	if err := f.Truncate(0); err != nil {
		return nil, image.FileErrorf(name, "%w", err)
	}
	if dynamic {
		w.foot.diskType = typeDynamic
		w.foot.dataOffset = dynHeaderOffset
		entries := (sectors + defaultBlockSize/512 - 1) / (defaultBlockSize / 512)
		w.bat = make([]uint32, entries)
		for i := range w.bat {
			w.bat[i] = unallocated
		}
		w.next = batOffset + (entries*4+511)&^511
	} else {
		// The data area starts as one hole; only data is written. Like
		// qemu-img (file-posix's allocate_first_block), the first 4 KiB
		// are written as zeros, so that the file is never all hole and
		// tools probing O_DIRECT alignment find an allocated block; it
		// also makes qemu-img map show the same as for qemu-img's image.
		if err := f.Truncate(size + footerSize); err != nil {
			return nil, image.FileErrorf(name, "%w", err)
		}
		if _, err := f.WriteAt(make([]byte, min(4096, size+footerSize)), 0); err != nil {
			return nil, image.FileErrorf(name, "%w", err)
		}
	}
	return w, nil
}

// Size is the virtual size of the disk being written: the size asked for,
// rounded up to whole sectors and, unless ForceSize, to the next size a
// CHS geometry describes (what qemu-img convert -O vpc gives).
func (w *Writer) Size() int64 { return w.size }

// advance checks that [off, off+n) comes after everything written so far
// and lies inside the disk, and moves past it.
func (w *Writer) advance(off, n int64) error {
	if w.closed {
		return image.FileErrorf(w.name, "write after Close: %w", image.ErrInvalidArgument)
	}
	if off < w.pos || n < 0 {
		return image.FileErrorf(w.name, "write of %d bytes at %d is out of order (next offset is %d): %w", n, off, w.pos, image.ErrInvalidArgument)
	}
	if off > w.size || n > w.size-off {
		return image.FileErrorf(w.name, "write of %d bytes at %d is past the end of the disk (%d bytes): %w", n, off, w.size, image.ErrInvalidArgument)
	}
	w.pos = off + n
	return nil
}

// WriteAt writes guest data at off, which must not be before the end of
// the previous write. In a dynamic disk a block is allocated only when it
// receives a non-zero byte.
func (w *Writer) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.advance(off, int64(len(p))); err != nil {
		return 0, err
	}
	if !w.dynamic {
		n, err := w.f.WriteAt(p, off)
		if err != nil {
			return n, image.FileErrorf(w.name, "%w", err)
		}
		return n, nil
	}
	for done := 0; done < len(p); {
		pos := off + int64(done)
		idx, in := pos/defaultBlockSize, pos%defaultBlockSize
		chunk := p[done : done+int(min(int64(len(p)-done), defaultBlockSize-in))]
		if w.bat[idx] != unallocated || !isZero(chunk) {
			base, err := w.block(idx)
			if err != nil {
				return done, err
			}
			if _, err := w.f.WriteAt(chunk, base+in); err != nil {
				return done, image.FileErrorf(w.name, "%w", err)
			}
		}
		done += len(chunk)
	}
	return len(p), nil
}

// block returns where block idx's data starts in the file, allocating it
// at the end of the file if needed. The bitmap says every sector is
// present, as qemu-img writes it: the parts of the block never written lie
// beyond the old end of the file and read as zeros.
func (w *Writer) block(idx int64) (int64, error) {
	bm := int64(bitmapSize(defaultBlockSize))
	if w.bat[idx] == unallocated {
		if _, err := w.f.WriteAt(bytes.Repeat([]byte{0xff}, int(bm)), w.next); err != nil {
			return 0, image.FileErrorf(w.name, "%w", err)
		}
		w.bat[idx] = uint32(w.next / 512)
		w.next += bm + defaultBlockSize
		w.dirty = true
	}
	return int64(w.bat[idx])*512 + bm, nil
}

// WriteZeroes records that [off, off+n) reads as zeros. Nothing is
// written: the region is a hole of a fixed disk's file, an unallocated
// block, or never-written space of an allocated block.
func (w *Writer) WriteZeroes(off, n int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.advance(off, n)
}

// writeMeta writes the footers, and for a dynamic disk the header and
// BAT, so that the file is a complete VHD of what was written so far.
func (w *Writer) writeMeta() error {
	if !w.dirty {
		return nil
	}
	foot := w.foot.encode()
	if !w.dynamic {
		if _, err := w.f.WriteAt(foot, w.size); err != nil {
			return image.FileErrorf(w.name, "%w", err)
		}
		w.dirty = false
		return nil
	}
	batLen := (int64(len(w.bat))*4 + 511) &^ 511
	meta := make([]byte, batOffset+batLen)
	copy(meta, foot)
	copy(meta[dynHeaderOffset:], encodeDynHeader(batOffset, uint32(len(w.bat)), defaultBlockSize))
	bat := meta[batOffset:]
	for i := range bat {
		bat[i] = 0xff // padding entries are unallocated, as qemu-img writes them
	}
	for i, v := range w.bat {
		binary.BigEndian.PutUint32(bat[i*4:], v)
	}
	if _, err := w.f.WriteAt(meta, 0); err != nil {
		return image.FileErrorf(w.name, "%w", err)
	}
	if _, err := w.f.WriteAt(foot, w.next); err != nil {
		return image.FileErrorf(w.name, "%w", err)
	}
	w.dirty = false
	return nil
}

// Flush writes the metadata and syncs the file, so that what has been
// written so far is a complete, durable VHD.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return image.FileErrorf(w.name, "flush after Close: %w", image.ErrInvalidArgument)
	}
	if err := w.writeMeta(); err != nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		return image.FileErrorf(w.name, "%w", err)
	}
	return nil
}

// Close writes the metadata and closes the file; it does not sync (call
// Flush first for durability). Calling it again does nothing.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.writeMeta()
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = image.FileErrorf(w.name, "%w", cerr)
	}
	return err
}

// zeroPage lets isZero compare with the runtime's vectorised memequal.
var zeroPage [64 << 10]byte

func isZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroPage))
		if !bytes.Equal(b[:n], zeroPage[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}
