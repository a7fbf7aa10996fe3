package vmdk

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/inflate"
)

// extent is one piece of the virtual disk: a sparse extent (grain
// directory and tables), a flat file region, or zeros. Offsets are
// relative to the extent's start; callers keep them inside the extent.
type extent interface {
	readAt(p []byte, off int64) error
	status(off, length int64) (image.Extent, error)
}

// caches are shared by all extents of an image, so that a disk split into
// many extents still has one bounded cache.
type caches struct {
	gts       *lru[gtKey, []uint32]  // grain tables
	grains    *lru[grainKey, []byte] // decompressed grains (len = bytes inflated)
	inflaters sync.Pool              // *inflate.Decoder
	bufs      sync.Pool              // *[]byte for compressed grain data
}

type gtKey struct {
	ext int
	gt  int64
}

type grainKey struct {
	ext    int
	sector uint32
}

// Cache sizes: 256 grain tables of 512 entries cover 8 GiB of a disk with
// 64 KiB grains in 512 KiB; decompressed grains are bounded by bytes.
const (
	gtCacheEntries  = 256
	grainCacheBytes = 8 << 20
)

func newCaches() *caches {
	return &caches{
		gts:    newLRU[gtKey, []uint32](gtCacheEntries, func([]uint32) int64 { return 1 }),
		grains: newLRU[grainKey, []byte](grainCacheBytes, func(b []byte) int64 { return int64(len(b)) + 64 }),
	}
}

// readAtZero reads p from r at off; bytes past size (the end of the file)
// read as zeros, as QEMU's file driver pads short reads.
func readAtZero(r io.ReaderAt, p []byte, off, size int64, name string) error {
	n := 0
	if off < size {
		m := int(min(int64(len(p)), size-off))
		var err error
		n, err = r.ReadAt(p[:m], off)
		if err != nil && !errors.Is(err, io.EOF) {
			return image.FileErrorf(name, "reading %d bytes at %d: %w", m, off, err)
		}
	}
	clear(p[n:])
	return nil
}

// sparseExtent is a hosted sparse extent ("KDMV"): monolithicSparse,
// streamOptimized, or one file of twoGbMaxExtentSparse.
type sparseExtent struct {
	id         int
	r          io.ReaderAt
	name       string
	fileSize   int64
	h          header
	grainBytes int64
	gtes       int64
	gd         []uint32
	compressed bool
	markers    bool
	zeroGrain  bool
	c          *caches
}

// grain states, from a grain table entry.
const (
	stUnalloc = iota
	stZero
	stData
	stCompressed
)

// openSparse reads and checks the header (or the footer of a stream) and
// the grain directory of the sparse extent held in r.
func openSparse(r io.ReaderAt, fileSize int64, name string, id int, c *caches) (*sparseExtent, error) {
	if fileSize < sectorSize {
		return nil, image.FileErrorf(name, "%d bytes is too small for a VMDK sparse extent: %w", fileSize, image.ErrCorrupt)
	}
	hb := make([]byte, sectorSize)
	if err := readAtZero(r, hb, 0, fileSize, name); err != nil {
		return nil, err
	}
	if string(hb[:4]) == magicCOWD {
		return nil, image.FileErrorf(name, "VMDK3 (COWD, ESX sparse) extents: %w", image.ErrUnsupported)
	}
	if string(hb[:4]) != magicSparse {
		return nil, image.FileErrorf(name, "no VMDK sparse extent magic: %w", image.ErrWrongFormat)
	}
	h := parseHeader(hb)
	if h.GDOffset == gdAtEnd {
		// A stream: the footer, a copy of the header with the real grain
		// directory offset, sits between a footer marker and the
		// end-of-stream marker in the last three sectors.
		var err error
		if h, err = readFooter(r, fileSize, name); err != nil {
			return nil, err
		}
	}
	if err := h.check(name, fileSize); err != nil {
		return nil, err
	}
	e := &sparseExtent{
		id: id, r: r, name: name, fileSize: fileSize, h: h,
		grainBytes: int64(h.GrainSize) * sectorSize,
		gtes:       int64(h.NumGTEsPerGT),
		compressed: h.compressed(),
		markers:    h.Flags&flagMarkers != 0,
		zeroGrain:  h.Flags&flagZeroGrain != 0,
		c:          c,
	}
	// Bounded by check: the directory lies inside the file.
	n := h.gdEntries()
	raw := make([]byte, n*4)
	if err := readAtZero(r, raw, int64(h.GDOffset)*sectorSize, fileSize, name); err != nil {
		return nil, err
	}
	e.gd = make([]uint32, n)
	for i := range e.gd {
		e.gd[i] = binary.LittleEndian.Uint32(raw[4*i:])
	}
	return e, nil
}

