package qcow2

import (
	"errors"
	"io"
	"os"
	"syscall"

	"github.com/qimg/qimg/image"
)

// mapping is the storage of a run of guest bytes inside this image (not
// its backing chain).
type mapping struct {
	kind   kind
	length int64
	// host is the host offset of the first byte: always for kindNormal,
	// and for kindZero and kindUnallocated when mapped says their cluster
	// has a host cluster (QEMU's ZERO_ALLOC and UNALLOCATED_ALLOC), which
	// qemu-img map reports although nothing is read from it.
	host   int64
	mapped bool
	entry  uint64 // kindCompressed: the L2 descriptor
}

// continues reports whether next, the unit after m, extends m's run: the
// same kind, and the host bytes (if any) continue m's.
func (m mapping) continues(next mapping) bool {
	if next.kind != m.kind || next.mapped != m.mapped {
		return false
	}
	return !m.mapped || next.host == m.host+m.length
}

// lookup maps the guest bytes [off, off+maxLen) as far as they share one
// kind (and, for normal data, are contiguous on the host). It never crosses
// an L2 table. The caller holds img.mu.
func (img *Image) lookup(off, maxLen int64) (mapping, error) {
	h := img.hdr
	cs := h.ClusterSize()
	perL2 := h.L2Entries()
	cluster := off >> h.ClusterBits
	l1Index, l2Index := cluster/perL2, cluster%perL2
	maxLen = min(maxLen, (perL2-l2Index)*cs-off&(cs-1))
	t, err := img.l2At(l1Index)
	if err != nil || t == nil {
		return mapping{kind: kindUnallocated, length: maxLen}, err
	}
	unit := cs
	if h.ExtendedL2() {
		unit = cs / 32
	}
	first, err := img.unitAt(t, off, unit)
	if err != nil {
		return mapping{}, err
	}
	m := first
	m.length = unit - off%unit
	for m.length < maxLen && m.kind != kindCompressed {
		next, err := img.unitAt(t, off+m.length, unit)
		if err != nil || !m.continues(next) {
			break
		}
		m.length += unit
	}
	if m.kind == kindCompressed {
		m.length = cs - off&(cs-1)
	}
	m.length = min(m.length, maxLen)
	return m, nil
}

// unitAt classifies the cluster (or, with extended L2, the subcluster) that
// holds guest offset off, whose L2 table is t.
func (img *Image) unitAt(t *l2Table, off, unit int64) (mapping, error) {
	h := img.hdr
	cs := h.ClusterSize()
	idx := (off >> h.ClusterBits) % h.L2Entries()
	inCluster := off & (cs - 1)
	if !h.ExtendedL2() {
		return img.classify(t, idx, t.entries[idx], inCluster)
	}
	entry, bitmap := t.entries[2*idx], t.entries[2*idx+1]
	if entry&flagCompressed != 0 {
		return img.classify(t, idx, entry, inCluster)
	}
	sub := uint(inCluster / unit)
	if (bitmap>>32)&bitmap != 0 {
		// QEMU refuses the whole cluster (QCOW2_SUBCLUSTER_INVALID).
		return mapping{}, img.errorf(image.ErrCorrupt, "L2 entry %d in table %#x marks subclusters both allocated and zero (bitmap %#016x)", idx, t.off, bitmap)
	}
	alloc, zero := bitmap&(1<<sub) != 0, bitmap&(1<<(32+sub)) != 0
	host := int64(entry & offsetMask)
	hasCluster := host != 0 || img.identityZero(entry)
	switch {
	case !hasCluster && zero:
		return mapping{kind: kindZero}, nil
	case !hasCluster && !alloc:
		return mapping{kind: kindUnallocated}, nil
	case !hasCluster:
		return mapping{}, img.errorf(image.ErrCorrupt, "subcluster %d of L2 entry %d in table %#x is allocated but the cluster has no offset", sub, idx, t.off)
	}
	// QEMU checks the alignment of the cluster whatever its subcluster
	// holds (qcow2_get_host_offset), so a misaligned zero or unallocated
	// subcluster fails too.
	if host%cs != 0 {
		return mapping{}, img.errorf(image.ErrCorrupt, "cluster offset %#x in L2 table %#x is not cluster aligned", host, t.off)
	}
	m := mapping{host: host + inCluster, mapped: true}
	switch {
	case zero:
		m.kind = kindZero
	case !alloc:
		m.kind = kindUnallocated
	default:
		m.kind = kindNormal
		if host != 0 {
			if err := img.checkDataCluster(host, t.off, idx); err != nil {
				return mapping{}, err
			}
		}
	}
	return m, nil
}

