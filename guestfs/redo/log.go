package redo

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/atomicfile"
)

// Log is a device (an image.WritableImage) whose writes wait in a redo
// log file until Commit: the device is not written before then, and
// reads see the device with the logged writes laid over it. Commit makes
// the log durable, which is the moment the edit happens, then writes it
// to the device and removes it. It is safe for concurrent use.
type Log struct {
	dev    image.WritableImage
	path   string
	target Target
	trace  Trace

	mu     sync.RWMutex
	f      *os.File // the open transaction's log; nil before its first write
	nonce  uint64
	hcrc   uint32 // the header's CRC
	idx    *index
	end    int64  // where the next write's bytes go in f
	crc    uint32 // of the data written so far
	broken error  // set when the log can no longer be used
	// unflushed is set when WriteUnused wrote the device since the
	// last commit: the device is flushed before the next.
	unflushed bool
	// committed is set between the commit moment and the removal of
	// the log: the file must then stay until its writes are on the
	// device.
	committed bool
}

// Option configures a Log.
type Option func(*Log)

// WithTrace has t called before each step the log makes.
func WithTrace(t Trace) Option { return func(l *Log) { l.trace = t } }

var _ image.WritableImage = (*Log)(nil)

// New returns a Log that keeps the writes to dev, the device t names, in
// a file at path until Commit. The file is created at the first write
// (it must not exist then: an interrupted edit is Read and replayed, or
// removed, first) and removed when its writes are on the device.
func New(dev image.WritableImage, path string, t Target, opts ...Option) (*Log, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	if t.Size != dev.Size() {
		return nil, fmt.Errorf("redo: target %v is not the device's %d bytes: %w", t, dev.Size(), image.ErrInvalidArgument)
	}
	l := &Log{dev: dev, path: path, target: t, idx: newIndex(), end: headerSize}
	for _, o := range opts {
		o(l)
	}
	return l, nil
}

// Path is where the log file is (or will be).
func (l *Log) Path() string { return l.path }

// Size is the device's size.
func (l *Log) Size() int64 { return l.dev.Size() }

// ReadAt reads the device with the logged writes laid over it.
func (l *Log) ReadAt(p []byte, off int64) (int, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.idx.empty() {
		return l.dev.ReadAt(p, off)
	}
	return overlayRead(p, off, l.dev, l.f, l.each)
}

// Extent reports logged runs as data of this image, and the device's
// extents elsewhere.
func (l *Log) Extent(start, length int64) (image.Extent, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return overlayExtent(start, length, l.dev, l.each)
}

// each lists the logged extents overlapping [off, off+n).
func (l *Log) each(off, n int64, fn func(extent)) error {
	l.idx.overlapping(off, n, fn)
	return nil
}

// WriteAt appends p to the log; the device is written at Commit.
func (l *Log) WriteAt(p []byte, off int64) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(off, int64(len(p))); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := l.open(); err != nil {
		return 0, err
	}
	l.trace.step(LogWrite)
	if _, err := l.f.WriteAt(p, l.end); err != nil {
		return 0, l.abandon(fmt.Errorf("redo: writing the log %s: %w", l.path, err))
	}
	l.crc = crc32.Update(l.crc, castagnoli, p)
	l.idx.insert(extent{off, int64(len(p)), l.end})
	l.end += int64(len(p))
	return len(p), nil
}

// WriteUnused writes p to bytes that the filesystem on the device, as
// last committed, does not use (the data of new files, in free blocks):
// they go to the device at once, not through the log, since a crash
// leaves them unreferenced; Commit flushes them before the commit
// moment. Bytes the log already holds are logged again instead, so the
// newest write wins. ext4 and fat write file data through it.
func (l *Log) WriteUnused(p []byte, off int64) (int, error) {
	l.mu.Lock()
	logged := false
	l.idx.overlapping(off, int64(len(p)), func(extent) { logged = true })
	if err := l.usable(off, int64(len(p))); err != nil || logged {
		l.mu.Unlock()
		if err != nil {
			return 0, err
		}
		return l.WriteAt(p, off)
	}
	defer l.mu.Unlock()
	l.trace.step(DeviceWrite)
	n, err := l.dev.WriteAt(p, off)
	if err != nil {
		return n, err
	}
	l.unflushed = true
	return n, nil
}