func readFooter(r io.ReaderAt, fileSize int64, name string) (header, error) {
	end := (fileSize + sectorSize - 1) / sectorSize * sectorSize
	if end < 3*sectorSize+sectorSize {
		return header{}, image.FileErrorf(name, "stream too short for a footer: %w", image.ErrCorrupt)
	}
	b := make([]byte, 3*sectorSize)
	if err := readAtZero(r, b, end-3*sectorSize, fileSize, name); err != nil {
		return header{}, err
	}
	le := binary.LittleEndian
	fm, foot, eos := b[:sectorSize], b[sectorSize:2*sectorSize], b[2*sectorSize:]
	if le.Uint32(fm[8:]) != 0 || le.Uint32(fm[12:]) != markerFooter || string(foot[:4]) != magicSparse ||
		le.Uint64(eos) != 0 || le.Uint32(eos[8:]) != 0 || le.Uint32(eos[12:]) != markerEOS {
		return header{}, image.FileErrorf(name, "grain directory at end of stream but invalid footer: %w", image.ErrCorrupt)
	}
	h := parseHeader(foot)
	if h.GDOffset == gdAtEnd {
		return header{}, image.FileErrorf(name, "footer has no grain directory offset: %w", image.ErrCorrupt)
	}
	return h, nil
}

func (e *sparseExtent) capacity() int64 { return int64(e.h.Capacity) * sectorSize }

// table returns grain table gt, or nil if it is not allocated.
func (e *sparseExtent) table(gt int64) ([]uint32, error) {
	if gt < 0 || gt >= int64(len(e.gd)) {
		return nil, image.FileErrorf(e.name, "grain table %d outside the directory: %w", gt, image.ErrCorrupt)
	}
	s := e.gd[gt]
	if s == 0 {
		return nil, nil
	}
	key := gtKey{e.id, gt}
	if t, ok := e.c.gts.get(key); ok {
		return t, nil
	}
	off, size := int64(s)*sectorSize, e.gtes*4
	if off+size > e.fileSize {
		return nil, image.FileErrorf(e.name, "grain table %d at sector %d past end of file: %w", gt, s, image.ErrCorrupt)
	}
	raw := make([]byte, size)
	if err := readAtZero(e.r, raw, off, e.fileSize, e.name); err != nil {
		return nil, err
	}
	t := make([]uint32, e.gtes)
	for i := range t {
		t[i] = binary.LittleEndian.Uint32(raw[4*i:])
	}
	e.c.gts.put(key, t)
	return t, nil
}

// entry returns the grain table entry of grain g and its state.
func (e *sparseExtent) entry(g int64) (uint32, int, error) {
	t, err := e.table(g / e.gtes)
	if err != nil || t == nil {
		return 0, stUnalloc, err
	}
	v := t[g%e.gtes]
	switch {
	case v == 0:
		return 0, stUnalloc, nil
	case v == gteZeroed && e.zeroGrain:
		return v, stZero, nil
	case e.compressed:
		return v, stCompressed, nil
	}
	return v, stData, nil
}

func (e *sparseExtent) readAt(p []byte, off int64) error {
	for len(p) > 0 {
		g, in := off/e.grainBytes, off%e.grainBytes
		n := min(int64(len(p)), e.grainBytes-in)
		v, st, err := e.entry(g)
		if err != nil {
			return err
		}
		switch st {
		case stUnalloc, stZero:
			clear(p[:n])
		case stData:
			// Grains that follow each other in the file are read at once.
			host := int64(v)*sectorSize + in
			for n < int64(len(p)) {
				v2, st2, err := e.entry(g + 1 + (n-(e.grainBytes-in))/e.grainBytes)
				if err != nil || st2 != stData || int64(v2)*sectorSize != host+n {
					break
				}
				n = min(int64(len(p)), n+e.grainBytes)
			}
			if err := e.inFile(g, v, in+n); err != nil {
				return err
			}
			if err := readAtZero(e.r, p[:n], host, e.fileSize, e.name); err != nil {
				return err
			}
		case stCompressed:
			if err := e.readCompressed(p[:n], v, in); err != nil {
				return err
			}
		}
		p = p[n:]
		off += n
	}
	return nil
}

