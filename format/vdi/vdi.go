package vdi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/qimg/qimg/image"
)

// Signature is the little-endian 32-bit value at offset 0x40 of every
// VDI file.
const Signature = 0xbeda107f

// Constants of the format, and QEMU's limits (block/vdi.c).
const (
	version11 = 0x00010001

	typeDynamic = 1
	typeStatic  = 2

	headerSize  = 512
	sectorSize  = 512
	blockSize   = 1 << 20 // the only block size VirtualBox writes and QEMU reads
	maxBlocks   = 0x3fffffff
	maxDiskSize = maxBlocks * blockSize

	// Block map entries that are not block indexes.
	unallocated = 0xffffffff // never written: reads as zeros
	discarded   = 0xfffffffe // discarded: reads as zeros
)

// Detect reports whether head, the first bytes of a file (4096 of them,
// zero padded if the file is shorter), holds the VDI signature at offset
// 0x40, as QEMU's vdi_probe decides.
func Detect(head []byte) bool {
	return len(head) >= 0x44 && binary.LittleEndian.Uint32(head[0x40:]) == Signature
}

// Params are the header fields a caller may want to show (qemu-img info
// shows BlockSize as cluster_size).
type Params struct {
	// Text is the pre-header text naming the creator.
	Text string
	// Description is the free-form description field.
	Description string
	// ImageType is 1 (dynamic) or 2 (static).
	ImageType uint32
	// DiskSize is the size stored in the header, before QEMU's rounding
	// up to whole sectors.
	DiskSize        uint64
	BlockSize       int64
	BlocksInImage   uint32
	BlocksAllocated uint32
	// UUID is the image's UUID in its usual textual form.
	UUID string
}

// Image is an open VDI image. It implements image.Image; ReadAt and
// Extent may be called from many goroutines at once.
type Image struct {
	r        io.ReaderAt
	closer   io.Closer
	name     string
	fileSize int64
	size     int64
	dataOff  int64
	bmapOff  int64
	bmap     []uint32
	params   Params
	// forCheck leaves blocks stored past the end of the file for Check
	// to report instead of refusing the image (they read as zeros).
	forCheck bool
}

var _ image.Image = (*Image)(nil)

// Open opens the VDI image at path read-only.
func Open(path string) (*Image, error) {
	return image.OpenFile(path, NewReader, (*Image).ownFile)
}

// OpenForCheck opens the VDI image at path for Check or for its metadata,
// as qemu-img check and info open it: a block stored past the end of the
// file, which Open refuses, reads as zeros, as in QEMU.
func OpenForCheck(path string) (*Image, error) {
	return image.OpenFile(path, NewCheckReader, (*Image).ownFile)
}

// NewReader reads a VDI image of size bytes held by r; name is used in
// error messages. Close does not close r.
func NewReader(r io.ReaderAt, size int64, name string) (*Image, error) {
	return newReader(r, size, name, false)
}

// NewCheckReader reads an image held by r for Check, as OpenForCheck
// opens a file.
func NewCheckReader(r io.ReaderAt, size int64, name string) (*Image, error) {
	return newReader(r, size, name, true)
}

func newReader(r io.ReaderAt, size int64, name string, forCheck bool) (*Image, error) {
	if size < 0 {
		return nil, image.FileErrorf(name, "negative file size %d: %w", size, image.ErrInvalidArgument)
	}
	img := &Image{r: r, name: name, fileSize: size, forCheck: forCheck}
	if err := img.open(); err != nil {
		return nil, err
	}
	return img, nil
}

// Size is the virtual disk size: the header's disk size rounded up to
// whole sectors, as QEMU does for the odd sizes VBoxManage can write.
func (img *Image) Size() int64 { return img.size }

// Params returns the image's header fields.
func (img *Image) Params() Params { return img.params }

// Subformat is "static" for a preallocated image and "dynamic" otherwise,
// as qemu-img's static=on|off option names them.
func (img *Image) Subformat() string {
	if img.params.ImageType == typeStatic {
		return "static"
	}
	return "dynamic"
}

// Close releases the file if Open opened it.
func (img *Image) Close() error {
	if img.closer != nil {
		c := img.closer
		img.closer = nil
		return c.Close()
	}
	return nil
}

