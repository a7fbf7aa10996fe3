package ext4

import (
	"bytes"
	"io"
	"slices"
)

// Device is what a writable FS edits: the bytes of the file system (an
// image.WritableImage, or a window of one). Flush makes what was written
// durable; it orders the steps of a commit. A Device that also has a
// Commit(context.Context) error method (a redo log, package guestfs/redo)
// holds the writes until that is called, at the end of FS.Commit, and
// one with Discard() error is told when FS.Discard drops the staged
// changes.
type Device interface {
	io.ReaderAt
	io.WriterAt
	Flush() error
}

// tx is the open transaction of a writable FS: the metadata blocks
// changed since the last commit, kept whole in memory and read back by
// every read of the FS, so the reader sees its own changes. Nothing in
// tx reaches the device before Commit.
//
// File data is staged apart (data): it is not journaled, and is written
// before the transaction commits, only to blocks free both now and at the
// last commit (see allocBlocks), which the file system as committed does
// not use; a crash leaves such blocks unreferenced and free. Up to
// maxStagedData bytes of it wait in memory, so that an edit that fails
// (a missing path, a full disk) leaves the image untouched; beyond that
// it is written to its blocks at once, keeping memory bounded.
type tx struct {
	blocks map[uint64][]byte
	data   map[uint64][]byte
	staged int64 // bytes in data
	// orig holds the committed contents of the block bitmaps changed,
	// which allocation must respect besides the current ones.
	orig map[uint64][]byte
	// undo is what the operation under way puts back if it fails (see
	// atomically); nil between operations.
	undo *undo
}

// undo is the state before one operation: the contents each block had
// in the transaction and each data block had staged before the operation
// first touched it (nil: not there), the committed bitmaps it first
// read, the superblock's counts.
type undo struct {
	blocks map[uint64][]byte
	data   map[uint64][]byte
	orig   []uint64
	sb     superblock
}

// save records block b as it stands, before the operation changes it.
func (t *tx) save(b uint64) {
	u := t.undo
	if u == nil {
		return
	}
	if _, done := u.blocks[b]; done {
		return
	}
	u.blocks[b] = bytes.Clone(t.blocks[b])
}

// saveData records the data staged for block b before the operation
// replaces or drops it (staged blocks are never changed in place).
func (t *tx) saveData(b uint64) {
	if u := t.undo; u != nil {
		if _, done := u.data[b]; !done {
			u.data[b] = t.data[b]
		}
	}
}

// atomically starts a write operation; the function it returns ends it,
// given the operation's error. An operation may fail half way (no space
// for its last block, a corrupt structure met late), and then everything
// it staged is put back, so a failed operation changes nothing (file
// data it wrote past the bound of what is staged lies in blocks free
// again). Use as
// defer f.atomically()(&err).
func (f *FS) atomically() func(*error) {
	if f.tx == nil || f.tx.undo != nil {
		return func(*error) {}
	}
	f.tx.undo = &undo{blocks: map[uint64][]byte{}, data: map[uint64][]byte{}, sb: *f.sb}
	return func(err *error) {
		u := f.tx.undo
		f.tx.undo = nil
		if *err == nil {
			return
		}
		for b, blk := range u.blocks {
			if blk == nil {
				delete(f.tx.blocks, b)
			} else {
				f.tx.blocks[b] = blk
			}
		}
		for _, b := range u.orig {
			delete(f.tx.orig, b)
		}
		for b, d := range u.data {
			if d == nil {
				delete(f.tx.data, b)
			} else {
				f.tx.data[b] = d
			}
		}
		f.tx.staged = 0
		for _, d := range f.tx.data {
			f.tx.staged += int64(len(d))
		}
		*f.sb = u.sb
		f.dropCaches()
	}
}

// dirty returns the changed blocks in block order.
func (t *tx) dirty() []uint64 {
	nums := make([]uint64, 0, len(t.blocks))
	for b := range t.blocks {
		nums = append(nums, b)
	}
	slices.Sort(nums)
	return nums
}

// overlay copies the transaction's blocks over p, which was read at off
// from the device.
func (f *FS) overlay(p []byte, off int64) {
	bs := f.sb.blockSize
	if f.replayed != nil {
		overlayBlocks(p, off, bs, f.replayed)
	}
	if f.tx != nil {
		overlayBlocks(p, off, bs, f.tx.data)
		overlayBlocks(p, off, bs, f.tx.blocks)
	}
}