// inFile fails unless the file holds the n bytes a read needs from the
// start of grain g (at sector v) on, through the grains that follow it in
// the file. A truncated file must fail
// the read, never read as zeros: QEMU pads a short read of a truncated
// monolithicSparse file with zeros, which silently loses the data, and
// qimg deliberately does not. Block status does not look, as QEMU's
// does not: qemu-img map still lists such grains.
func (e *sparseExtent) inFile(g int64, v uint32, n int64) error {
	start := int64(v) * sectorSize
	if start+n <= e.fileSize {
		return nil
	}
	// Name the first grain of the run that the file does not hold.
	k := max(0, (e.fileSize-start)/e.grainBytes)
	return image.FileErrorf(e.name, "grain %d at sector %d past end of file (%d bytes), truncated?: %w", g+k, start/sectorSize+k*e.grainBytes/sectorSize, e.fileSize, image.ErrCorrupt)
}

// readCompressed fills p from offset in of the compressed grain at sector
// v. A read of a whole grain inflates straight into p; partial reads go
// through the cache of decompressed grains, so small sequential reads
// inflate each grain once.
func (e *sparseExtent) readCompressed(p []byte, v uint32, in int64) error {
	if in == 0 && int64(len(p)) == e.grainBytes {
		n, err := e.inflate(p, v)
		if err != nil {
			return err
		}
		if n < len(p) {
			return image.FileErrorf(e.name, "compressed grain at sector %d holds %d of %d bytes: %w", v, n, len(p), image.ErrCorrupt)
		}
		return nil
	}
	key := grainKey{e.id, v}
	g, ok := e.c.grains.get(key)
	if !ok {
		buf := make([]byte, e.grainBytes)
		n, err := e.inflate(buf, v)
		if err != nil {
			return err
		}
		g = buf[:n]
		e.c.grains.put(key, g)
	}
	if in+int64(len(p)) > int64(len(g)) {
		// QEMU fails the same read: the grain is shorter than asked.
		return image.FileErrorf(e.name, "compressed grain at sector %d holds %d bytes, read needs %d: %w", v, len(g), in+int64(len(p)), image.ErrCorrupt)
	}
	copy(p, g[in:])
	return nil
}

// inflate decompresses the grain at sector v into dst (one grain long)
// and returns the bytes produced. Output is cut at len(dst): a grain that
// inflates to more is corrupt (QEMU's uncompress fails the same way), so a
// compression bomb costs one grain of memory and bounded time.
func (e *sparseExtent) inflate(dst []byte, v uint32) (int, error) {
	off := int64(v) * sectorSize
	var size int64
	if e.markers {
		var m [12]byte
		if off+12 > e.fileSize {
			return 0, image.FileErrorf(e.name, "grain marker at sector %d past end of file: %w", v, image.ErrCorrupt)
		}
		if err := readAtZero(e.r, m[:], off, e.fileSize, e.name); err != nil {
			return 0, err
		}
		size = int64(binary.LittleEndian.Uint32(m[8:]))
		off += 12
		if size == 0 || size > 2*e.grainBytes {
			return 0, image.FileErrorf(e.name, "compressed grain at sector %d has size %d: %w", v, size, image.ErrCorrupt)
		}
		if off+size > e.fileSize {
			return 0, image.FileErrorf(e.name, "compressed grain at sector %d past end of file: %w", v, image.ErrCorrupt)
		}
	} else {
		// Without markers QEMU inflates from one grain of the file.
		size = e.grainBytes
	}
	bp, _ := e.c.bufs.Get().(*[]byte)
	if bp == nil || int64(cap(*bp)) < size {
		b := make([]byte, size)
		bp = &b
	}
	defer e.c.bufs.Put(bp)
	src := (*bp)[:size]
	if err := readAtZero(e.r, src, off, e.fileSize, e.name); err != nil {
		return 0, err
	}
	n, err := e.c.inflate(dst, src)
	if err != nil {
		return 0, image.FileErrorf(e.name, "compressed grain at sector %d: %v: %w", v, err, image.ErrCorrupt)
	}
	return n, nil
}

