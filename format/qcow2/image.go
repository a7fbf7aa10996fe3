package qcow2

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/qimg/qimg/format/luks"
	"github.com/qimg/qimg/image"
)

// OpenOptions tunes Open. The zero value opens read-only and follows
// backing files like QEMU.
type OpenOptions struct {
	// Writable opens the image for writing.
	Writable bool
	// Backing is the policy for backing and external data files.
	Backing image.BackingPolicy
	// OpenBacking opens the backing file, read-only: name is as stored in
	// the image and format is the backing format extension, possibly
	// empty. Package format supplies it, so that a backing file may be of
	// any format and chains are walked (and bounded) in one place. Without
	// it, an image that names a backing file opens only with IgnoreBacking.
	OpenBacking func(name, format string) (image.Image, error)
	// CacheBytes bounds the L2 table cache (default 32 MiB).
	CacheBytes int64
	// ForCheck opens the image only for Check, like qemu-img check: an
	// L1 or snapshot table that runs past the end of the file is accepted
	// (the missing bytes read as zeros, as in QEMU) so that Check reports
	// it as qemu-img does. With Writable, for Check to repair: images
	// marked corrupt or dirty open too, nothing is repaired on open, and
	// guest writes are refused.
	ForCheck bool
	// MetadataOnly opens the image for its metadata alone, as qemu-img
	// info does (QEMU's BDRV_O_NO_IO): the external data file is not
	// opened, so a missing one does not stop Open, and guest reads fail.
	// It cannot be combined with Writable.
	MetadataOnly bool
	// Key is the password of an encrypted image: the data of the secret
	// qemu-img's encrypt.key-secret names. A LUKS image is unlocked with
	// it at open (a wrong key fails with luks.ErrWrongPassword and nothing
	// is written); a legacy AES image takes its first 16 bytes as the key.
	// Without it an encrypted image opens, but guest reads fail with
	// image.ErrEncrypted. Backing files never get it. It is never logged
	// or put in an error.
	Key []byte
}

// File is the storage an Image lives in; *os.File implements it.
type File interface {
	io.ReaderAt
	io.WriterAt
	Stat() (os.FileInfo, error)
	Truncate(size int64) error
	Sync() error
	Close() error
}

// Image is an open qcow2 image. It implements image.WritableImage. Reads
// may run concurrently; writes are serialised.
type Image struct {
	name     string
	file     io.ReaderAt
	wfile    File // nil when read-only
	closer   io.Closer
	fileSize int64
	hdr      *Header
	l1       []uint64

	backing  image.Image
	dataFile io.ReaderAt // external data file, or nil
	dataW    File

	l2cache *lru[int64, *l2Table]
	ccache  *lru[uint64, []byte] // decompressed clusters by L2 descriptor
	codec   *codec
	mu      sync.RWMutex
	alloc   *refcounts   // write state, nil when read-only
	readErr error        // set when guest data cannot be read (encryption)
	luks    *luks.Header // the LUKS header of a LUKS-encrypted image
	crypt   *crypt       // the key, once unlocked (crypt.go)
	meta    metadataSet  // metadata clusters, for the overlap check (overlap.go)
	closed  bool
	// noHostFiles is set by NewReader: the image is not a host file, so
	// names inside it must never be opened from the host file system.
	noHostFiles bool
	// preallocOnce computes prealloc: whether Extent asks the file system
	// for holes in data clusters (read.go, fileHoles).
	preallocOnce sync.Once
	prealloc     bool
	// staleOnce marks the persistent bitmaps stale before the first
	// change (write.go, staleBitmaps); staleErr is how that went.
	staleOnce sync.Once
	staleErr  error
}

var (
	_ image.WritableImage = (*Image)(nil)
	_ image.HostFiler     = (*Image)(nil)
)

