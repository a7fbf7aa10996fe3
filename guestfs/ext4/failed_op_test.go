package ext4

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/qimg/qimg/image"
)

// TestFailedOperationChangesNothing runs operations that fail for want
// of space after some of their steps (the inode allocated, the data
// written, the bitmaps changed) and checks that they leave nothing
// staged: the free counts are as before, the name is absent, and the
// commit after is e2fsck -fn clean.
func TestFailedOperationChangesNothing(t *testing.T) {
	need(t, "mkfs.ext4", "e2fsck")
	for _, v := range []struct {
		name string
		opts []string
	}{
		{"ext4", nil},
		{"ext2", []string{"-t", "ext2"}}, // block maps: the last step is an indirect block
	} {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			img := newFS(t, "8M", v.opts...)
			f := openRW(t, img)
			// Holes in the free space: a file filling it needs more
			// extents than the inode holds, so a tree block.
			for i := range 12 {
				must(t, writeString(f, fmt.Sprintf("frag%d", i), "x"))
			}
			commit(t, f)
			for i := 0; i < 12; i += 2 {
				must(t, f.Remove(fmt.Sprintf("frag%d", i)))
			}
			commit(t, f)
			// A first write puts the bitmaps in the transaction, so that
			// the failures below change staged blocks, not fresh ones.
			must(t, writeString(f, "small", "x"))
			fi := f.Info()
			bs := fi.BlockSize
			fails := map[string]func() error{
				// No data blocks for it: fails after the inode.
				"too big": func() error {
					n := int64(fi.FreeBlocks+1) * bs
					return f.WriteFile("too-big", bytes.NewReader(make([]byte, n)), n, 0o644)
				},
				// Every free block for data, none for its map or the
				// directory: fails after the data.
				"all the space": func() error {
					n := int64(fi.FreeBlocks) * bs
					return f.WriteFile("all", bytes.NewReader(make([]byte, n)), n, 0o644)
				},
			}
			for name, op := range fails {
				before, staged := f.Info(), len(f.tx.data)
				if err := op(); !errors.Is(err, image.ErrLimit) {
					t.Fatalf("%s: %v, want image.ErrLimit", name, err)
				}
				if len(f.tx.data) != staged {
					t.Fatalf("%s failed but left %d data blocks staged (%d before)", name, len(f.tx.data), staged)
				}
				if after := f.Info(); after.FreeBlocks != before.FreeBlocks || after.FreeInodes != before.FreeInodes {
					t.Fatalf("%s failed but changed the free counts: blocks %d → %d, inodes %d → %d",
						name, before.FreeBlocks, after.FreeBlocks, before.FreeInodes, after.FreeInodes)
				}
			}
			for _, p := range []string{"too-big", "all"} {
				if _, err := f.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("%s after its failed write: %v", p, err)
				}
			}
			// With no block left, Mkdir fails after its inode.
			fi = f.Info()
			n := int64(fi.FreeBlocks-64) * bs
			must(t, f.WriteFile("fill", bytes.NewReader(make([]byte, n)), n, 0o644))
			for i := 0; ; i++ {
				if err := f.WriteFile(fmt.Sprintf("block%d", i), bytes.NewReader(make([]byte, bs)), bs, 0o644); err != nil {
					break
				}
			}
			before := f.Info()
			if err := f.Mkdir("dir", 0o755); !errors.Is(err, image.ErrLimit) {
				t.Fatalf("mkdir on a full file system: %v", err)
			}
			if after := f.Info(); after.FreeInodes != before.FreeInodes {
				t.Fatalf("mkdir failed but took an inode")
			}
			commit(t, f)
			fsck(t, img)
		})
	}
}

// TestCommitTooBigForTheJournal commits a change larger than the journal
// can log: the commit fails before writing anything (the superblock is
// not left marked as needing recovery), and after Discard the file
// system takes a smaller change.
func TestCommitTooBigForTheJournal(t *testing.T) {
	need(t, "mkfs.ext4", "e2fsck")
	img := newFS(t, "16M", "-N", "8192", "-J", "size=1") // a journal of 1024 blocks
	f := openRW(t, img)
	// Four inodes a block: 4096 new inodes touch over 1024 blocks.
	for d := range 64 {
		dir := fmt.Sprintf("d%d", d)
		must(t, f.Mkdir(dir, 0o755))
		for i := range 64 {
			must(t, writeString(f, fmt.Sprintf("%s/f%d", dir, i), ""))
		}
	}
	if err := f.Commit(context.Background()); !errors.Is(err, image.ErrLimit) {
		t.Fatalf("committing more than the journal holds: %v", err)
	}
	if openImage(t, img).Info().NeedsReplay {
		t.Fatal("the failed commit left the file system needing recovery")
	}
	fsck(t, img)
	must(t, f.Discard())
	must(t, writeString(f, "after", "y"))
	commit(t, f)
	fsck(t, img)
}