func (img *Image) classify(t *l2Table, idx int64, entry uint64, inCluster int64) (mapping, error) {
	h := img.hdr
	cs := h.ClusterSize()
	if entry&flagCompressed != 0 {
		if h.IncompatibleFeatures&IncompatDataFile != 0 {
			return mapping{}, img.errorf(image.ErrCorrupt, "compressed cluster in an image with an external data file (L2 table %#x)", t.off)
		}
		return mapping{kind: kindCompressed, entry: entry}, nil
	}
	host := int64(entry & offsetMask)
	switch {
	case entry&flagZero != 0 && host == 0:
		return mapping{kind: kindZero}, nil
	case host == 0 && img.identityZero(entry):
		return mapping{kind: kindNormal, host: inCluster, mapped: true}, nil
	case host == 0:
		return mapping{kind: kindUnallocated}, nil
	}
	// A zero cluster that keeps its host cluster must be aligned too, as
	// QEMU's qcow2_get_host_offset requires.
	if host%cs != 0 {
		return mapping{}, img.errorf(image.ErrCorrupt, "cluster offset %#x (L2 table %#x index %d) is not cluster aligned", host, t.off, idx)
	}
	if entry&flagZero != 0 {
		return mapping{kind: kindZero, host: host + inCluster, mapped: true}, nil
	}
	if err := img.checkDataCluster(host, t.off, idx); err != nil {
		return mapping{}, err
	}
	return mapping{kind: kindNormal, host: host + inCluster, mapped: true}, nil
}

// identityZero reports whether an L2 entry with host offset 0 maps data
// rather than nothing. With an external data file (raw or not) QEMU places
// every guest cluster at its own guest offset, so guest cluster 0 lives at
// host offset 0; the copied flag, always set there, tells it from an
// unallocated entry (as in QEMU's qcow2_get_cluster_type).
func (img *Image) identityZero(entry uint64) bool {
	return img.hdr.IncompatibleFeatures&IncompatDataFile != 0 && entry&flagCopied != 0
}

// ReadAt reads guest data. Unallocated ranges read from the backing file
// (zeros past its end) or as zeros.
func (img *Image) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, img.errorf(image.ErrInvalidArgument, "negative read offset %d", off)
	}
	size := img.Size()
	if off >= size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(len(p)) > size-off {
		p = p[:size-off]
	}
	img.mu.RLock()
	defer img.mu.RUnlock()
	if img.closed {
		return 0, img.errorf(image.ErrInvalidArgument, "read from a closed image")
	}
	if img.readErr != nil {
		return 0, img.readErr
	}
	n := 0
	for n < len(p) {
		m, err := img.lookup(off+int64(n), int64(len(p)-n))
		if err != nil {
			return n, err
		}
		if err := img.readMapping(p[n:n+int(m.length)], off+int64(n), m); err != nil {
			return n, err
		}
		n += int(m.length)
	}
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

