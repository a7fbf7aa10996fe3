package qcow2

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"os"

	"golang.org/x/sys/unix"

	"github.com/qimg/qimg/format/raw"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/atomicfile"
)

// Preallocation modes, as qemu-img's -o preallocation.
const (
	PreallocOff      = "off"
	PreallocMetadata = "metadata"
	PreallocFalloc   = "falloc"
	PreallocFull     = "full"
)

// CreateOptions are qemu-img's qcow2 creation options. The zero value
// (with a Size) makes what `qemu-img create -f qcow2` makes.
type CreateOptions struct {
	Size            int64  // virtual size; 0 with a backing file takes its size
	Compat          string // "1.1" (default) or "0.10"
	ClusterSize     int64  // default 65536
	RefcountBits    int    // default 16
	LazyRefcounts   bool
	CompressionType string // "zlib" (default) or "zstd"
	ExtendedL2      bool
	Preallocation   string // off (default), metadata, falloc, full
	BackingFile     string // stored verbatim
	BackingFormat   string
	DataFile        string // external data file, created beside the image
	DataFileRaw     bool
	// Unsafe stores the backing name without opening the backing file
	// (qemu-img create -u); the size must then be given.
	Unsafe bool
	// OpenBacking opens the backing file (to take its size and read
	// through it); name and format are BackingFile and BackingFormat.
	// format.BackingOpener makes one for any format. Needed unless Unsafe.
	OpenBacking func(name, format string) (image.Image, error)
	// Encrypt, when set, makes an encrypted image (-o encrypt.format=...).
	Encrypt *Encryption
}

// header validates the options and builds the header of a new image of
// size 0; the real size is set by growing it, which shares the code of
// Resize.
func (o *CreateOptions) header() (*Header, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Size < 0 || uint64(o.Size) > maxVirtualSize {
		return nil, fmt.Errorf("image size %d is out of range: %w", o.Size, image.ErrInvalidArgument)
	}
	h := &Header{Version: 3, ClusterBits: 16, RefcountOrder: 4, HeaderLength: 112}
	if o.Compat == "0.10" || o.Compat == "v2" {
		h.Version, h.HeaderLength = 2, headerV2Length
	}
	h.ClusterBits = uint32(bits.TrailingZeros64(uint64(o.EffectiveClusterSize())))
	if o.RefcountBits != 0 {
		h.RefcountOrder = uint32(bits.TrailingZeros(uint(o.RefcountBits)))
	}
	if o.LazyRefcounts {
		h.CompatibleFeatures |= CompatLazyRefcounts
	}
	if o.CompressionType == "zstd" {
		h.CompressionType = CompressionZstd
		h.IncompatibleFeatures |= IncompatCompressionType
	}
	if o.ExtendedL2 {
		h.IncompatibleFeatures |= IncompatExtendedL2
	}
	if o.DataFile != "" {
		h.IncompatibleFeatures |= IncompatDataFile
		h.DataFile = o.DataFile
		if o.DataFileRaw {
			h.AutoclearFeatures |= AutoclearDataFileRaw
		}
	}
	h.BackingFile, h.BackingFormat = o.BackingFile, o.BackingFormat
	if h.Version >= 3 {
		h.FeatureNames = defaultFeatureNames()
	}
	return h, nil
}

// Create makes a new qcow2 image at path. It writes a temporary file beside
// path and renames it into place, so an interrupted Create leaves either
// the old file or a complete new image.
func Create(path string, opts CreateOptions) error {
	return atomicfile.Write(path, true, func(f *os.File) error {
		img, err := CreateFile(f, path, opts)
		if err != nil {
			return err
		}
		if err := img.Flush(); err != nil {
			img.Close()
			return err
		}
		return img.Close()
	})
}

// CreateFile writes a new image into the empty file f and returns it open
// for writing; the image owns f. name is the image's final path: relative
// backing and data file names resolve against its directory, and an
// external data file is created there.
func CreateFile(f File, name string, opts CreateOptions) (*Image, error) {
	h, err := opts.header()
	if err != nil {
		return nil, image.FileErrorf(name, "%w", err)
	}
	size := (opts.Size + 511) &^ 511 // qemu-img rounds up to whole sectors
	var backing image.Image
	if opts.BackingFile != "" && !opts.Unsafe {
		if opts.OpenBacking == nil {
			return nil, image.FileErrorf(name, "backing file %q given without OpenBacking to open it: %w", opts.BackingFile, image.ErrInvalidArgument)
		}
		if backing, err = opts.OpenBacking(opts.BackingFile, opts.BackingFormat); err != nil {
			return nil, image.FileErrorf(name, "opening backing file %q: %w", opts.BackingFile, err)
		}
		if size == 0 {
			size = backing.Size()
		}
	}
	img, err := createEmpty(name, f, h, opts, size)
	if err != nil {
		if backing != nil {
			backing.Close()
		}
		return nil, err
	}
	prealloc := opts.Preallocation
	if opts.DataFileRaw && (prealloc == "" || prealloc == PreallocOff) {
		prealloc = PreallocMetadata // a raw data file needs every cluster mapped
	}
	err = img.grow(size)
	if err == nil && opts.Encrypt != nil {
		err = img.encrypt(opts.Encrypt)
	}
	if err == nil && prealloc != "" && prealloc != PreallocOff {
		err = img.preallocate(prealloc)
	}
	if err == nil {
		err = img.alloc.flush()
	}
	// The backing file is attached only now: growing from size 0 with it
	// attached would zero the whole disk over the backing data.
	img.backing = backing
	if err != nil {
		img.Close()
		return nil, err
	}
	return img, nil
}

