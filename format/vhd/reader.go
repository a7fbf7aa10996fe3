package vhd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/qimg/qimg/image"
)

// Subformat names, as qemu-img's subformat option spells them.
const (
	SubformatFixed   = "fixed"
	SubformatDynamic = "dynamic"
)

// Detect reports whether head, the first bytes of a file, is a dynamic
// VHD: the footer copy with its "conectix" cookie at offset 0. This is all
// QEMU's vpc probe looks at, so a fixed VHD, whose only footer is at the
// end of the file, is not detected: qemu-img (and qimg) probe it as raw,
// which shows the guest data followed by the 512-byte footer. Open it as
// VHD by forcing the format (qemu-img -f vpc).
func Detect(head []byte) bool { return hasCookie(head) }

// Image is an open VHD, fixed or dynamic, read-only. It implements
// image.Image; ReadAt and Extent may be called from many goroutines.
type Image struct {
	r        io.ReaderAt
	file     *os.File // set by Open: closed by Close, asked for holes
	name     string
	fileSize int64 // rounded up to whole sectors, as QEMU sees it
	size     int64
	foot     footer

	dynamic    bool
	blockSize  int64
	bitmapSize int64
	bat        []uint32 // the entries that cover the virtual size
	// state caches what each allocated block's sector bitmap says:
	// bmUnknown until read, then bmFull or bmMixed.
	state []atomic.Uint32

	closeOnce sync.Once
	closeErr  error
}

const (
	bmUnknown = iota
	bmFull    // every sector of the block is present: read it whole
	bmMixed   // consult the bitmap sector by sector
)

var _ image.Image = (*Image)(nil)

// Open opens the VHD file at path read-only. It finds the footer at offset
// 0 (dynamic disks) or, failing that, at the end of the file (fixed
// disks), as qemu-img -f vpc does.
func Open(path string) (*Image, error) {
	return image.OpenFile(path, newImage, (*Image).ownFile)
}

// ownFile makes Close close f, the file the image was opened from.
func (img *Image) ownFile(f *os.File) { img.file = f }

// NewReader reads a VHD of size bytes held by r (a file, a download, a
// member of an archive); name is used in errors. Close does not close r.
func NewReader(r io.ReaderAt, size int64, name string) (*Image, error) {
	if size < 0 {
		return nil, image.FileErrorf(name, "negative file size %d: %w", size, image.ErrInvalidArgument)
	}
	return newImage(r, size, name)
}

// sectorTail makes a file whose size is not a multiple of 512 read as if
// it were padded with zeros to the next multiple, as QEMU's file layer
// presents it: a fixed VHD whose footer lost its zero tail still opens.
type sectorTail struct {
	r    io.ReaderAt
	size int64 // the real size
}

func (s sectorTail) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	if off < s.size {
		var err error
		n, err = s.r.ReadAt(p[:min(int64(len(p)), s.size-off)], off)
		if n < int(min(int64(len(p)), s.size-off)) {
			return n, err
		}
	}
	clear(p[n:])
	return len(p), nil
}