// inflate decompresses one zlib stream from src into dst: a stream that
// ends early is a short grain, one that holds more than dst is an error.
func (c *caches) inflate(dst, src []byte) (int, error) {
	z, _ := c.inflaters.Get().(*inflate.Decoder)
	if z == nil {
		z = new(inflate.Decoder)
	}
	defer c.inflaters.Put(z)
	n, err := z.DecompressZlib(dst, src)
	switch {
	case errors.Is(err, inflate.ErrShort):
		return n, nil
	case errors.Is(err, inflate.ErrLong):
		return n, errors.New("grain inflates to more than the grain size")
	}
	return n, err
}

// status describes the run starting at off: grains of one state, and for
// uncompressed data grains, contiguous in the file.
func (e *sparseExtent) status(off, length int64) (image.Extent, error) {
	g, in := off/e.grainBytes, off%e.grainBytes
	v, st, err := e.entry(g)
	if err != nil {
		return image.Extent{}, err
	}
	run := min(length, e.grainBytes-in)
	host := int64(-1)
	if st == stData {
		host = int64(v)*sectorSize + in
	}
	// A compressed grain is a run of its own, as in QEMU's block status:
	// qemu-img compare then reads it alone and names its offset when it
	// fails.
	for run < length && st != stCompressed {
		next := g + 1 + (run-(e.grainBytes-in))/e.grainBytes
		if st == stUnalloc && e.gd[next/e.gtes] == 0 {
			// A missing grain table: all of its grains are unallocated.
			end := (next/e.gtes + 1) * e.gtes * e.grainBytes
			run = min(length, end-off)
			continue
		}
		v2, st2, err := e.entry(next)
		if err != nil || st2 != st || st == stData && int64(v2)*sectorSize != host+run {
			break
		}
		run = min(length, run+e.grainBytes)
	}
	ext := image.Extent{Start: off, Length: run, HostOffset: host}
	switch st {
	case stUnalloc:
		ext.Zero = true // no backing file: unallocated reads as zeros
	case stZero:
		ext.Zero, ext.Allocated = true, true
	case stData:
		ext.Data, ext.Allocated = true, true
	case stCompressed:
		ext.Data, ext.Allocated, ext.Compressed = true, true, true
	}
	return ext, nil
}

// flatExtent is a region of a plain file (FLAT or VMFS extent).
type flatExtent struct {
	r        io.ReaderAt
	f        *os.File // for SEEK_DATA/SEEK_HOLE; nil if r is not a file
	name     string
	fileSize int64
	offset   int64 // bytes into the file where the extent starts
}

func (e *flatExtent) readAt(p []byte, off int64) error {
	return readAtZero(e.r, p, e.offset+off, e.fileSize, e.name)
}

// status reports data, as QEMU does for flat extents (its map says
// "data": true everywhere), with Zero set over holes of the file and past
// its end, which QEMU finds by asking the file the same way.
func (e *flatExtent) status(off, length int64) (image.Extent, error) {
	host := e.offset + off
	ext := image.Extent{Start: off, Length: length, Data: true, Allocated: true, HostOffset: host}
	if host >= e.fileSize {
		ext.Zero = true
		return ext, nil
	}
	ext.Length = min(length, e.fileSize-host)
	if e.f == nil {
		return ext, nil
	}
	fd := int(e.f.Fd())
	data, err := unix.Seek(fd, host, unix.SEEK_DATA)
	switch {
	case errors.Is(err, unix.ENXIO): // only a hole up to the end
		ext.Zero = true
		return ext, nil
	case err != nil:
		return ext, nil // no hole support: all data
	case data > host:
		ext.Zero = true
		ext.Length = min(ext.Length, data-host)
		return ext, nil
	}
	if hole, err := unix.Seek(fd, host, unix.SEEK_HOLE); err == nil && hole > host {
		ext.Length = min(ext.Length, hole-host)
	}
	return ext, nil
}

// zeroExtent is a ZERO extent: it has no file and reads as zeros.
type zeroExtent struct{}

func (zeroExtent) readAt(p []byte, _ int64) error { clear(p); return nil }

func (zeroExtent) status(off, length int64) (image.Extent, error) {
	return image.Extent{Start: off, Length: length, Zero: true, Allocated: true, HostOffset: -1}, nil
}
