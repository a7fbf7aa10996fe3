package qcow2

import "github.com/qimg/qimg/image"

// An L2 entry of a hostile or damaged image may point a data cluster at
// the image's own metadata; writing guest data there in place would
// destroy the tables. Like QEMU's overlap check, writers refuse it. The
// set of metadata clusters is built on the first in-place write (a
// conversion into a new image never needs it) and then kept up to date by
// every metadata allocation.

// metadataSet lists host clusters that hold metadata.
type metadataSet map[int64]struct{}

func (s metadataSet) addRange(off, length, clusterSize int64) {
	for c := off / clusterSize; c < (off+length+clusterSize-1)/clusterSize; c++ {
		s[c] = struct{}{}
	}
}

// noteMetadata records freshly allocated metadata clusters.
func (img *Image) noteMetadata(first, n int64) {
	if img.meta == nil {
		return
	}
	for c := first; c < first+n; c++ {
		img.meta[c] = struct{}{}
	}
}

// checkOverlap refuses an in-place data write to a metadata cluster.
func (img *Image) checkOverlap(host int64) error {
	if img.meta == nil {
		if err := img.buildMetadataSet(); err != nil {
			return err
		}
	}
	if _, ok := img.meta[host/img.hdr.ClusterSize()]; ok {
		return img.errorf(image.ErrCorrupt, "data cluster at %#x overlaps the image's metadata; refusing to write", host)
	}
	return nil
}

func (img *Image) buildMetadataSet() error {
	h := img.hdr
	cs := h.ClusterSize()
	s := metadataSet{0: {}}
	s.addRange(int64(h.L1TableOffset), int64(len(img.l1))*8, cs)
	s.addRange(int64(img.alloc.tableOff), int64(len(img.alloc.table))*8, cs)
	for _, e := range img.alloc.table {
		if off := int64(e & offsetMask); off != 0 {
			s[off/cs] = struct{}{}
		}
	}
	addL2 := func(l1 []uint64) {
		for _, e := range l1 {
			if off := int64(e & offsetMask); off != 0 {
				s[off/cs] = struct{}{}
			}
		}
	}
	addL2(img.l1)
	snaps, err := img.Snapshots()
	if err != nil {
		return err
	}
	for i, sn := range snaps {
		if i == 0 {
			s.addRange(int64(h.SnapshotsOffset), sn.entryOffset-int64(h.SnapshotsOffset), cs)
		}
		s.addRange(sn.entryOffset, sn.entryLength, cs)
		l1, err := img.snapshotL1(sn)
		if err != nil {
			return err
		}
		s.addRange(int64(sn.L1Offset), int64(sn.L1Size)*8, cs)
		addL2(l1)
	}
	if h.Bitmaps != nil {
		s.addRange(int64(h.Bitmaps.DirectoryOff), int64(h.Bitmaps.DirectorySize), cs)
	}
	if h.Crypto != nil && h.CryptMethod == CryptLUKS {
		s.addRange(int64(h.Crypto.Offset), int64(min(h.Crypto.Length, maxCryptoHeader)), cs)
	}
	img.meta = s
	return nil
}
