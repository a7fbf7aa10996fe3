package ext4

import (
	"context"
	"encoding/binary"
	"io"

	"github.com/qimg/qimg/image"
)

// roCompatWritable are the read-only compatible features the writer
// keeps right; any other (quota files it would have to recount,
// bigalloc clusters, verity, ...) makes the file system read-only here.
const roCompatWritable = roCompatSparseSuper | roCompatLargeFile | roCompatHugeFile |
	roCompatGdtCsum | roCompatDirNlink | roCompatExtraIsize | roCompatMetadataCsum |
	roCompatOrphan

// OpenWritable opens the file system on dev for editing. A journal that
// needs recovery is replayed first, as the kernel and e2fsck would (that
// is the one write made before Commit). Features the writer does not keep
// right are refused with image.ErrUnsupported naming them.
func OpenWritable(dev Device, size int64, name string) (*FS, error) {
	f, err := Open(dev, size, name)
	if err != nil {
		return nil, err
	}
	if bad := f.sb.roCompat &^ roCompatWritable; bad != 0 {
		return nil, image.FileErrorf(name, "ext4 feature %s: qimg reads but does not write such file systems: %w",
			joinNames(names(bad, roCompatNames)), image.ErrUnsupported)
	}
	if f.sb.has(incompatMetaBG) || f.sb.has(incompatEAInode) {
		return nil, image.FileErrorf(name, "ext4 feature meta_bg or ea_inode: qimg reads but does not write such file systems: %w", image.ErrUnsupported)
	}
	f.dev = dev
	f.tx = newTx()
	j, err := f.openJournal()
	if err != nil {
		return nil, err
	}
	if j != nil && (j.start != 0 || f.sb.has(incompatRecover)) {
		if err := f.recoverJournal(j); err != nil {
			return nil, err
		}
		return OpenWritable(dev, size, name)
	}
	return f, nil
}

func newTx() *tx {
	return &tx{blocks: map[uint64][]byte{}, orig: map[uint64][]byte{}, data: map[uint64][]byte{}}
}

func joinNames(n []string) string {
	out := ""
	for i, s := range n {
		if i > 0 {
			out += ", "
		}
		out += s
	}
	return out
}

// recoverJournal writes back the journal's complete transactions, then
// empties it and clears needs_recovery.
func (f *FS) recoverJournal(j *journal) error {
	blocks, seq, err := j.replay()
	if err != nil {
		return err
	}
	for b, data := range blocks {
		if _, err := f.dev.WriteAt(data, int64(b)*f.sb.blockSize); err != nil {
			return f.writeErr(err)
		}
	}
	if err := f.dev.Flush(); err != nil {
		return f.writeErr(err)
	}
	return f.endJournal(j, seq)
}

// endJournal empties the journal (the next transaction is seq) and
// clears needs_recovery, each step durable before the next.
func (f *FS) endJournal(j *journal, seq uint32) error {
	j.start, j.seq = 0, seq
	if err := j.writeSuper(); err != nil {
		return f.writeErr(err)
	}
	if err := f.dev.Flush(); err != nil {
		return f.writeErr(err)
	}
	if err := f.setRecoverFlag(false); err != nil {
		return err
	}
	return f.writeErr(f.dev.Flush())
}

// setRecoverFlag sets or clears needs_recovery in the superblock on the
// device (not in the transaction).
func (f *FS) setRecoverFlag(on bool) error {
	b := make([]byte, superblockSize)
	if _, err := f.r.ReadAt(b, superblockOffset); err != nil {
		return f.writeErr(err)
	}
	le := binary.LittleEndian
	v := le.Uint32(b[0x60:])
	if on {
		v |= incompatRecover
	} else {
		v &^= incompatRecover
	}
	le.PutUint32(b[0x60:], v)
	if f.sb.metadataCsum() {
		le.PutUint32(b[0x3FC:], crc32c(^uint32(0), b[:0x3FC]))
	}
	_, err := f.dev.WriteAt(b, superblockOffset)
	return f.writeErr(err)
}

func (f *FS) writeErr(err error) error {
	if err == nil {
		return nil
	}
	return image.FileErrorf(f.name, "ext4: writing: %w", err)
}