func (img *Image) errorf(class error, format string, args ...any) error {
	return image.FileErrorf(img.name, "%s: %w", fmt.Sprintf(format, args...), class)
}

// uuid formats a UUID stored as VirtualBox does (the first three groups
// little-endian).
func uuid(b []byte) string {
	le := binary.LittleEndian
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", le.Uint32(b), le.Uint16(b[4:]), le.Uint16(b[6:]), b[8:10], b[10:16])
}

func isNull(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (img *Image) open() error {
	// The header is read zero padded, as QEMU reads a short file.
	h := make([]byte, headerSize)
	if _, err := img.r.ReadAt(h[:min(headerSize, img.fileSize)], 0); err != nil && !errors.Is(err, io.EOF) {
		return image.FileErrorf(img.name, "reading the header: %w", err)
	}
	if !Detect(h) {
		return img.errorf(image.ErrWrongFormat, "no VDI signature at offset 0x40: not a VDI image")
	}
	le := binary.LittleEndian
	p := &img.params
	p.Text = strings.TrimRight(string(h[:0x40]), "\x00\n")
	p.Description = strings.TrimRight(string(h[0x54:0x154]), "\x00")
	p.ImageType = le.Uint32(h[0x4c:])
	p.DiskSize = le.Uint64(h[0x170:])
	p.BlockSize = int64(le.Uint32(h[0x178:]))
	p.BlocksInImage = le.Uint32(h[0x180:])
	p.BlocksAllocated = le.Uint32(h[0x184:])
	p.UUID = uuid(h[0x188:])
	version := le.Uint32(h[0x44:])
	bmapOff, dataOff := int64(le.Uint32(h[0x154:])), int64(le.Uint32(h[0x158:]))
	sector := le.Uint32(h[0x168:])
	extra := le.Uint32(h[0x17c:])

	// QEMU's checks, in QEMU's order.
	switch {
	case p.DiskSize > maxDiskSize:
		return img.errorf(image.ErrLimit, "disk size %d is larger than the maximum %d", p.DiskSize, uint64(maxDiskSize))
	case version != version11:
		return img.errorf(image.ErrUnsupported, "VDI version %d.%d (only 1.1 is supported)", version>>16, version&0xffff)
	case bmapOff%sectorSize != 0:
		return img.errorf(image.ErrUnsupported, "block map offset %#x is not sector aligned", bmapOff)
	case dataOff%sectorSize != 0:
		return img.errorf(image.ErrUnsupported, "data offset %#x is not sector aligned", dataOff)
	case sector != sectorSize:
		return img.errorf(image.ErrUnsupported, "sector size %d is not 512", sector)
	case p.BlockSize != blockSize:
		return img.errorf(image.ErrUnsupported, "block size %d is not 1 MiB", p.BlockSize)
	case p.DiskSize > uint64(p.BlocksInImage)*blockSize:
		return img.errorf(image.ErrCorrupt, "disk size %d is larger than its %d blocks", p.DiskSize, p.BlocksInImage)
	case !isNull(h[0x1a8:0x1b8]):
		return img.errorf(image.ErrUnsupported, "non-null link UUID: VDI snapshots are not supported")
	case !isNull(h[0x1b8:0x1c8]):
		return img.errorf(image.ErrUnsupported, "non-null parent UUID: differencing VDI images are not supported")
	case p.BlocksInImage > maxBlocks:
		return img.errorf(image.ErrLimit, "%d blocks (at most %d)", p.BlocksInImage, maxBlocks)
	// Checks QEMU does not make.
	case p.ImageType != typeDynamic && p.ImageType != typeStatic:
		return img.errorf(image.ErrUnsupported, "image type %d (only 1, dynamic, and 2, static, are supported)", p.ImageType)
	case extra != 0:
		return img.errorf(image.ErrUnsupported, "block extra size %d (QEMU ignores it and would misread the data)", extra)
	}
	img.size = int64(p.DiskSize+sectorSize-1) &^ (sectorSize - 1)
	img.dataOff, img.bmapOff = dataOff, bmapOff

	mapBytes := int64(p.BlocksInImage) * 4
	switch {
	case bmapOff < headerSize:
		return img.errorf(image.ErrCorrupt, "block map at %d overlaps the header", bmapOff)
	case bmapOff+mapBytes > img.fileSize:
		return img.errorf(image.ErrCorrupt, "block map [%d,+%d) extends past the end of the file (%d bytes)", bmapOff, mapBytes, img.fileSize)
	case dataOff < bmapOff+mapBytes:
		return img.errorf(image.ErrCorrupt, "data area at %d overlaps the block map [%d,+%d)", dataOff, bmapOff, mapBytes)
	}
	// Only the entries that cover the disk are kept: the rest are never
	// read.
	used := (img.size + blockSize - 1) / blockSize
	raw := make([]byte, used*4)
	if _, err := img.r.ReadAt(raw, bmapOff); err != nil && !errors.Is(err, io.EOF) {
		return image.FileErrorf(img.name, "reading the block map: %w", err)
	}
	img.bmap = make([]uint32, used)
	for i := range img.bmap {
		e := le.Uint32(raw[4*i:])
		img.bmap[i] = e
		if e >= discarded {
			continue
		}
		if host := dataOff + int64(e)*blockSize; host >= img.fileSize && !img.forCheck {
			return img.errorf(image.ErrCorrupt, "block %d is stored at %d, past the end of the file (%d bytes); the image has probably been truncated", i, host, img.fileSize)
		}
	}
	return nil
}

// host returns where block b is stored, or -1 if it reads as zeros.
func (img *Image) host(b int64) int64 {
	e := img.bmap[b]
	if e >= discarded {
		return -1
	}
	return img.dataOff + int64(e)*blockSize
}

// ReadAt reads guest bytes. Unallocated and discarded blocks, and the part
// of a truncated last block past the end of the file, read as zeros; past
// Size it returns io.EOF as io.ReaderAt requires.
func (img *Image) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, image.FileErrorf(img.name, "negative offset %d: %w", off, image.ErrInvalidArgument)
	}
	if off >= img.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	want := len(p)
	p = p[:min(int64(len(p)), img.size-off)]
	for done := 0; done < len(p); {
		pos := off + int64(done)
		in := pos % blockSize
		n := int(min(int64(len(p)-done), blockSize-in))
		if err := img.readBlock(p[done:done+n], pos/blockSize, in); err != nil {
			return done, err
		}
		done += n
	}
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}

