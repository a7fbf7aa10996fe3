package qcow2

import (
	"os"
	"syscall"

	"github.com/qimg/qimg/image"
)

// Measure computes what `qemu-img measure -O qcow2` prints for an image of
// virtual size size created with opts: required is the file size needed
// for data bytes of guest data (as counted by CountRequired, 0 for an
// empty image) plus all metadata; fullyAllocated is the size with every
// cluster allocated. The arithmetic is QEMU's qcow2_measure and
// qcow2_calc_prealloc_size, including their rounding.
func Measure(size int64, opts CreateOptions, data int64) (required, fullyAllocated int64, err error) {
	h, err := opts.header()
	if err != nil {
		return 0, 0, err
	}
	cs := h.ClusterSize()
	virtual := (size + cs - 1) &^ (cs - 1)
	l2Tables := (virtual/cs + h.L2Entries() - 1) / h.L2Entries()
	if l2Tables*8 > maxL1Bytes {
		return 0, 0, image.Errorf(image.ErrLimit, "The image size is too large (try using a larger cluster size)")
	}
	if opts.Preallocation == PreallocFull || opts.Preallocation == PreallocFalloc {
		data = virtual
	}
	fullyAllocated = preallocSize(virtual, cs, h.L2EntrySize(), int(h.RefcountOrder))
	if e := opts.Encrypt; e != nil && e.Format == EncryptLUKS {
		// The LUKS header and key material, in clusters of their own.
		n, err := e.LUKS.PayloadBytes()
		if err != nil {
			return 0, 0, err
		}
		fullyAllocated += (n + cs - 1) &^ (cs - 1)
	}
	return fullyAllocated - virtual + data, fullyAllocated, nil
}

// CountRequired adds up the data bytes QEMU's qcow2_measure counts for one
// block-status run of the source: runs that read as zeros cost nothing,
// allocated data is counted to the end of its last cluster. It returns the
// bytes to add and the offset where the next run starts.
func CountRequired(e image.Extent, clusterSize int64) (add, next int64) {
	if e.Zero || !e.Data || !e.Allocated {
		return 0, e.End()
	}
	pnum := (e.End()+clusterSize-1)&^(clusterSize-1) - e.Start
	return e.Start%clusterSize + pnum, e.Start + pnum
}

// preallocSize is qcow2_calc_prealloc_size: the file size of an image
// with every cluster allocated.
func preallocSize(virtual, cs, l2EntrySize int64, refcountOrder int) int64 {
	meta := cs // header
	nl2e := virtual / cs
	perL2 := cs / l2EntrySize
	nl2e = (nl2e + perL2 - 1) / perL2 * perL2
	meta += nl2e * l2EntrySize
	nl1e := nl2e * l2EntrySize / cs
	perL1 := cs / 8
	nl1e = (nl1e + perL1 - 1) / perL1 * perL1
	meta += nl1e * 8
	meta += refcountMetadataSize((meta+virtual)/cs, cs, refcountOrder)
	return meta + virtual
}

// refcountMetadataSize is qcow2_refcount_metadata_size without the
// generous increase: the refcount table and blocks needed to count
// clusters clusters and themselves.
func refcountMetadataSize(clusters, cs int64, refcountOrder int) int64 {
	perTableCluster := cs / 8
	perBlock := cs * 8 / (int64(1) << refcountOrder)
	var table, blocks, n, last int64
	for {
		last = n
		blocks = (clusters + table + blocks + perBlock - 1) / perBlock
		table = (blocks + perTableCluster - 1) / perTableCluster
		n = clusters + blocks + table
		if n == last {
			break
		}
	}
	return (blocks + table) * cs
}

// MetadataPreallocated reports whether the image looks created with
// preallocation=metadata, the way QEMU's
// qcow2_detect_metadata_preallocation decides it: markedly more clusters
// have a refcount than the file has allocated on disk. QEMU then asks the
// file system which data clusters are holes when reporting block status.
func (img *Image) MetadataPreallocated() (bool, error) {
	st, err := os.Stat(img.name)
	if err != nil {
		return false, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return false, nil
	}
	cs := img.hdr.ClusterSize()
	realClusters := sys.Blocks * 512 / cs
	threshold := max(realClusters*10/9, realClusters+2)
	rc, err := newRefcounts(img)
	if err != nil {
		return false, err
	}
	end := (img.fileSize + cs - 1) / cs
	var count int64
	for c := int64(0); c < end && count < threshold; c++ {
		n, err := rc.get(c)
		if err != nil {
			return false, err
		}
		if n != 0 {
			count++
		}
	}
	return count >= threshold, nil
}

// BitmapsSize is the room the persistent bitmaps of a source image need in
// a qcow2 image of the given cluster size, as qemu-img measure counts it:
// each bitmap fully allocated (one bit per granule of the virtual size)
// with its table, and the directory. Bitmaps without a granularity and
// cluster sizes below one byte count nothing.
func BitmapsSize(bitmaps []Bitmap, virtualSize, clusterSize int64) int64 {
	if clusterSize <= 0 || len(bitmaps) == 0 {
		return 0
	}
	var size, dirSize int64
	for _, b := range bitmaps {
		if b.Granularity <= 0 {
			continue
		}
		bits := (virtualSize + b.Granularity - 1) / b.Granularity
		clusters := ((bits+7)/8 + clusterSize - 1) / clusterSize
		size += clusters * clusterSize
		size += (clusters*8 + clusterSize - 1) / clusterSize * clusterSize
		dirSize += (24 + int64(len(b.Name)) + 7) &^ 7
	}
	return size + (dirSize+clusterSize-1)/clusterSize*clusterSize
}

// PersistentBitmapsSize is BitmapsSize of the image's own bitmaps in a
// qcow2 image of clusterSize; ok is false when the image cannot hold
// persistent bitmaps (version 2), so qemu-img measure shows no bitmaps.
func (img *Image) PersistentBitmapsSize(clusterSize int64) (size int64, ok bool, err error) {
	if img.hdr.Version < 3 {
		return 0, false, nil
	}
	list, err := img.Bitmaps()
	if err != nil {
		return 0, true, err
	}
	return BitmapsSize(list, img.Size(), clusterSize), true, nil
}