func newImage(r io.ReaderAt, fileSize int64, name string) (*Image, error) {
	if fileSize%512 != 0 {
		r = sectorTail{r, fileSize}
		fileSize = (fileSize + 511) &^ 511
	}
	img := &Image{r: r, name: name, fileSize: fileSize}
	head := make([]byte, min(fileSize, footerSize))
	if err := img.readFull(head, 0); err != nil {
		return nil, err
	}
	var atStart bool
	switch {
	case hasCookie(head):
		atStart = true
	case fileSize < footerSize:
		return nil, image.FileErrorf(name, "file of %d bytes is too small for a VHD footer: %w", fileSize, image.ErrWrongFormat)
	default:
		// A fixed disk has its footer only at the end.
		if err := img.readFull(head, fileSize-footerSize); err != nil {
			return nil, err
		}
		if !hasCookie(head) {
			return nil, image.FileErrorf(name, "no VHD footer (\"conectix\") at the start or the end of the file: %w", image.ErrWrongFormat)
		}
	}
	img.foot = parseFooter(head)
	f := &img.foot
	where := "at the end of the file"
	if atStart {
		where = "at offset 0"
	}
	if !f.checksumValid {
		var c [footerSize]byte
		copy(c[:], head)
		clear(c[64:68])
		return nil, image.FileErrorf(name, "VHD footer %s has checksum %#08x, should be %#08x: %w", where, f.checksum, checksum(c[:]), image.ErrCorrupt)
	}
	switch {
	case f.diskType == typeFixed && (!atStart || fileSize == footerSize):
		// (A fixed disk of size 0 is its footer alone, at offset 0 and
		// at the end at once. QEMU 7.2 takes it for a dynamic disk and
		// fails to open it.)
	case atStart && f.diskType == typeDynamic:
		img.dynamic = true
	case f.diskType == typeDifferencing:
		return nil, img.differencing()
	case !atStart && f.diskType == typeDynamic:
		// The copy at offset 0 is what QEMU and Hyper-V use; without it
		// the BAT cannot be trusted to be the current one.
		return nil, image.FileErrorf(name, "dynamic VHD whose footer copy at offset 0 is missing or damaged: %w", image.ErrCorrupt)
	case atStart && f.diskType == typeFixed:
		return nil, image.FileErrorf(name, "fixed VHD footer at offset 0 (a fixed disk has its footer at the end): %w", image.ErrCorrupt)
	default:
		return nil, image.FileErrorf(name, "unknown VHD disk type %d: %w", f.diskType, image.ErrUnsupported)
	}
	sectors := f.sectors()
	if sectors > maxSectors {
		return nil, image.FileErrorf(name, "virtual size of %d sectors exceeds the 2040 GiB maximum: %w", sectors, image.ErrLimit)
	}
	img.size = sectors * 512
	if img.dynamic {
		if err := img.openDynamic(); err != nil {
			return nil, err
		}
	}
	return img, nil
}

// readHeader reads the dynamic disk header the footer points to.
func (img *Image) readHeader() (dynHeader, error) {
	off := img.foot.dataOffset
	if img.fileSize < dynHeaderSize || off > uint64(img.fileSize-dynHeaderSize) {
		return dynHeader{}, image.FileErrorf(img.name, "dynamic disk header at %d is past the end of the file (%d bytes): %w", off, img.fileSize, image.ErrCorrupt)
	}
	b := make([]byte, dynHeaderSize)
	if err := img.readFull(b, int64(off)); err != nil {
		return dynHeader{}, err
	}
	return parseDynHeader(img.name, b)
}

// differencing is the error for a differencing disk, naming its parent
// when the header can be read.
func (img *Image) differencing() error {
	h, err := img.readHeader()
	if err != nil || h.parentName == "" {
		return image.FileErrorf(img.name, "differencing VHD (parent not readable) is not supported: %w", image.ErrUnsupported)
	}
	return image.FileErrorf(img.name, "differencing VHD (parent %q) is not supported: %w", h.parentName, image.ErrUnsupported)
}

// openDynamic reads the dynamic header and the BAT, with QEMU's checks
// (vpc_open) in QEMU's order, and checks sizes before allocating: the BAT
// must lie inside the file, so its memory is bounded by the file size.
func (img *Image) openDynamic() error {
	h, err := img.readHeader()
	if err != nil {
		return err
	}
	bs := int64(h.blockSize)
	if bs < 512 || bs&(bs-1) != 0 {
		return image.FileErrorf(img.name, "invalid block size %d (must be a power of two of at least 512): %w", bs, image.ErrCorrupt)
	}
	img.blockSize = bs
	img.bitmapSize = bitmapSize(bs)
	entries := int64(h.maxTableEntries)
	if entries*bs < img.size {
		return image.FileErrorf(img.name, "BAT of %d entries of %d bytes does not cover the virtual size %d: %w", entries, bs, img.size, image.ErrCorrupt)
	}
	if entries > maxBATEntries {
		return image.FileErrorf(img.name, "BAT of %d entries exceeds the limit of %d: %w", entries, maxBATEntries, image.ErrLimit)
	}
	batOff := h.tableOffset
	batLen := entries * 4
	if batOff > uint64(img.fileSize) || batLen > img.fileSize-int64(batOff) ||
		(int64(batOff)+batLen+511)&^511 > img.fileSize {
		return image.FileErrorf(img.name, "BAT of %d bytes at %d is past the end of the file (%d bytes): %w", batLen, batOff, img.fileSize, image.ErrCorrupt)
	}
	needed := (img.size + bs - 1) / bs
	if needed > maxKeptEntries {
		return image.FileErrorf(img.name, "%d blocks of %d bytes exceed the limit of %d blocks: %w", needed, bs, maxKeptEntries, image.ErrLimit)
	}
	img.bat = make([]uint32, needed)
	img.state = make([]atomic.Uint32, needed)
	// Stream the whole table: QEMU refuses an image if any entry, even one
	// past the virtual size, names a block beyond the end of the file.
	buf := make([]byte, min(batLen, 64<<10))
	for i := int64(0); i < entries; {
		n := min(int64(len(buf))/4, entries-i)
		if err := img.readFull(buf[:n*4], int64(batOff)+i*4); err != nil {
			return err
		}
		for j := int64(0); j < n; j++ {
			v := binary.BigEndian.Uint32(buf[j*4:])
			if v != unallocated {
				if end := int64(v)*512 + img.bitmapSize + bs; end > img.fileSize {
					return image.FileErrorf(img.name, "block %d at %d ends past the end of the file (%d bytes): %w", i+j, int64(v)*512, img.fileSize, image.ErrCorrupt)
				}
			}
			if i+j < needed {
				img.bat[i+j] = v
			}
		}
		i += n
	}
	return nil
}

