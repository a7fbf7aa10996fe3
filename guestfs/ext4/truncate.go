package ext4

import (
	"bytes"
	"fmt"
	"io/fs"
	"time"
)

// Truncate sets the size of a regular file. Shrinking frees the blocks
// past the end and copies a partly kept last block to a new block with
// its tail zeroed (so the committed file's block is never changed in
// place); growing leaves a hole that reads as zeros.
func (f *FS) Truncate(name string, size int64) (err error) {
	defer f.atomically()(&err)
	if err := f.writable("truncate", name); err != nil {
		return err
	}
	if size < 0 {
		return pathErr("truncate", name, fs.ErrInvalid)
	}
	in, err := f.lookup("truncate", name, true)
	if err != nil {
		return err
	}
	in.raw = bytes.Clone(in.raw)
	if !in.IsRegular() || in.Flags&FlagInlineData != 0 {
		return pathErr("truncate", name, fmt.Errorf("not a regular file (or stored inline): %w", fs.ErrInvalid))
	}
	if uint64(size) < in.Size {
		if err := f.shrink(in, uint64(size)); err != nil {
			return pathErr("truncate", name, err)
		}
	}
	in.Size = uint64(size)
	now := time.Now()
	in.Mtime, in.Ctime = now, now
	return pathErr2("truncate", name, f.writeInode(in))
}

// shrink drops the file's blocks past size bytes.
func (f *FS) shrink(in *Inode, size uint64) error {
	old, err := f.readLayout(in)
	if err != nil {
		return err
	}
	bs := uint64(f.sb.blockSize)
	keep := (size + bs - 1) / bs
	var runs, drop []extent
	for _, r := range old.runs {
		switch {
		case r.lblk+r.n <= keep:
			runs = append(runs, r)
		case r.lblk >= keep:
			drop = append(drop, r)
		default:
			k := keep - r.lblk
			runs = append(runs, extent{lblk: r.lblk, pblk: r.pblk, n: k, unwritten: r.unwritten})
			drop = append(drop, extent{lblk: keep, pblk: r.pblk + k, n: r.n - k})
		}
	}
	if tail := size % bs; tail != 0 && len(runs) > 0 {
		last := runs[len(runs)-1]
		if end := last.pblk + last.n - 1; last.lblk+last.n == keep && !last.unwritten {
			p, err := f.copyTail(end, tail)
			if err != nil {
				return err
			}
			drop = append(drop, extent{lblk: keep - 1, pblk: end, n: 1})
			if runs[len(runs)-1].n--; runs[len(runs)-1].n == 0 {
				runs = runs[:len(runs)-1]
			}
			runs = append(runs, extent{lblk: keep - 1, pblk: p, n: 1})
		}
	}
	if err := f.setLayout(in, old, runs); err != nil {
		return err
	}
	return f.freeRuns(drop)
}

// copyTail copies the first n bytes of block old to a new block, zeros
// after, and returns the new block.
func (f *FS) copyTail(old, n uint64) (uint64, error) {
	bs := f.sb.blockSize
	buf := make([]byte, bs)
	if err := f.readAt(buf[:n], int64(old)*bs); err != nil {
		return 0, err
	}
	spans, err := f.allocBlocks(old, 1)
	if err != nil {
		return 0, err
	}
	if err := f.stageData(spans[0].start, buf); err != nil {
		return 0, err
	}
	return spans[0].start, nil
}