// Open opens the qcow2 image at path.
func Open(path string, opts *OpenOptions) (*Image, error) {
	if opts == nil {
		opts = &OpenOptions{}
	}
	flag := os.O_RDONLY
	if opts.Writable {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, err
	}
	img, err := openFile(path, f, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	return img, nil
}

// NewReader opens a qcow2 image held by r, of the given size, read-only.
// Backing files are opened only through opts.OpenBacking; without it the
// image must have none (or opts.Backing must be image.IgnoreBacking).
func NewReader(r io.ReaderAt, size int64, name string, opts *OpenOptions) (*Image, error) {
	o := OpenOptions{}
	if opts != nil {
		o = *opts
	}
	o.Writable = false
	if size < 0 {
		return nil, image.FileErrorf(name, "negative image size %d: %w", size, image.ErrInvalidArgument)
	}
	img := &Image{name: name, file: r, fileSize: size, noHostFiles: true}
	if err := img.init(&o); err != nil {
		return nil, err
	}
	return img, nil
}

// OpenFile opens a qcow2 image in f; name is used for messages and to
// resolve relative backing names. The image takes ownership of f.
func OpenFile(f File, name string, opts *OpenOptions) (*Image, error) {
	if opts == nil {
		opts = &OpenOptions{}
	}
	return openFile(name, f, opts)
}

func openFile(name string, f File, opts *OpenOptions) (*Image, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, image.FileErrorf(name, "%w", err)
	}
	img := &Image{name: name, file: f, closer: f, fileSize: st.Size()}
	if opts.Writable {
		img.wfile = f
	}
	if err := img.init(opts); err != nil {
		return nil, err
	}
	return img, nil
}

// errorf formats an error that names the image.
func (img *Image) errorf(class error, format string, args ...any) error {
	return image.FileErrorf(img.name, "%s: %w", fmt.Sprintf(format, args...), class)
}

func (img *Image) init(opts *OpenOptions) error {
	if opts.MetadataOnly && opts.Writable {
		return img.errorf(image.ErrInvalidArgument, "an image opened for metadata only cannot be written")
	}
	first, err := img.readHeaderCluster()
	if err != nil {
		return err
	}
	h, err := ParseHeader(first)
	if err != nil {
		return image.FileErrorf(img.name, "%w", err)
	}
	img.hdr = h
	if err := img.checkLayout(opts.ForCheck); err != nil {
		return err
	}
	if h.CryptMethod != cryptNone {
		if err := img.openCrypt(opts); err != nil {
			return err
		}
	}
	if opts.Writable && !opts.ForCheck {
		if h.IncompatibleFeatures&IncompatCorrupt != 0 {
			return img.errorf(image.ErrCorrupt, "image is marked corrupt; repair it with 'qimg check -r all' first")
		}
		if img.readErr != nil {
			return img.readErr
		}
	}
	if err := img.loadL1(); err != nil {
		return err
	}
	cacheBytes := opts.CacheBytes
	if cacheBytes <= 0 {
		cacheBytes = 32 << 20
	}
	img.l2cache = newLRU[int64, *l2Table](int(max(4, cacheBytes/h.ClusterSize())))
	img.ccache = newLRU[uint64, []byte](16)
	img.codec = newCodec(h.CompressionType, h.ClusterSize())
	if err := img.openExternal(opts); err != nil {
		img.closeExternal()
		return err
	}
	if opts.Writable && !opts.ForCheck {
		if err := img.openForWrite(); err != nil {
			img.closeExternal()
			return err
		}
	}
	return nil
}

// readHeaderCluster reads the first cluster, where the header and its
// extensions live. It reads 64 KiB (the usual cluster size) first and the
// rest only for larger clusters: reading the largest possible cluster up
// front cost small commands like info milliseconds of copying and page
// faults.
func (img *Image) readHeaderCluster() ([]byte, error) {
	const usualClusterSize = 1 << 16
	read := func(n int64) ([]byte, error) {
		buf := make([]byte, min(img.fileSize, n))
		if _, err := img.file.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
			return nil, image.FileErrorf(img.name, "reading header: %w", err)
		}
		return buf, nil
	}
	first, err := read(usualClusterSize)
	if err != nil || len(first) < 24 {
		return first, err
	}
	clusterBits := binary.BigEndian.Uint32(first[20:])
	if clusterBits <= 16 || clusterBits > maxClusterBits || img.fileSize <= usualClusterSize {
		return first, nil
	}
	return read(1 << clusterBits)
}