// Size is the virtual size in bytes.
func (img *Image) Size() int64 { return img.size }

// Subformat is "fixed" or "dynamic".
func (img *Image) Subformat() string {
	if img.dynamic {
		return SubformatDynamic
	}
	return SubformatFixed
}

// BlockSize is a dynamic disk's block size (what qemu-img info shows as
// cluster_size), or 0 for a fixed disk.
func (img *Image) BlockSize() int64 { return img.blockSize }

// Close closes the file if Open opened it.
func (img *Image) Close() error {
	img.closeOnce.Do(func() {
		if img.file != nil {
			img.closeErr = img.file.Close()
		}
	})
	return img.closeErr
}

// readFull reads len(p) bytes of the file at off; the caller has checked
// that they lie inside the file, so a short read means the file shrank.
func (img *Image) readFull(p []byte, off int64) error {
	n, err := img.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return image.FileErrorf(img.name, "short read of %d bytes at %d (file truncated?): %w", len(p), off, image.ErrCorrupt)
	}
	return image.FileErrorf(img.name, "reading %d bytes at %d: %w", len(p), off, err)
}

// ReadAt reads guest bytes. Unallocated blocks, and sectors of allocated
// blocks whose bitmap bit is clear, read as zeros. Past Size it returns
// io.EOF.
func (img *Image) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, image.FileErrorf(img.name, "negative read offset %d: %w", off, image.ErrInvalidArgument)
	}
	if off >= img.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), img.size-off))
	var err error
	if img.dynamic {
		err = img.readDynamic(p[:n], off)
	} else {
		err = img.readFixed(p[:n], off)
	}
	if err != nil {
		return 0, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readFixed reads a fixed disk: the file itself. Like QEMU, a virtual size
// that reaches past the end of the file reads the footer and then zeros.
func (img *Image) readFixed(p []byte, off int64) error {
	n := int(max(0, min(int64(len(p)), img.fileSize-off)))
	if n > 0 {
		if err := img.readFull(p[:n], off); err != nil {
			return err
		}
	}
	clear(p[n:])
	return nil
}

func (img *Image) readDynamic(p []byte, off int64) error {
	for len(p) > 0 {
		idx, in := off/img.blockSize, off%img.blockSize
		chunk := min(int64(len(p)), img.blockSize-in)
		q := p[:chunk]
		entry := img.bat[idx]
		if entry == unallocated {
			clear(q)
		} else {
			base := int64(entry)*512 + img.bitmapSize
			full, err := img.blockFull(idx)
			if err != nil {
				return err
			}
			if full {
				if err := img.readFull(q, base+in); err != nil {
					return err
				}
			} else {
				// Runs of present and absent sectors.
				for pos := in; pos < in+chunk; {
					present, run, err := img.sectorRun(idx, pos, in+chunk)
					if err != nil {
						return err
					}
					r := q[pos-in : pos-in+run]
					if present {
						if err := img.readFull(r, base+pos); err != nil {
							return err
						}
					} else {
						clear(r)
					}
					pos += run
				}
			}
		}
		p = p[chunk:]
		off += chunk
	}
	return nil
}

// blockFull reports whether every sector bit in block idx's bitmap is set,
// as qemu-img and Hyper-V leave it for fully written blocks. The answer is
// cached.
func (img *Image) blockFull(idx int64) (bool, error) {
	switch img.state[idx].Load() {
	case bmFull:
		return true, nil
	case bmMixed:
		return false, nil
	}
	full := true
	if img.bitmapSize > 0 {
		nbytes := (img.blockSize/512 + 7) / 8
		base := int64(img.bat[idx]) * 512
		buf := make([]byte, min(nbytes, 64<<10))
		for done := int64(0); done < nbytes && full; {
			n := min(int64(len(buf)), nbytes-done)
			if err := img.readFull(buf[:n], base+done); err != nil {
				return false, err
			}
			full = bytes.Count(buf[:n], []byte{0xff}) == int(n)
			done += n
		}
	}
	if full {
		img.state[idx].Store(bmFull)
	} else {
		img.state[idx].Store(bmMixed)
	}
	return full, nil
}

// sectorRun reads block idx's bitmap at byte offset pos inside the block
// and returns whether that sector is present and how many bytes from pos
// (up to end) share its state. Bit 7 of the bitmap's first byte is the
// block's first sector (the specification's and Hyper-V's order).
func (img *Image) sectorRun(idx, pos, end int64) (bool, int64, error) {
	first := pos / 512
	last := (end + 511) / 512 // one past the last sector touched
	// Read at most one sector of bitmap (2 MiB of guest data) per call,
	// so that a walk over a bitmap of alternating bits costs time in
	// proportion to the bitmap, not its square.
	b0 := first / 8
	last = min(last, (b0+512)*8)
	buf := make([]byte, (last+7)/8-b0)
	if err := img.readFull(buf, int64(img.bat[idx])*512+b0); err != nil {
		return false, 0, err
	}
	bit := func(s int64) bool { return buf[s/8-b0]&(0x80>>(s%8)) != 0 }
	present := bit(first)
	s := first + 1
	for s < last && bit(s) == present {
		s++
	}
	return present, min(s*512, end) - pos, nil
}

// Extent reports the run at start with one status, with qemu-img map's
// meaning. A dynamic disk reports each allocated block as data at its host
// offset (sectors whose bitmap bit is clear as zeros) and runs of
// unallocated blocks as zeros that are present (a dynamic disk has no
// parent to fall through to). A fixed disk is all data, as QEMU reports
// it; where the file opened by Open has holes, the data is also marked
// Zero, as qemu-img map -f vpc shows it.
func (img *Image) Extent(start, length int64) (image.Extent, error) {
	if start < 0 || length <= 0 || start >= img.size {
		return image.Extent{}, image.FileErrorf(img.name, "extent [%d,+%d) outside the image: %w", start, length, image.ErrInvalidArgument)
	}
	length = min(length, img.size-start)
	zero := image.Extent{Start: start, Length: length, Zero: true, Allocated: true, HostOffset: -1}
	if !img.dynamic {
		return img.fixedExtent(start, length), nil
	}
	idx, in := start/img.blockSize, start%img.blockSize
	entry := img.bat[idx]
	if entry == unallocated {
		n := img.blockSize - in
		for i := idx + 1; n < length && i < int64(len(img.bat)) && img.bat[i] == unallocated; i++ {
			n += img.blockSize
		}
		zero.Length = min(n, length)
		return zero, nil
	}
	length = min(length, img.blockSize-in)
	base := int64(entry)*512 + img.bitmapSize
	data := image.Extent{Start: start, Length: length, Data: true, Allocated: true, HostOffset: base + in}
	full, err := img.blockFull(idx)
	if err != nil {
		return image.Extent{}, err
	}
	if full {
		return data, nil
	}
	present, run, err := img.sectorRun(idx, in, in+length)
	if err != nil {
		return image.Extent{}, err
	}
	if present {
		data.Length = run
		return data, nil
	}
	zero.Length = run
	return zero, nil
}

// fixedExtent asks the file system (SEEK_DATA, SEEK_HOLE) where a fixed
// disk opened by Open has holes; other readers are all data.
func (img *Image) fixedExtent(start, length int64) image.Extent {
	data := image.Extent{Start: start, Length: length, Data: true, Allocated: true, HostOffset: start}
	hole := data
	hole.Zero = true
	if start >= img.fileSize {
		return hole
	}
	length = min(length, img.fileSize-start)
	data.Length, hole.Length = length, length
	if img.file == nil {
		return data
	}
	fd := int(img.file.Fd())
	off, err := unix.Seek(fd, start, unix.SEEK_DATA)
	switch {
	case errors.Is(err, unix.ENXIO): // only a hole follows
		return hole
	case err != nil: // no hole support: all data
		return data
	case off > start:
		hole.Length = min(length, off-start)
		return hole
	}
	if next, err := unix.Seek(fd, start, unix.SEEK_HOLE); err == nil && next > start {
		data.Length = min(length, next-start)
	}
	return data
}
