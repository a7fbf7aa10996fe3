package ntfs

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"sync"

	"github.com/qimg/qimg/image"
)

// Limits on what the boot sector may ask for.
const (
	maxClusterSize = 2 << 20  // NTFS's largest cluster
	maxRecordSize  = 64 << 10 // MFT and index records (1 and 4 KiB in practice)
	fixupStride    = 512      // update sequence arrays protect 512-byte blocks
)

// FS is a read-only NTFS filesystem in an image. It implements fs.FS,
// fs.ReadDirFS and fs.StatFS (plus Lstat and ReadLink), and is safe for
// concurrent use.
type FS struct {
	r           io.ReaderAt
	name        string
	clusterSize int64
	clusters    int64 // clusters in the volume
	recordSize  int64 // bytes of an MFT record
	indexSize   int64 // bytes of an index record, from the boot sector
	mft         *stream
	records     int64 // MFT records the $MFT's data holds

	mu       sync.Mutex
	cache    map[int64][]attr     // attributes of records read so far
	dirs     map[int64][]dirEntry // directory listings read so far
	dirNames int                  // names the listings hold
}

// Open reads the NTFS filesystem of size bytes held in r (a whole disk
// image that is one filesystem, or an image.Section of a partition).
// name is the image's name in messages. Errors are of the classes of
// package image: ErrWrongFormat when there is no NTFS boot sector,
// ErrCorrupt or ErrUnsupported otherwise.
func Open(r io.ReaderAt, size int64, name string) (*FS, error) {
	b := make([]byte, 512)
	if size < 512 {
		return nil, image.FileErrorf(name, "too small for NTFS: %w", image.ErrWrongFormat)
	}
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, image.FileErrorf(name, "reading the NTFS boot sector: %w", err)
	}
	if string(b[3:11]) != "NTFS    " {
		return nil, image.FileErrorf(name, "no NTFS boot sector: %w", image.ErrWrongFormat)
	}
	f := &FS{r: r, name: name, cache: map[int64][]attr{}, dirs: map[int64][]dirEntry{}}
	if err := f.geometry(b, size); err != nil {
		return nil, err
	}
	if err := f.bootstrapMFT(le64(b[0x30:])); err != nil {
		return nil, err
	}
	root, err := f.attrs(rootRecord)
	if err != nil {
		return nil, err
	}
	if find(root, attrIndexRoot, "$I30") == nil {
		return nil, f.corrupt("the root directory (record 5) has no index")
	}
	return f, nil
}

// geometry reads the sizes of the boot sector's BIOS parameter block.
func (f *FS) geometry(b []byte, size int64) error {
	sector := int64(le16(b[0x0B:]))
	if sector < 256 || sector > 4096 || bits.OnesCount64(uint64(sector)) != 1 {
		return f.corrupt("boot sector: %d bytes per sector", sector)
	}
	spc := int64(b[0x0D])
	if spc > 0x80 {
		if 256-spc > 20 {
			return f.corrupt("boot sector: sectors per cluster 2^%d", 256-spc)
		}
		spc = 1 << (256 - spc)
	}
	f.clusterSize = sector * spc
	if spc == 0 || f.clusterSize > maxClusterSize {
		return f.corrupt("boot sector: cluster of %d sectors of %d bytes", spc, sector)
	}
	total := le64(b[0x28:])
	if total > uint64(size/sector) {
		return f.corrupt("boot sector: %d sectors in an image of %d bytes", total, size)
	}
	f.clusters = int64(total / uint64(spc))
	var err error
	if f.recordSize, err = f.recordBytes(int8(b[0x40]), "MFT record"); err != nil {
		return err
	}
	f.indexSize, err = f.recordBytes(int8(b[0x44]), "index record")
	return err
}

// recordBytes decodes a record size of the boot sector: clusters when
// positive, 2^-v bytes when negative.
func (f *FS) recordBytes(v int8, what string) (int64, error) {
	var n int64
	switch {
	case v > 0:
		n = int64(v) * f.clusterSize
	case v < 0 && v > -31:
		n = 1 << -v
	}
	if n < fixupStride || n > maxRecordSize || n%fixupStride != 0 {
		return 0, f.corrupt("boot sector: %s size %d", what, v)
	}
	return n, nil
}

// bootstrapMFT reads record 0, the $MFT, at cluster lcn, and makes the
// stream of its $DATA through which every other record is read. An
// $MFT whose runs continue in extension records (an $ATTRIBUTE_LIST) is
// read in two steps: through its first extent, then through all.
func (f *FS) bootstrapMFT(lcn uint64) error {
	if lcn >= uint64(f.clusters) {
		return f.corrupt("boot sector: $MFT at cluster %d of %d", lcn, f.clusters)
	}
	buf := make([]byte, f.recordSize)
	if err := f.readAt(buf, int64(lcn)*f.clusterSize, "$MFT record"); err != nil {
		return err
	}
	own, err := f.parseRecord(buf, 0)
	if err != nil {
		return err
	}
	data := find(own, attrData, "")
	if data == nil || data.resident {
		return f.corrupt("$MFT has no non-resident $DATA")
	}
	f.setMFT(data)
	all, err := f.attrs(0)
	if err != nil {
		return err
	}
	if data = find(all, attrData, ""); data == nil || data.resident {
		return f.corrupt("$MFT's attribute list has no non-resident $DATA")
	}
	f.setMFT(data)
	return nil
}

func (f *FS) setMFT(data *attr) {
	f.mft = f.newStream(data, "$MFT")
	f.records = f.mft.size / f.recordSize
	f.mu.Lock()
	clear(f.cache)
	f.mu.Unlock()
}

// readAt reads len(b) bytes at off of the volume.
func (f *FS) readAt(b []byte, off int64, what string) error {
	if off < 0 || off+int64(len(b)) > f.clusters*f.clusterSize {
		return f.corrupt("%s at byte %d lies outside the volume", what, off)
	}
	n, err := f.r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return image.FileErrorf(f.name, "ntfs: reading %s: %w", what, err)
}

func (f *FS) corrupt(format string, args ...any) error {
	return image.FileErrorf(f.name, "ntfs: %s: %w", fmt.Sprintf(format, args...), image.ErrCorrupt)
}

func (f *FS) unsupported(format string, args ...any) error {
	return image.FileErrorf(f.name, "ntfs: %s: %w", fmt.Sprintf(format, args...), image.ErrUnsupported)
}

func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }
func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
