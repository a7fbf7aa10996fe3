package redo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/atomicfile"
)

// ErrIncomplete is Read's error for a log that never committed: the
// edit it held did not happen and none of it reached the device, so the
// log is to be removed (Remove).
var ErrIncomplete = errors.New("redo: the log holds an edit that never committed")

// Pending is a committed log whose writes may not all be on the device
// yet: an edit to finish (Replay) or to look at (View).
type Pending struct {
	// Target is the device the log's writes are for.
	Target Target
	path   string
	f      *os.File
	foot   footer
}

// Read opens the log at path and checks it whole: header, footer, every
// table entry (sorted, disjoint, inside the device and the log) and the
// CRCs of the table and of the data, reading the file once. A log that
// never committed gives an error wrapping ErrIncomplete; a file that is
// not a log, or a committed log that is damaged, an error naming it and
// wrapping image.ErrCorrupt; no log, one wrapping fs.ErrNotExist.
func Read(path string) (*Pending, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	p, err := read(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return p, nil
}

func read(f *os.File, path string) (*Pending, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	incomplete := image.FileErrorf(path, "%w", ErrIncomplete)
	if size < headerSize {
		return nil, incomplete // created, header not yet durable
	}
	hb := make([]byte, headerSize)
	if _, err := f.ReadAt(hb, 0); err != nil {
		return nil, image.FileErrorf(path, "reading the redo log: %w", err)
	}
	if !bytes.Equal(hb[:len(headerMagic)], headerMagic) {
		if bytes.Count(hb, []byte{0}) == len(hb) {
			return nil, incomplete // created, header not yet durable
		}
		return nil, image.FileErrorf(path, "not a qimg redo log (no %q header); move it away: %w", headerMagic, image.ErrCorrupt)
	}
	fb := make([]byte, footerSize)
	if size >= headerSize+footerSize {
		if _, err := f.ReadAt(fb, size-footerSize); err != nil {
			return nil, image.FileErrorf(path, "reading the redo log: %w", err)
		}
	}
	h, herr := decodeHeader(hb)
	if herr != nil {
		if errors.Is(herr, image.ErrUnsupported) {
			return nil, image.FileErrorf(path, "redo log: %w", herr)
		}
		// A torn header is an edit that never committed, unless its
		// footer is there.
		if footerOf(fb, hb) {
			return nil, image.FileErrorf(path, "redo log: %w", herr)
		}
		return nil, incomplete
	}
	foot, found, err := decodeFooter(fb, h, size)
	if err != nil {
		return nil, image.FileErrorf(path, "redo log: %w", err)
	}
	if !found || size < headerSize+footerSize {
		return nil, incomplete
	}
	p := &Pending{Target: h.target, path: path, f: f, foot: foot}
	if err := p.verify(); err != nil {
		return nil, image.FileErrorf(path, "redo log: %w", err)
	}
	return p, nil
}

// footerOf reports whether fb is a footer written for the damaged header
// hb: one that names its nonce or its CRC.
func footerOf(fb, hb []byte) bool {
	if !bytes.Equal(fb[:8], footerMagic) || crc(fb[:footerSize-4]) != le.Uint32(fb[footerSize-4:]) {
		return false
	}
	return le.Uint64(fb[8:]) == le.Uint64(hb[16:]) || le.Uint32(fb[40:]) == le.Uint32(hb[headerSize-4:])
}

// verify checks the table's entries and CRC and the data's CRC.
func (p *Pending) verify() error {
	tcrc := uint32(0)
	var last extent
	err := p.entries(0, p.foot.count, func(i int64, e extent, raw []byte) error {
		tcrc = crc32.Update(tcrc, castagnoli, raw)
		switch {
		case e.n <= 0 || e.off < 0 || e.off > p.Target.Size-e.n:
			return fmt.Errorf("entry %d: [%d,+%d) outside the device of %d bytes: %w", i, e.off, e.n, p.Target.Size, image.ErrCorrupt)
		case e.pos != zeroPos && (e.pos < headerSize || e.pos > p.foot.tableOff-e.n):
			return fmt.Errorf("entry %d: its %d bytes at %d lie outside the log's data: %w", i, e.n, e.pos, image.ErrCorrupt)
		case i > 0 && e.off < last.end():
			return fmt.Errorf("entry %d at %d overlaps or precedes the one before: %w", i, e.off, image.ErrCorrupt)
		}
		last = e
		return nil
	})
	if err != nil {
		return err
	}
	if tcrc != p.foot.tableCRC {
		return fmt.Errorf("table checksum mismatch: %w", image.ErrCorrupt)
	}
	dcrc := crc32.New(castagnoli)
	if _, err := io.Copy(dcrc, io.NewSectionReader(p.f, headerSize, p.foot.tableOff-headerSize)); err != nil {
		return fmt.Errorf("reading the data: %w", err)
	}
	if dcrc.Sum32() != p.foot.dataCRC {
		return fmt.Errorf("data checksum mismatch: %w", image.ErrCorrupt)
	}
	return nil
}

// entries calls fn for the table entries [from, to), read in batches.
func (p *Pending) entries(from, to int64, fn func(i int64, e extent, raw []byte) error) error {
	const batch = 4096
	buf := make([]byte, min(batch, max(to-from, 0))*entrySize)
	for i := from; i < to; {
		n := min(batch, to-i)
		b := buf[:n*entrySize]
		if _, err := p.f.ReadAt(b, p.foot.tableOff+i*entrySize); err != nil {
			return fmt.Errorf("reading the table: %w", readErr(err))
		}
		for k := range n {
			raw := b[k*entrySize : (k+1)*entrySize]
			if err := fn(i+k, decodeEntry(raw), raw); err != nil {
				return err
			}
		}
		i += n
	}
	return nil
}

// Path is the log file's name.
func (p *Pending) Path() string { return p.path }

// Close closes the log file; the log stays.
func (p *Pending) Close() error { return p.f.Close() }

// Replay finishes the edit: it writes the log's extents to dev (the
// device of p.Target, whose size must match), flushes it, then removes
// the log and syncs its directory, closing p. Replaying again after a
// crash in the middle writes the same bytes: it is safe at any point
// until the log is gone.
func (p *Pending) Replay(ctx context.Context, dev image.WritableImage, opts ...Option) error {
	if dev.Size() != p.Target.Size {
		return image.FileErrorf(p.path, "redo log for %v: the device has %d bytes: %w", p.Target, dev.Size(), image.ErrInvalidArgument)
	}
	var l Log
	for _, o := range opts {
		o(&l)
	}
	buf := make([]byte, min(maxCopy, p.foot.tableOff-headerSize))
	err := p.entries(0, p.foot.count, func(_ int64, e extent, _ []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return applyExtent(p.f, dev, e, buf, l.trace)
	})
	if err == nil {
		err = finish(p.f, p.path, dev, l.trace)
	}
	if err != nil {
		return image.FileErrorf(p.path, "replaying the redo log: %w", err)
	}
	return nil
}

// View returns dev (the device of p.Target) as the log's edit leaves
// it, read-only and in memory: the device is not written. It reads the
// log until p is closed.
func (p *Pending) View(dev image.Image) (image.Image, error) {
	if dev.Size() != p.Target.Size {
		return nil, image.FileErrorf(p.path, "redo log for %v: the device has %d bytes: %w", p.Target, dev.Size(), image.ErrInvalidArgument)
	}
	return &view{p: p, dev: dev}, nil
}

// view is a device seen through a pending log; lookups search the
// sorted table in the file, so memory does not grow with the log.
type view struct {
	p   *Pending
	dev image.Image
}

func (v *view) Size() int64  { return v.dev.Size() }
func (v *view) Close() error { return nil }

func (v *view) ReadAt(b []byte, off int64) (int, error) {
	return overlayRead(b, off, v.dev, v.p.f, v.overlapping)
}

// overlapping calls fn for the logged extents overlapping [off, off+n),
// clipped to it.
func (v *view) overlapping(off, n int64, fn func(extent)) error {
	p := v.p
	var rerr error
	entry := func(i int64) extent {
		var e extent
		if rerr == nil {
			rerr = p.entries(i, i+1, func(_ int64, got extent, _ []byte) error { e = got; return nil })
		}
		return e
	}
	first := int64(sort.Search(int(p.foot.count), func(i int) bool { return entry(int64(i)).end() > off }))
	end := off + n
	for i := first; i < p.foot.count && rerr == nil; i++ {
		e := entry(i)
		if rerr != nil || e.off >= end {
			break
		}
		if e.off < off {
			e = e.from(off)
		}
		if e.end() > end {
			e = e.until(end)
		}
		fn(e)
	}
	return rerr
}

func (v *view) Extent(start, length int64) (image.Extent, error) {
	return overlayExtent(start, length, v.dev, v.overlapping)
}

// Remove removes the log at path (one that never committed, or one that
// is not wanted) and syncs its directory.
func Remove(path string) error {
	if err := os.Remove(path); err != nil {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}
