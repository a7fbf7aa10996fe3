package qcow2

import (
	"encoding/binary"
	"fmt"

	"github.com/qimg/qimg/image"
)

// The refcounts stored on disk, as the check reads and repairs them.

// storedRefs reads (and for repairs writes) the refcounts on disk,
// independently of the writer's allocator, tolerating the damage a check
// must report.
type storedRefs struct {
	img      *Image
	table    []uint64
	bits     uint
	perBlock int64
	blocks   map[int64]*refblock
	// last and lastIndex are the block found last: a check asks for the
	// clusters in order, mostly from one block at a time.
	last      *refblock
	lastIndex int64
}

func (img *Image) loadStoredRefs() (*storedRefs, error) {
	h := img.hdr
	cs := h.ClusterSize()
	s := &storedRefs{
		img:       img,
		bits:      uint(h.RefcountBits()),
		perBlock:  cs * 8 / int64(h.RefcountBits()),
		blocks:    map[int64]*refblock{},
		lastIndex: -1,
	}
	// The table's size was bounded (8 MiB) when the image was opened.
	buf := make([]byte, int64(h.RefcountTableClusters)*cs)
	if err := img.readAt(buf, h.RefcountTableOffset); err != nil {
		return nil, err
	}
	s.table = make([]uint64, len(buf)/8)
	for i := range s.table {
		s.table[i] = binary.BigEndian.Uint64(buf[i*8:])
	}
	return s, nil
}

// block returns the refcount block for table index k, nil if none.
func (s *storedRefs) block(k int64) (*refblock, error) {
	if k == s.lastIndex {
		return s.last, nil
	}
	b, err := s.lookupBlock(k)
	if err == nil {
		s.last, s.lastIndex = b, k
	}
	return b, err
}

// lookupBlock finds or reads the refcount block for table index k.
func (s *storedRefs) lookupBlock(k int64) (*refblock, error) {
	if b, ok := s.blocks[k]; ok {
		return b, nil
	}
	if k >= int64(len(s.table)) {
		return nil, nil
	}
	cs := s.img.hdr.ClusterSize()
	off := s.table[k] & reftableOffsetMask
	if off == 0 {
		return nil, nil
	}
	if off%uint64(cs) != 0 {
		return nil, fmt.Errorf("refblock offset %#x unaligned (reftable index: %#x): %w", off, k, image.ErrCorrupt)
	}
	b := &refblock{off: int64(off), data: make([]byte, cs), dirtyFrom: -1}
	if err := s.img.readAt(b.data, off); err != nil {
		return nil, err
	}
	if len(s.blocks) >= 64 {
		clear(s.blocks) // the check walks clusters in order
	}
	s.blocks[k] = b
	return b, nil
}

func (s *storedRefs) get(c int64) (uint64, error) {
	b, err := s.block(c / s.perBlock)
	if err != nil || b == nil {
		return 0, err
	}
	return b.entry(c%s.perBlock, s.bits), nil
}

// set writes the refcount of cluster c, whose block must exist.
func (s *storedRefs) set(c int64, v uint64) error {
	b, err := s.block(c / s.perBlock)
	if err != nil {
		return err
	}
	if b == nil || s.img.wfile == nil {
		return image.ErrInvalidArgument
	}
	b.setEntry(c%s.perBlock, s.bits, v)
	_, err = s.img.wfile.WriteAt(b.data[b.dirtyFrom:b.dirtyUntil], b.off+int64(b.dirtyFrom))
	b.dirtyFrom, b.dirtyUntil = -1, 0
	return err
}