// Commit writes the staged changes to the device, all or nothing.
//
// With a journal (ext3, ext4) the changed metadata blocks are logged as
// one jbd2 transaction, the way the kernel commits: new file data is
// already on the device (in blocks the old file system does not use);
// the superblock is marked needs_recovery; the transaction is written
// and made the journal's start, which is the moment the change happens;
// then the blocks are written in place and the journal emptied. A crash
// before that moment leaves the old file system; after it, the journal
// holds the whole change, which the kernel, e2fsck and OpenWritable
// replay. Without a journal (ext2) the blocks are written in place after
// the data, and a crash in between needs e2fsck, unless the device is a
// redo log (package guestfs/redo): Commit ends with the device's Commit,
// which makes every write of the commit happen at once.
func (f *FS) Commit(ctx context.Context) error {
	if f.tx == nil {
		return image.FileErrorf(f.name, "ext4: not opened for writing: %w", image.ErrInvalidArgument)
	}
	if len(f.tx.blocks) == 0 && len(f.tx.data) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := f.flushData(); err != nil {
		return err
	}
	j, err := f.openJournal()
	if err != nil {
		return err
	}
	if j != nil {
		f.sb.incompat |= incompatRecover
	}
	err = f.putSuper()
	f.sb.incompat &^= incompatRecover
	if err != nil {
		return err
	}
	nums := f.tx.dirty()
	if j != nil {
		// Before anything is written: a change the journal cannot
		// hold must leave the file system as it was.
		if err := j.fits(len(nums)); err != nil {
			return err
		}
	}
	if err := f.writeErr(f.dev.Flush()); err != nil {
		return err
	}
	if j != nil {
		if err := f.setRecoverFlag(true); err != nil {
			return err
		}
		if err := f.writeErr(f.dev.Flush()); err != nil {
			return err
		}
		if err := j.logTransaction(nums, f.tx.blocks); err != nil {
			return f.writeErr(err)
		}
		if err := f.writeErr(f.dev.Flush()); err != nil {
			return err
		}
		j.start = j.first
		if err := f.writeErr(j.writeSuper()); err != nil {
			return err
		}
		if err := f.writeErr(f.dev.Flush()); err != nil {
			return err
		}
	}
	for _, b := range nums {
		if _, err := f.dev.WriteAt(f.tx.blocks[b], int64(b)*f.sb.blockSize); err != nil {
			return f.writeErr(err)
		}
	}
	if err := f.writeErr(f.dev.Flush()); err != nil {
		return err
	}
	f.tx = newTx()
	if j != nil {
		if err := f.endJournal(j, j.seq+1); err != nil {
			return err
		}
	}
	return f.commitDevice(ctx)
}

// committer is a Device that holds writes until told the commit is
// whole (a redo log, package guestfs/redo): its Commit is then the
// moment the change happens, journal or not.
type committer interface {
	Commit(ctx context.Context) error
}

func (f *FS) commitDevice(ctx context.Context) error {
	if c, ok := f.dev.(committer); ok {
		return c.Commit(ctx)
	}
	return nil
}

// dropCaches forgets the inodes, descriptors and directory names read,
// which may hold changes no longer staged.
func (f *FS) dropCaches() {
	f.inodes.Clear()
	f.groupMu.Lock()
	clear(f.groups)
	f.groupMu.Unlock()
	f.dirs.Clear()
}

// Discard drops the staged changes (file data already written, past
// the bound of what waits in memory, stays in blocks the file system
// does not use).
func (f *FS) Discard() error {
	if f.tx == nil {
		return nil
	}
	f.tx = newTx()
	f.dropCaches()
	if d, ok := f.dev.(interface{ Discard() error }); ok {
		// A redo log drops the data written past the staged bound.
		if err := d.Discard(); err != nil {
			return err
		}
	}
	buf := make([]byte, superblockSize)
	if _, err := f.r.ReadAt(buf, superblockOffset); err != nil && err != io.EOF {
		return err
	}
	sb, err := parseSuperblock(buf, f.size, f.name)
	if err != nil {
		return err
	}
	f.sb = sb
	return nil
}