// overlayBlocks copies blocks over p, which was read at off.
func overlayBlocks(p []byte, off, bs int64, blocks map[uint64][]byte) {
	for b := off / bs; b*bs < off+int64(len(p)); b++ {
		if blk, ok := blocks[uint64(b)]; ok {
			lo, hi := max(b*bs, off), min((b+1)*bs, off+int64(len(p)))
			copy(p[lo-off:hi-off], blk[lo-b*bs:hi-b*bs])
		}
	}
}

// metaBlock returns the transaction's copy of block b, for changing in
// place: the current contents the first time it is asked for.
func (f *FS) metaBlock(b uint64) ([]byte, error) {
	if blk, ok := f.tx.blocks[b]; ok {
		f.tx.save(b)
		return blk, nil
	}
	if !f.validRange(b, 1) && b != 0 {
		return nil, f.corrupt("write to block %d out of range (%d blocks)", b, f.sb.blocksCount)
	}
	blk := make([]byte, f.sb.blockSize)
	if err := f.readAt(blk, int64(b)*f.sb.blockSize); err != nil {
		return nil, err
	}
	f.tx.save(b)
	f.tx.blocks[b] = blk
	return blk, nil
}

// newMetaBlock is metaBlock for a block just allocated: zeros, not read.
func (f *FS) newMetaBlock(b uint64) []byte {
	blk := make([]byte, f.sb.blockSize)
	f.tx.save(b)
	f.tx.blocks[b] = blk
	return blk
}

// writeMeta changes len(p) bytes at byte offset off through the
// transaction.
func (f *FS) writeMeta(p []byte, off int64) error {
	bs := f.sb.blockSize
	for len(p) > 0 {
		b := off / bs
		blk, err := f.metaBlock(uint64(b))
		if err != nil {
			return err
		}
		n := copy(blk[off-b*bs:], p)
		p, off = p[n:], off+int64(n)
	}
	return nil
}

// maxStagedData is how much file data waits in memory for the commit.
const maxStagedData = 64 << 20

// stageData queues file data for blocks from b on (len(p) a multiple of
// the block size), writing the queue out when it grows past its bound.
func (f *FS) stageData(b uint64, p []byte) error {
	bs := int(f.sb.blockSize)
	for i := 0; i < len(p); i += bs {
		f.tx.saveData(b + uint64(i/bs))
		f.tx.data[b+uint64(i/bs)] = bytes.Clone(p[i : i+bs])
	}
	f.tx.staged += int64(len(p))
	if f.tx.staged > maxStagedData {
		return f.flushData()
	}
	return nil
}

// flushData writes the queued file data to its blocks, runs of
// consecutive blocks in one write each.
func (f *FS) flushData() error {
	nums := make([]uint64, 0, len(f.tx.data))
	for b := range f.tx.data {
		nums = append(nums, b)
	}
	slices.Sort(nums)
	bs := f.sb.blockSize
	var run []byte
	start := uint64(0)
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		_, err := writeUnused(f.dev, run, int64(start)*bs)
		run = run[:0]
		return f.writeErr(err)
	}
	for i, b := range nums {
		if i > 0 && (b != nums[i-1]+1 || len(run) >= 1<<20) {
			if err := flush(); err != nil {
				return err
			}
		}
		if len(run) == 0 {
			start = b
		}
		run = append(run, f.tx.data[b]...)
	}
	if err := flush(); err != nil {
		return err
	}
	clear(f.tx.data)
	f.tx.staged = 0
	return nil
}

// unusedWriter is a device that writes bytes the committed file system
// does not use straight to the disk (a redo log: they need no logging,
// a crash leaves them unreferenced).
type unusedWriter interface {
	WriteUnused(p []byte, off int64) (int, error)
}

// writeUnused writes file data, which goes only to blocks free both now
// and at the last commit.
func writeUnused(dev Device, p []byte, off int64) (int, error) {
	if u, ok := dev.(unusedWriter); ok {
		return u.WriteUnused(p, off)
	}
	return dev.WriteAt(p, off)
}
