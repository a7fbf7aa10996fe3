package qcow2

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/qimg/qimg/image"
)

// FuzzBitmapDirectory parses hostile bitmap directories as EditBitmaps
// does: never a panic, and whatever parses encodes back to itself.
func FuzzBitmapDirectory(f *testing.F) {
	f.Add([]byte{}, uint32(0), uint64(10<<20), uint8(16))
	dir := encodeBitmapDirectory([]*bitmapEntry{
		{name: "b0", gbits: 16, tableOff: 0x30000, tableSize: 1, autoRecord: true},
		{name: "a longer name", gbits: 9, tableOff: 0x40000, tableSize: 1, inUse: true},
	})
	f.Add(dir, uint32(2), uint64(10<<20), uint8(16))
	f.Fuzz(func(t *testing.T, dir []byte, n uint32, size uint64, clusterBits uint8) {
		cs := int64(1) << (minClusterBits + int(clusterBits)%(maxClusterBits-minClusterBits+1))
		list, err := parseBitmapDirectory(dir, n, size, cs)
		if err != nil {
			return
		}
		again, err := parseBitmapDirectory(encodeBitmapDirectory(list), n, size, cs)
		if err != nil || !reflect.DeepEqual(list, again) {
			t.Fatalf("directory does not survive encoding: %v\n%+v\n%+v", err, list, again)
		}
	})
}

// FuzzEditBitmaps runs bitmap changes on hostile images: errors are
// classified and name the file, and nothing panics or allocates without
// bound.
func FuzzEditBitmaps(f *testing.F) {
	for _, s := range fzSeedImages {
		if s.name == "bitmap" {
			f.Add(fzMake(f, s), []byte{5, 0, 2, 1, 3})
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, ops []byte) {
		if len(data) > 1<<20 || len(ops) > 8 {
			return
		}
		p := filepath.Join(fzFastDir(t), "bm.qcow2")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		before := fzAllocated()
		img, err := Open(p, &OpenOptions{Writable: true, Backing: image.IgnoreBacking})
		if err != nil {
			return
		}
		defer img.Close()
		var changes []BitmapChange
		for _, op := range ops {
			changes = append(changes, BitmapChange{Action: BitmapAction(op % 6), Source: "b0", Granularity: int64(op/6) << 9})
		}
		name := string(bytes.TrimRight(ops, "\x00"))
		if len(ops)%2 == 1 {
			name = "b0"
		}
		if err := img.EditBitmaps(context.Background(), name, changes, nil); err != nil {
			fzCheckErr(t, "EditBitmaps", p, err)
		}
		if err := img.Close(); err != nil {
			fzCheckErr(t, "Close", p, err)
		}
		if a := fzAllocated() - before; a > fzAllocLimit+8*uint64(len(data)) {
			t.Fatalf("editing the bitmaps of a %d-byte image allocated %d bytes", len(data), a)
		}
	})
}

// fzFastDir is a temporary directory in memory (/dev/shm) when there is
// one: EditBitmaps syncs several times, which on a disk makes each fuzz
// input cost a second.
func fzFastDir(t *testing.T) string {
	dir, err := os.MkdirTemp("/dev/shm", "qimg-fuzz")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
