package ntfs_test

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/qimg/qimg/guestfs/ntfs"
)

// TestHugeIndexAllocation gives every $INDEX_ALLOCATION a data size of
// 2^60 bytes (a reader that loops over the size, record by record, never
// ends): the walk must end quickly, with errors only.
func TestHugeIndexAllocation(t *testing.T) {
	base, err := fuzzBase()
	if err != nil {
		t.Fatal(err)
	}
	img := bytes.Clone(base)
	patched := 0
	for off := 0; off+1024 <= len(img); off += 1024 {
		r := img[off : off+1024]
		if string(r[:4]) != "FILE" {
			continue
		}
		for a := int(binary.LittleEndian.Uint16(r[0x14:])); a+64 < 1024; {
			typ, l := binary.LittleEndian.Uint32(r[a:]), int(binary.LittleEndian.Uint32(r[a+4:]))
			if typ == 0xFFFFFFFF || l <= 0 || a+l > 1024 {
				break
			}
			if typ == 0xA0 {
				binary.LittleEndian.PutUint64(r[a+48:], 1<<60)
				binary.LittleEndian.PutUint64(r[a+56:], 1<<60)
				patched++
			}
			a += l
		}
	}
	if patched == 0 {
		t.Fatal("no $INDEX_ALLOCATION found")
	}
	start := time.Now()
	fsys, err := ntfs.Open(bytes.NewReader(img), int64(len(img)), "FUZZ.img")
	if err == nil {
		walkAll(t, fsys, "FUZZ.img")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}