// WriteZeroes logs that [off, off+length) reads as zeros.
func (l *Log) WriteZeroes(off, length int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(off, length); err != nil {
		return err
	}
	if length == 0 {
		return nil
	}
	if err := l.open(); err != nil {
		return err
	}
	l.idx.insert(extent{off, length, zeroPos})
	return nil
}

// Flush does nothing: the logged writes become durable all at once, at
// Commit, and the device is not written before.
func (l *Log) Flush() error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.broken
}

func (l *Log) usable(off, n int64) error {
	if l.broken != nil {
		return l.broken
	}
	if off < 0 || n < 0 || off > l.Size() || n > l.Size()-off {
		return fmt.Errorf("write [%d,+%d) outside the device of %d bytes: %w", off, n, l.Size(), image.ErrInvalidArgument)
	}
	return nil
}

// open creates the log file of a new transaction, with its header.
func (l *Log) open() error {
	if l.f != nil {
		return nil
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("redo: %s exists: another qimg is editing the image, or an interrupted edit must be finished first: %w", l.path, image.ErrInvalidArgument)
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in the message already
		}
		return fmt.Errorf("cannot create the redo log %s, which makes the commit all or nothing (nothing was changed): %w", l.path, err)
	}
	l.f, l.nonce = f, rand.Uint64()
	h := encodeHeader(l.target, l.nonce)
	l.hcrc = le.Uint32(h[headerSize-4:])
	l.trace.step(LogWrite)
	if _, err := f.WriteAt(h, 0); err != nil {
		return l.abandon(fmt.Errorf("redo: writing the log %s: %w", l.path, err))
	}
	return nil
}

// abandon drops a transaction that has not committed: none of it
// reached the device, so the log file goes. The Log stays unusable
// (the filesystem above may hold state the device never will).
func (l *Log) abandon(err error) error {
	l.drop()
	l.broken = err
	return err
}

// drop removes the open transaction's file and forgets its writes.
func (l *Log) drop() {
	if l.f != nil {
		l.f.Close()
		os.Remove(l.path)
	}
	l.f, l.idx, l.end, l.crc = nil, newIndex(), headerSize, 0
}

// Discard drops the logged writes that have not been committed; the
// device is as it was.
func (l *Log) Discard() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.committed {
		return l.broken
	}
	l.drop()
	return nil
}

// Close drops an uncommitted transaction, as Discard does, and closes
// the log; the device stays open. A log whose writes failed to reach
// the device after its commit is kept for the next Read.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.committed {
		if l.f != nil {
			l.f.Close()
			l.f = nil
		}
		return nil
	}
	l.drop()
	if l.broken == nil {
		l.broken = fmt.Errorf("redo: %s: the log is closed: %w", l.path, image.ErrInvalidArgument)
	}
	return nil
}

// Commit makes the logged writes happen, all at once: it writes the
// log's table and footer and syncs it and its directory (the commit
// moment: from then on a crash leaves a log that Read and Replay finish),
// then writes them to the device, flushes it and removes the log. If ctx
// is done before the commit moment the logged writes are dropped and the
// Log is unusable; after it, Commit finishes. An error after the commit moment
// leaves the log in place, to be replayed, and the Log unusable.
func (l *Log) Commit(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken != nil {
		return l.broken
	}
	if l.f == nil && !l.unflushed {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return l.abandon(err)
	}
	if l.unflushed {
		// The data the log's metadata will point at must be durable
		// before the log is.
		l.trace.step(DeviceFlush)
		if err := l.dev.Flush(); err != nil {
			return l.abandon(fmt.Errorf("redo: flushing the device: %w", err))
		}
		l.unflushed = false
	}
	if l.f == nil {
		return nil
	}
	table := l.idx.sorted()
	if err := l.seal(table); err != nil {
		return l.abandon(err)
	}
	l.committed = true
	if err := l.apply(table); err != nil {
		l.broken = fmt.Errorf("redo: the edit is committed in %s but was not all written to the device (qimg finishes it when it next opens the image for editing): %w", l.path, err)
		return l.broken
	}
	l.committed = false
	l.f, l.idx, l.end, l.crc = nil, newIndex(), headerSize, 0
	return nil
}

