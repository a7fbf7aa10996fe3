package qcow2

import (
	"github.com/qimg/qimg/image"
)

// Compress compresses one cluster of guest data with the image's
// compression type (deflate with QEMU's 4 KiB window, or zstd). It returns
// nil when the data does not shrink. It is safe to call from many
// goroutines, which is how conversion spreads compression over all cores
// while WriteCompressed stores the results in order.
func (img *Image) Compress(cluster []byte) ([]byte, error) {
	cs := img.hdr.ClusterSize()
	if int64(len(cluster)) != cs {
		padded := make([]byte, cs)
		copy(padded, cluster)
		cluster = padded
	}
	return img.codec.compress(cluster)
}

// WriteCompressed writes the guest cluster at off (cluster aligned; p is a
// whole cluster, or the rest of the image for the last one) compressed.
// Data that does not compress is written plainly, as qemu-img does.
func (img *Image) WriteCompressed(p []byte, off int64) error {
	comp, err := img.Compress(p)
	if err != nil {
		return err
	}
	return img.WriteCompressedData(p, comp, off)
}

// WriteCompressedData stores a cluster compressed earlier by Compress.
// plain is the uncompressed cluster, written as is when comp is nil.
func (img *Image) WriteCompressedData(plain, comp []byte, off int64) error {
	cs := img.hdr.ClusterSize()
	if off%cs != 0 || int64(len(plain)) != min(cs, img.Size()-off) {
		return img.errorf(image.ErrInvalidArgument, "compressed write at %d of %d bytes is not one whole cluster", off, len(plain))
	}
	if comp == nil {
		_, err := img.WriteAt(plain, off)
		return err
	}
	if img.hdr.IncompatibleFeatures&IncompatDataFile != 0 {
		return img.errorf(image.ErrUnsupported, "compressed clusters cannot be stored with an external data file")
	}
	if img.Encrypted() {
		return img.errorf(image.ErrUnsupported, "Compression and encryption not supported at the same time")
	}
	if err := img.checkWrite(off, int64(len(plain))); err != nil {
		return err
	}
	img.mu.Lock()
	defer img.mu.Unlock()
	h := img.hdr
	l1Index := (off >> h.ClusterBits) / h.L2Entries()
	t, fresh, err := img.l2ForWrite(l1Index)
	if err != nil {
		return err
	}
	host, err := img.allocBytes(int64(len(comp)))
	if err != nil {
		return err
	}
	if err := img.alloc.flush(); err != nil {
		return err
	}
	if _, err := img.wfile.WriteAt(comp, host); err != nil {
		return image.FileErrorf(img.name, "writing compressed cluster: %w", err)
	}
	per := h.L2EntrySize() / 8
	i := (off >> h.ClusterBits) % h.L2Entries()
	img.freeEntry(t.entries[i*per])
	t.entries[i*per] = h.encodeCompressed(host, int64(len(comp)))
	if h.ExtendedL2() {
		t.entries[i*per+1] = 0
	}
	if err := img.commitL2(t, fresh, l1Index, i, i+1); err != nil {
		return err
	}
	return img.alloc.flush()
}

// allocBytes finds room for n bytes of compressed data, packing it after
// the previous compressed cluster as QEMU does: several compressed clusters
// share a host cluster, and one may spill into the next when that is the
// last cluster of the file. Room left in clusters the cursor moved past
// is used first (fitTail). Each host cluster gets one reference per
// compressed cluster that touches it.
func (img *Image) allocBytes(n int64) (int64, error) {
	rc := img.alloc
	cs := img.hdr.ClusterSize()
	if at, err := img.fitTail(n); at >= 0 || err != nil {
		return at, err
	}
	host := rc.compNext
	shareable, err := img.canShare(host)
	if err != nil {
		return 0, err
	}
	if shareable {
		if n <= cs-host%cs {
			return host, img.takeBytes(host, n)
		}
		if host/cs == rc.end-1 {
			end := rc.end
			first, err := img.allocAtEnd((host+n+cs-1)/cs - end)
			if err != nil {
				return 0, err
			}
			if first == end {
				return host, img.takeBytes(host, n)
			}
			// A refcount block landed in between; the clusters just
			// taken start a fresh run instead.
			rc.keepTail(host)
			return img.freshBytes(first, (host+n+cs-1)/cs-end, n)
		}
	}
	first, err := img.allocClusters((n + cs - 1) / cs)
	if err != nil {
		return 0, err
	}
	if shareable {
		rc.keepTail(host)
	}
	rc.compNext = first*cs + n
	return first * cs, nil
}

// canShare reports whether more compressed data may go into the cluster
// holding host: it is partly used and its refcount has room for one more
// reference (with 1-bit refcounts it never has).
func (img *Image) canShare(host int64) (bool, error) {
	if host%img.hdr.ClusterSize() == 0 {
		return false, nil
	}
	ref, err := img.alloc.get(host / img.hdr.ClusterSize())
	return ref < img.alloc.maxRefcount(), err
}

// takeBytes adds a reference to the partly used cluster at host, which
// already counts earlier compressed data, and moves the packing cursor.
func (img *Image) takeBytes(host, n int64) error {
	if err := img.alloc.add(host/img.hdr.ClusterSize(), 1); err != nil {
		return err
	}
	img.alloc.compNext = host + n
	return nil
}

// freshBytes places n bytes at the start of the have clusters allocated at
// first, allocating more right after them if needed.
func (img *Image) freshBytes(first, have, n int64) (int64, error) {
	cs := img.hdr.ClusterSize()
	if need := (n+cs-1)/cs - have; need > 0 {
		more, err := img.allocAtEnd(need)
		if err != nil {
			return 0, err
		}
		if more != first+have {
			return 0, img.errorf(image.ErrCorrupt, "compressed cluster allocation is not contiguous")
		}
	}
	img.alloc.compNext = first*cs + n
	return first * cs, nil
}
