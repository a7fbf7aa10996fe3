package fat

import (
	"fmt"
	"io"
	"syscall"

	"github.com/qimg/qimg/image"
)

// table is the file allocation table: the copy on the device, read a
// sector at a time into a cache, under the entries changed since the
// last Commit.
//
// Allocation only hands out clusters that are free on the device: a
// cluster freed in the same transaction stays taken until Commit, so
// new data never overwrites anything the filesystem on the device still
// reaches (see doc.go).
type table struct {
	dev     io.ReaderAt
	name    string
	g       *geometry
	start   int64            // byte offset of the copy read
	sectors map[int64][]byte // device content of the copy, by sector index

	staged    map[uint32]uint32 // entries changed since the last Commit
	freeOld   uint32            // free clusters on the device (writable only)
	allocated uint32            // staged entries of clusters free on the device
	released  uint32            // staged frees of clusters used on the device
	hint      uint32            // where the next allocation scan starts
	lastAlloc uint32            // the last cluster allocated, for FSInfo
}

// Special entry values, for a FAT of the table's width.
func (t *table) eoc() uint32 {
	if t.g.bits == fat32 {
		return 0x0FFFFFFF
	}
	return 1<<t.g.bits - 1
}
func (t *table) bad() uint32 { return t.eoc() - 8 }

// isEnd says whether v ends a chain (0xFF8.. and up).
func (t *table) isEnd(v uint32) bool { return v >= t.eoc()-7 }

func (t *table) corrupt(format string, args ...any) error {
	return image.FileErrorf(t.name, "FAT: %s: %w", fmt.Sprintf(format, args...), image.ErrCorrupt)
}

// byteAt reads byte off of the FAT copy on the device.
func (t *table) byteAt(off int64) (byte, error) {
	s := off / t.g.sectorSize
	buf, ok := t.sectors[s]
	if !ok {
		buf = make([]byte, t.g.sectorSize)
		if _, err := t.dev.ReadAt(buf, t.start+s*t.g.sectorSize); err != nil {
			return 0, image.FileErrorf(t.name, "reading FAT sector %d: %w", s, ioErr(err))
		}
		t.sectors[s] = buf
	}
	return buf[off%t.g.sectorSize], nil
}

// entryOffset is where entry c's bytes start in a FAT.
func (t *table) entryOffset(c uint32) int64 {
	return int64(c) * int64(t.g.bits) / 8
}

// old reads entry c as it is on the device.
func (t *table) old(c uint32) (uint32, error) {
	off := t.entryOffset(c)
	var v uint32
	for i := range int64(t.g.bits+7) / 8 {
		b, err := t.byteAt(off + i)
		if err != nil {
			return 0, err
		}
		v |= uint32(b) << (8 * i)
	}
	switch t.g.bits {
	case fat12:
		if c&1 != 0 {
			v >>= 4
		}
		return v & 0xfff, nil
	case fat32:
		return v & 0x0FFFFFFF, nil
	}
	return v, nil
}

// get reads entry c as staged.
func (t *table) get(c uint32) (uint32, error) {
	if v, ok := t.staged[c]; ok {
		return v, nil
	}
	return t.old(c)
}

// chain lists the clusters of the chain starting at first, at most max
// of them when max > 0. A chain that meets a free, bad or out-of-range
// cluster, or that is longer than the volume has clusters (a cycle), is
// corruption.
func (t *table) chain(first uint32, max int) ([]uint32, error) {
	if !t.g.validCluster(first) {
		return nil, t.corrupt("chain starts at cluster %d, outside 2..%d", first, t.g.clusters+1)
	}
	var out []uint32
	for c := first; ; {
		out = append(out, c)
		if max > 0 && len(out) == max {
			return out, nil
		}
		if len(out) > int(t.g.clusters) {
			return nil, t.corrupt("the chain from cluster %d loops", first)
		}
		next, err := t.get(c)
		if err != nil {
			return nil, err
		}
		switch {
		case t.isEnd(next):
			return out, nil
		case next == 0:
			return nil, t.corrupt("the chain from cluster %d reaches free cluster %d", first, c)
		case next == t.bad():
			return nil, t.corrupt("the chain from cluster %d reaches bad cluster %d", first, c)
		case !t.g.validCluster(next):
			return nil, t.corrupt("the chain from cluster %d points at cluster %d", first, next)
		}
		c = next
	}
}