// createEmpty writes the size-0 skeleton (and the data file) and opens it.
func createEmpty(name string, f File, h *Header, opts CreateOptions, size int64) (*Image, error) {
	if err := writeEmpty(f, h); err != nil {
		return nil, image.FileErrorf(name, "%w", err)
	}
	if opts.DataFile != "" {
		if err := raw.Create(image.ResolveName(name, opts.DataFile), size); err != nil {
			return nil, err
		}
	}
	return OpenFile(f, name, &OpenOptions{Writable: true, Backing: image.IgnoreBacking})
}

// writeEmpty writes an image of virtual size 0: the header cluster, a
// one-cluster refcount table and one refcount block counting those three
// clusters. Everything else is added by the ordinary write paths.
func writeEmpty(f File, h *Header) error {
	cs := h.ClusterSize()
	h.RefcountTableOffset = uint64(cs)
	h.RefcountTableClusters = 1
	hdr, err := h.Encode()
	if err != nil {
		return err
	}
	buf := make([]byte, 3*cs)
	copy(buf, hdr)
	binary.BigEndian.PutUint64(buf[cs:], uint64(2*cs))
	block := &refblock{data: buf[2*cs:]}
	rbits := uint(h.RefcountBits())
	for c := int64(0); c < 3; c++ {
		block.setEntry(c, rbits, 1)
	}
	if _, err := f.WriteAt(buf, 0); err != nil {
		return err
	}
	return nil
}

// preallocate maps every cluster of the virtual disk: metadata allocates
// L2 tables and data clusters, falloc also reserves the space, full writes
// zeros.
func (img *Image) preallocate(mode string) error {
	img.mu.Lock()
	defer img.mu.Unlock()
	h := img.hdr
	cs := h.ClusterSize()
	size := img.Size()
	raw := h.IncompatibleFeatures&IncompatDataFile != 0
	for off := int64(0); off < size; {
		n := img.l2Span(off, size-off)
		l1Index := (off >> h.ClusterBits) / h.L2Entries()
		t, fresh, err := img.l2ForWrite(l1Index)
		if err != nil {
			return err
		}
		clusters := (n + cs - 1) / cs
		first := off / cs // external data: host == guest
		if !raw {
			if first, err = img.allocClusters(clusters); err != nil {
				return err
			}
		}
		if err := img.alloc.flush(); err != nil {
			return err
		}
		if err := img.reserve(mode, first*cs, clusters*cs); err != nil {
			return err
		}
		per := h.L2EntrySize() / 8
		lo := (off >> h.ClusterBits) % h.L2Entries()
		for i := range clusters {
			t.entries[(lo+i)*per] = uint64((first+i)*cs) | flagCopied
			if h.ExtendedL2() {
				t.entries[(lo+i)*per+1] = 0xffffffff
			}
		}
		if err := img.commitL2(t, fresh, l1Index, lo, lo+clusters); err != nil {
			return err
		}
		off += n
	}
	if err := img.alloc.flush(); err != nil {
		return err
	}
	// Clusters past the last write must still exist in the file.
	if end := img.alloc.end * cs; img.fileSizeNow() < end {
		return img.wfile.Truncate(end)
	}
	return nil
}

// reserve backs preallocated data clusters with disk space (falloc) or
// written zeros (full); metadata preallocation leaves them as holes.
func (img *Image) reserve(mode string, host, n int64) error {
	f := img.dataWriter()
	switch mode {
	case PreallocFalloc:
		if osf, ok := f.(*os.File); ok {
			if err := unix.Fallocate(int(osf.Fd()), 0, host, n); err == nil {
				return nil
			}
		}
		return writeZeros(f, host, n)
	case PreallocFull:
		return writeZeros(f, host, n)
	}
	return nil
}

// fileSizeNow is the current size of the qcow2 file.
func (img *Image) fileSizeNow() int64 {
	if st, err := img.wfile.Stat(); err == nil {
		return st.Size()
	}
	return 0
}

func writeZeros(f File, off, n int64) error {
	zeros := make([]byte, min(n, 1<<20))
	for done := int64(0); done < n; {
		k := min(int64(len(zeros)), n-done)
		if _, err := f.WriteAt(zeros[:k], off+done); err != nil {
			return err
		}
		done += k
	}
	return nil
}