func (img *Image) readBlock(p []byte, b, in int64) error {
	host := img.host(b)
	if host < 0 {
		clear(p)
		return nil
	}
	host += in
	k := int(max(0, min(int64(len(p)), img.fileSize-host)))
	n, err := img.r.ReadAt(p[:k], host)
	if n < k {
		if err == nil || errors.Is(err, io.EOF) {
			return img.errorf(image.ErrCorrupt, "short read of %d bytes at file offset %d (got %d): the file is shorter than when it was opened", k, host, n)
		}
		return image.FileErrorf(img.name, "reading %d bytes at file offset %d: %w", k, host, err)
	}
	clear(p[k:])
	return nil
}

// Extent reports the run starting at start: allocated blocks as data
// (with their host offset while they are contiguous in the file),
// unallocated and discarded blocks as zeros.
func (img *Image) Extent(start, length int64) (image.Extent, error) {
	if start < 0 || length <= 0 || start >= img.size {
		return image.Extent{}, image.FileErrorf(img.name, "extent [%d,+%d) outside the image: %w", start, length, image.ErrInvalidArgument)
	}
	end := start + min(length, img.size-start)
	b := start / blockSize
	e := image.Extent{Start: start, Allocated: true, HostOffset: -1}
	if h := img.host(b); h >= 0 {
		e.Data, e.HostOffset = true, h+start%blockSize
	} else {
		e.Zero = true
	}
	pos := (b + 1) * blockSize
	for ; pos < end; pos += blockSize {
		h := img.host(pos / blockSize)
		if (h >= 0) != e.Data || (e.Data && h != e.HostOffset+(pos-start)) {
			break
		}
	}
	e.Length = min(pos, end) - start
	return e, nil
}

// ownFile makes Close close f, the file the image was opened from.
func (img *Image) ownFile(f *os.File) { img.closer = f }