// readMapping fills p, the guest bytes at off, from mapping m.
func (img *Image) readMapping(p []byte, off int64, m mapping) error {
	switch m.kind {
	case kindZero:
		clear(p)
	case kindUnallocated:
		return img.readBacking(p, off)
	case kindNormal:
		if img.crypt != nil {
			return img.readEncrypted(p, off, m.host)
		}
		return img.readHost(p, m.host)
	case kindCompressed:
		if int64(len(p)) == img.hdr.ClusterSize() {
			// A whole-cluster read (conversion) decompresses in place:
			// no cache entry, no copy.
			return img.decompressInto(p, m.entry, off)
		}
		cluster, err := img.decompressed(m.entry, off)
		if err != nil {
			return err
		}
		copy(p, cluster[off&(img.hdr.ClusterSize()-1):])
	}
	return nil
}

// readBacking reads unallocated guest bytes: from the backing file where it
// covers them, zeros elsewhere.
func (img *Image) readBacking(p []byte, off int64) error {
	if img.backing == nil {
		clear(p)
		return nil
	}
	bsize := img.backing.Size()
	n := 0
	if off < bsize {
		n = int(min(int64(len(p)), bsize-off))
		if _, err := img.backing.ReadAt(p[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
	}
	clear(p[n:])
	return nil
}

// readHost reads from the file holding guest data; bytes past its end read
// as zeros, as in QEMU (preallocated and sparse files end early).
func (img *Image) readHost(p []byte, host int64) error {
	f := img.file
	if img.dataFile != nil {
		f = img.dataFile
	}
	n, err := f.ReadAt(p, host)
	if err != nil && !errors.Is(err, io.EOF) {
		return image.FileErrorf(img.name, "reading at host offset %#x: %w", host, err)
	}
	clear(p[n:])
	return nil
}

// decompressed returns the content of the compressed cluster described by
// entry, which holds guest offset off, through a small cache so that many
// small reads of one cluster decompress it once.
func (img *Image) decompressed(entry uint64, off int64) ([]byte, error) {
	if c := img.ccache.get(entry); c != nil {
		return c, nil
	}
	dst := make([]byte, img.hdr.ClusterSize())
	if err := img.decompressInto(dst, entry, off); err != nil {
		return nil, err
	}
	img.ccache.put(entry, dst)
	return dst, nil
}

// decompressInto inflates the compressed cluster described by entry into
// dst, which is one cluster long.
func (img *Image) decompressInto(dst []byte, entry uint64, off int64) error {
	host, size := img.hdr.compressedDesc(entry)
	if host >= img.hostEnd() {
		return img.errorf(image.ErrCorrupt, "compressed cluster for guest offset %#x starts at %#x, past the end of the file", off, host)
	}
	buf := img.codec.buffer(min(size, img.hostEnd()-host))
	defer img.codec.buffers.Put(buf)
	src := *buf
	n, err := img.file.ReadAt(src, host)
	if err != nil && !errors.Is(err, io.EOF) {
		return image.FileErrorf(img.name, "reading compressed cluster at %#x: %w", host, err)
	}
	clear(src[n:]) // the pooled buffer holds an older cluster: a short file reads as zeros
	if err := img.codec.decompress(dst, src); err != nil {
		return image.FileErrorf(img.name, "compressed cluster at host offset %#x (guest offset %#x): %w", host, off&^(img.hdr.ClusterSize()-1), err)
	}
	return nil
}

// Extent reports the status of the run starting at start, following the
// backing chain through unallocated ranges.
func (img *Image) Extent(start, length int64) (image.Extent, error) {
	size := img.Size()
	if start < 0 || length <= 0 || start >= size {
		return image.Extent{}, img.errorf(image.ErrInvalidArgument, "extent [%d,+%d) outside the image", start, length)
	}
	length = min(length, size-start)
	img.mu.RLock()
	m, err := img.lookup(start, length)
	img.mu.RUnlock()
	if err != nil {
		return image.Extent{}, err
	}
	e := image.Extent{Start: start, Length: m.length, Allocated: true, HostOffset: -1}
	switch m.kind {
	case kindZero:
		e.Zero, e.HostOffset = true, img.hostOffset(m)
	case kindNormal:
		e.Data, e.HostOffset = true, img.hostOffset(m)
		if e.HostOffset >= 0 && img.metadataPreallocated() {
			e = img.fileHoles(e)
		}
	case kindCompressed:
		e.Data, e.Compressed = true, true
	case kindUnallocated:
		return img.backingExtent(start, m)
	}
	return e, nil
}

// hostOffset is where m's bytes are in the file, as qemu-img map reports
// it, or -1: QEMU gives no offset for encrypted images, whose host bytes
// are not the guest's.
func (img *Image) hostOffset(m mapping) int64 {
	if !m.mapped || img.Encrypted() {
		return -1
	}
	return m.host
}

// HostFile is the file holding guest data (the external data file, if
// any), whose uncompressed clusters hold guest bytes verbatim; nil for an
// encrypted image or one not read from a host file.
func (img *Image) HostFile() *os.File {
	if img.Encrypted() {
		return nil
	}
	f := img.file
	if img.dataFile != nil {
		f = img.dataFile
	}
	osf, _ := f.(*os.File)
	return osf
}

// metadataPreallocated reports, once per image, whether a read-only image
// looks created with preallocation=metadata. Its data clusters are then
// mostly holes in the file, and Extent marks those runs as zero as well as
// data, as qemu-img map does (QEMU's BDRV_BLOCK_RECURSE). Writable images
// are not probed: their allocation changes under the answer.
func (img *Image) metadataPreallocated() bool {
	img.preallocOnce.Do(func() {
		if f, ok := img.file.(*os.File); ok && img.alloc == nil && img.dataFile == nil {
			img.prealloc = img.looksPreallocated(f)
		}
	})
	return img.prealloc
}

// looksPreallocated decides as QEMU's qcow2_detect_metadata_preallocation
// does: markedly more clusters have a refcount than the file has allocated
// on disk. Any error means no.
func (img *Image) looksPreallocated(f *os.File) bool {
	st, err := f.Stat()
	if err != nil {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	cs := img.hdr.ClusterSize()
	realClusters := sys.Blocks * 512 / cs
	threshold := max(realClusters*10/9, realClusters+2)
	rc, err := newRefcounts(img)
	if err != nil {
		return false
	}
	end := (img.fileSize + cs - 1) / cs
	var count int64
	for c := int64(0); c < end && count < threshold; c++ {
		n, err := rc.get(c)
		if err != nil {
			return false
		}
		if n != 0 {
			count++
		}
	}
	return count >= threshold
}

// fileHoles asks the file system whether the data extent e starts in a
// hole of the image file (SEEK_DATA/SEEK_HOLE), and if so marks it zero;
// either way it shortens e to the hole or data run it starts in.
func (img *Image) fileHoles(e image.Extent) image.Extent {
	f, ok := img.file.(*os.File)
	if !ok {
		return e
	}
	zero, n := image.FileRun(f, e.HostOffset, e.Length)
	e.Length = n
	e.Zero = e.Zero || zero
	return e
}

// backingExtent reports the unallocated run m at start: from the backing
// file where it covers the run, else from this layer.
func (img *Image) backingExtent(start int64, m mapping) (image.Extent, error) {
	length := m.length
	if img.backing == nil || start >= img.backing.Size() {
		// Like qemu-img map, the layer that ends the chain for this run
		// reports it: this one, when there is no backing file or the
		// run lies past its end. Unallocated subclusters of an allocated
		// cluster keep its host offset there, as QEMU reports them.
		return image.Extent{Start: start, Length: length, Zero: true, HostOffset: img.hostOffset(m)}, nil
	}
	e, err := img.backing.Extent(start, min(length, img.backing.Size()-start))
	if err != nil {
		return image.Extent{}, err
	}
	e.Depth++
	return e, nil
}