// checkLayout validates the header's tables against the file before
// anything is allocated from them. For a check (forCheck), the L1 and
// snapshot tables may run past the end of the file: Check counts that as
// corruption, as qemu-img check does, instead of refusing the image.
func (img *Image) checkLayout(forCheck bool) error {
	h := img.hdr
	cs := h.ClusterSize()
	need := img.l1Needed()
	if uint64(h.L1Size) < uint64(need) {
		return img.errorf(image.ErrCorrupt, "L1 table has %d entries, %d needed for the virtual size %d", h.L1Size, need, h.Size)
	}
	if int64(h.L1Size)*8 > maxL1Bytes {
		return img.errorf(image.ErrLimit, "L1 table of %d entries exceeds QEMU's 32 MiB limit", h.L1Size)
	}
	if h.L1Size > 0 {
		if err := img.checkTable("L1 table", h.L1TableOffset, int64(h.L1Size)*8, forCheck); err != nil {
			return err
		}
	}
	if h.RefcountTableClusters == 0 {
		return img.errorf(image.ErrCorrupt, "refcount table is empty")
	}
	if int64(h.RefcountTableClusters)*cs > maxRefTableSize {
		return img.errorf(image.ErrLimit, "refcount table of %d clusters exceeds QEMU's 8 MiB limit", h.RefcountTableClusters)
	}
	if err := img.checkTable("refcount table", h.RefcountTableOffset, int64(h.RefcountTableClusters)*cs, false); err != nil {
		return err
	}
	if h.NbSnapshots > 0 {
		if h.NbSnapshots > maxSnapshots {
			return img.errorf(image.ErrLimit, "%d snapshots exceed the limit of %d", h.NbSnapshots, maxSnapshots)
		}
		if err := img.checkTable("snapshot table", h.SnapshotsOffset, int64(h.NbSnapshots)*snapshotMinEntry, forCheck); err != nil {
			return err
		}
	}
	if h.IncompatibleFeatures&IncompatDataFile == 0 && h.DataFile != "" {
		return img.errorf(image.ErrCorrupt, "data file name %q given but the external data file bit is clear", h.DataFile)
	}
	if h.IncompatibleFeatures&IncompatDataFile != 0 && h.BackingFile != "" && h.AutoclearFeatures&AutoclearDataFileRaw != 0 {
		return img.errorf(image.ErrCorrupt, "a raw external data file cannot have a backing file")
	}
	return nil
}

// checkTable checks that a metadata table is cluster aligned and, unless
// pastEnd allows otherwise, lies inside the file.
func (img *Image) checkTable(what string, off uint64, length int64, pastEnd bool) error {
	cs := img.hdr.ClusterSize()
	if off%uint64(cs) != 0 {
		return img.errorf(image.ErrCorrupt, "%s offset %#x is not cluster aligned", what, off)
	}
	if off == 0 {
		return img.errorf(image.ErrCorrupt, "%s overlaps the header at offset 0", what)
	}
	if end := uint64(img.hostEnd()); !pastEnd && (off > end || uint64(length) > end-off) {
		return img.errorf(image.ErrCorrupt, "%s at offset %#x (%d bytes) runs past the end of the file (%d bytes)", what, off, length, end)
	}
	return nil
}

// l1Needed is the number of L1 entries the virtual size requires.
func (img *Image) l1Needed() int64 {
	h := img.hdr
	perL2 := h.L2Entries() * h.ClusterSize()
	return int64((h.Size + uint64(perL2) - 1) / uint64(perL2))
}

func (img *Image) loadL1() error {
	h := img.hdr
	if h.L1Size == 0 {
		return nil
	}
	// The size is bounded (32 MiB) by checkLayout. Only an image opened
	// for a check may have its table past the end of the file, where it
	// reads as zeros, as in QEMU.
	buf := make([]byte, int64(h.L1Size)*8)
	if err := img.readAt(buf, h.L1TableOffset); err != nil {
		return img.errorf(image.ErrCorrupt, "reading L1 table: %v", err)
	}
	img.l1 = make([]uint64, h.L1Size)
	for i := range img.l1 {
		img.l1[i] = binary.BigEndian.Uint64(buf[i*8:])
	}
	return nil
}