// scan reads the whole FAT copy, counts its free clusters and checks
// that every other copy is the same (fsck.fat compares the entries for
// the volume's clusters), for a writable volume.
func (t *table) scan() error {
	t.freeOld = 0
	for c := uint32(2); t.g.validCluster(c); c++ {
		v, err := t.old(c)
		if err != nil {
			return err
		}
		if v == 0 {
			t.freeOld++
		}
	}
	used := ((int64(t.g.clusters)+2)*int64(t.g.bits) + 7) / 8
	want := make([]byte, used)
	for i := range want {
		want[i], _ = t.byteAt(int64(i)) // every sector is cached by now
	}
	other := make([]byte, used)
	for i := range t.g.fats {
		if _, err := t.dev.ReadAt(other, t.g.fatStart(i)); err != nil {
			return image.FileErrorf(t.name, "reading FAT copy %d: %w", i+1, ioErr(err))
		}
		if string(other) != string(want) {
			return image.FileErrorf(t.name, "FAT copy %d differs from copy 1 (run fsck.fat): %w", i+1, image.ErrCorrupt)
		}
	}
	return nil
}

// available is how many clusters can still be allocated in this
// transaction.
func (t *table) available() uint32 { return t.freeOld - t.allocated }

// noSpace is the error of an allocation that does not fit.
func (t *table) noSpace(need uint32) error {
	return image.FileErrorf(t.name, "%d clusters needed, %d free: %w (%w)", need, t.available(), syscall.ENOSPC, image.ErrLimit)
}

// alloc takes n clusters free on the device and links them into a
// chain, or takes nothing and returns an ENOSPC error.
func (t *table) alloc(n int) ([]uint32, error) {
	if n <= 0 {
		return nil, nil
	}
	if uint32(n) > t.available() || n > int(t.g.clusters) {
		return nil, t.noSpace(uint32(n))
	}
	out := make([]uint32, 0, n)
	if !t.g.validCluster(t.hint) {
		t.hint = 2
	}
	c := t.hint
	for range t.g.clusters {
		if _, taken := t.staged[c]; !taken {
			v, err := t.old(c)
			if err != nil {
				t.undo(out)
				return nil, err
			}
			if v == 0 {
				out = append(out, c)
				t.staged[c] = t.eoc()
				t.allocated++
				if len(out) == n {
					break
				}
			}
		}
		if c++; !t.g.validCluster(c) {
			c = 2
		}
	}
	if len(out) < n { // the free count was wrong; nothing is lost
		t.undo(out)
		return nil, t.corrupt("fewer free clusters than counted")
	}
	for i := 0; i+1 < len(out); i++ {
		t.staged[out[i]] = out[i+1]
	}
	t.hint, t.lastAlloc = out[n-1]+1, out[n-1]
	return out, nil
}

// undo returns clusters just taken by alloc.
func (t *table) undo(cs []uint32) {
	for _, c := range cs {
		delete(t.staged, c)
		t.allocated--
	}
}

// link makes the chain ending at last continue with next.
func (t *table) link(last, next uint32) { t.staged[last] = next }

// release frees cluster c: one allocated in this transaction becomes
// free again at once, one used on the device is freed at Commit and
// not reused before.
func (t *table) release(c uint32) error {
	v, err := t.old(c)
	if err != nil {
		return err
	}
	if v == 0 {
		if _, ok := t.staged[c]; ok {
			delete(t.staged, c)
			t.allocated--
		}
		return nil
	}
	if cur, ok := t.staged[c]; !ok || cur != 0 {
		t.staged[c] = 0
		t.released++
	}
	return nil
}

// isOld says whether c is in use on the device.
func (t *table) isOld(c uint32) bool {
	v, err := t.old(c)
	return err == nil && v != 0
}