// seal writes the table and the footer, each synced, and syncs the
// directory: after it the log is complete and durable.
func (l *Log) seal(table []extent) error {
	ft := footer{nonce: l.nonce, tableOff: l.end, count: int64(len(table)), dataCRC: l.crc, headerCRC: l.hcrc}
	tcrc := uint32(0)
	const batch = 4096
	buf := make([]byte, 0, batch*entrySize)
	off := l.end
	for i := 0; i < len(table); i += batch {
		buf = buf[:0]
		for _, e := range table[i:min(i+batch, len(table))] {
			buf = buf[:len(buf)+entrySize]
			encodeEntry(buf[len(buf)-entrySize:], e)
		}
		tcrc = crc32.Update(tcrc, castagnoli, buf)
		l.trace.step(LogWrite)
		if _, err := l.f.WriteAt(buf, off); err != nil {
			return fmt.Errorf("redo: writing the log %s: %w", l.path, err)
		}
		off += int64(len(buf))
	}
	ft.tableCRC = tcrc
	if err := l.sync(); err != nil {
		return err
	}
	l.trace.step(LogWrite)
	if _, err := l.f.WriteAt(ft.encode(), off); err != nil {
		return fmt.Errorf("redo: writing the log %s: %w", l.path, err)
	}
	if err := l.sync(); err != nil {
		return err
	}
	l.trace.step(DirSync)
	if err := atomicfile.SyncDir(filepath.Dir(l.path)); err != nil {
		return fmt.Errorf("redo: syncing the directory of %s: %w", l.path, err)
	}
	return nil
}

func (l *Log) sync() error {
	l.trace.step(LogSync)
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("redo: syncing the log %s: %w", l.path, err)
	}
	return nil
}

// apply writes the table's extents to the device, flushes it, and
// removes the log.
func (l *Log) apply(table []extent) error {
	buf := make([]byte, min(maxCopy, l.end-headerSize))
	for _, e := range table {
		if err := applyExtent(l.f, l.dev, e, buf, l.trace); err != nil {
			return err
		}
	}
	return finish(l.f, l.path, l.dev, l.trace)
}

// maxCopy bounds the buffer that carries logged bytes to the device.
const maxCopy = 1 << 20

// applyExtent writes one logged extent from log to dev.
func applyExtent(log io.ReaderAt, dev image.WritableImage, e extent, buf []byte, trace Trace) error {
	if e.pos == zeroPos {
		trace.step(DeviceWrite)
		return dev.WriteZeroes(e.off, e.n)
	}
	for done := int64(0); done < e.n; {
		b := buf[:min(int64(len(buf)), e.n-done)]
		if _, err := log.ReadAt(b, e.pos+done); err != nil {
			return fmt.Errorf("reading the log: %w", err)
		}
		trace.step(DeviceWrite)
		if _, err := dev.WriteAt(b, e.off+done); err != nil {
			return err
		}
		done += int64(len(b))
	}
	return nil
}

// finish flushes the device, then removes the log (closing f) and syncs
// its directory.
func finish(f *os.File, path string, dev image.WritableImage, trace Trace) error {
	trace.step(DeviceFlush)
	if err := dev.Flush(); err != nil {
		return err
	}
	f.Close()
	trace.step(LogRemove)
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("removing the log: %w", err)
	}
	trace.step(DirSync)
	return atomicfile.SyncDir(filepath.Dir(path))
}