// openExternal opens the backing file and the external data file.
func (img *Image) openExternal(opts *OpenOptions) error {
	h := img.hdr
	names := h.BackingFile != "" || h.DataFile != ""
	if names && opts.Backing == image.RefuseBacking {
		return img.errorf(image.ErrBackingRefused, "image names %s", img.externalNames())
	}
	if h.IncompatibleFeatures&IncompatDataFile != 0 {
		if h.DataFile == "" {
			return img.errorf(image.ErrCorrupt, "external data file bit set but no data file name")
		}
		if img.noHostFiles {
			return img.errorf(image.ErrBackingRefused, "image needs the external data file %q, which is not opened for an image read through NewReader", h.DataFile)
		}
		if opts.MetadataOnly {
			img.readErr = cmp.Or(img.readErr, img.errorf(image.ErrInvalidArgument, "opened for metadata only: the data file %q is not open", h.DataFile))
		} else if err := img.openDataFile(opts.Writable); err != nil {
			return err
		}
	}
	if h.BackingFile == "" || opts.Backing == image.IgnoreBacking {
		return nil
	}
	if opts.OpenBacking == nil {
		return img.errorf(image.ErrBackingRefused, "image names backing file %q and was opened without OpenBacking (open it with format.Open, which follows backing files of any format)", h.BackingFile)
	}
	backing, err := opts.OpenBacking(h.BackingFile, h.BackingFormat)
	if err != nil {
		return img.externalError(image.KindBackingFile, h.BackingFile, err)
	}
	if backing == nil {
		return img.errorf(image.ErrInvalidArgument, "OpenBacking returned no image for backing file %q", h.BackingFile)
	}
	img.backing = backing
	return nil
}

func (img *Image) externalNames() string {
	h := img.hdr
	switch {
	case h.BackingFile != "" && h.DataFile != "":
		return fmt.Sprintf("backing file %q and data file %q", h.BackingFile, h.DataFile)
	case h.BackingFile != "":
		return fmt.Sprintf("backing file %q", h.BackingFile)
	}
	return fmt.Sprintf("data file %q", h.DataFile)
}

// externalError says that the file the image names as name could not be
// opened, keeping the image's name and the file's apart for callers that
// report them separately.
func (img *Image) externalError(kind image.ExternalKind, name string, err error) error {
	path := name
	if !img.noHostFiles {
		path = img.resolve(name)
	}
	return &image.ExternalError{Image: img.name, Kind: kind, Name: name, Path: path, Err: err}
}

// resolve interprets a name stored in the image relative to the image's
// directory, as QEMU does.
func (img *Image) resolve(name string) string { return image.ResolveName(img.name, name) }

func (img *Image) openDataFile(writable bool) error {
	flag := os.O_RDONLY
	if writable {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(img.resolve(img.hdr.DataFile), flag, 0)
	if err != nil {
		return img.externalError(image.KindDataFile, img.hdr.DataFile, err)
	}
	img.dataFile = f
	if writable {
		img.dataW = f
	}
	return nil
}

// Header returns a copy of the decoded header.
func (img *Image) Header() Header { return *img.hdr }

// Name is the file name the image was opened with.
func (img *Image) Name() string { return img.name }

// Size is the virtual size in bytes. QEMU's block layer counts whole
// 512-byte sectors, so a header size that is not a multiple of 512 is
// rounded down, as qemu-img info, map and convert show it; the bytes past
// that are never read.
func (img *Image) Size() int64 { return int64(img.hdr.Size &^ 511) }

// hostEnd bounds valid host offsets: the file size at open, or for a
// writer the end of everything allocated since.
func (img *Image) hostEnd() int64 {
	if img.alloc != nil {
		return max(img.fileSize, img.alloc.end*img.hdr.ClusterSize())
	}
	return img.fileSize
}

// Backing returns the opened backing image, or nil.
func (img *Image) Backing() image.Image { return img.backing }

// ReadError is the error every guest read of this image fails with, or
// nil: an encrypted image (image.ErrEncrypted) or one opened MetadataOnly
// cannot be read at all. Reads of unallocated or zero ranges never reach
// the check in ReadAt, so callers that must not turn such an image into
// zeros (conversion, comparison) ask here first.
func (img *Image) ReadError() error { return img.readErr }

// Close flushes pending metadata and closes the image and its chain.
func (img *Image) Close() error {
	img.mu.Lock()
	defer img.mu.Unlock()
	if img.closed {
		return nil
	}
	img.closed = true
	var errs []error
	if img.alloc != nil {
		errs = append(errs, img.closeWrite())
	}
	errs = append(errs, img.closeExternal())
	if img.closer != nil {
		errs = append(errs, img.closer.Close())
	}
	return errors.Join(errs...)
}

func (img *Image) closeExternal() error {
	var errs []error
	if img.backing != nil {
		errs = append(errs, img.backing.Close())
	}
	if c, ok := img.dataFile.(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// EncryptionName is how qemu-img names the encryption method.
func (h *Header) EncryptionName() string {
	switch h.CryptMethod {
	case CryptAES:
		return "aes"
	case CryptLUKS:
		return "luks"
	}
	return "none"
}
