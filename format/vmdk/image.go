package vmdk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/qimg/qimg/image"
)

// Options says how Open opens an image. The zero value is the safe
// default for images from anywhere.
type Options struct {
	// AllowAnyPath lets a descriptor name extent files by absolute path,
	// outside its own directory (through ".." or a symbolic link), or
	// files that are not regular files (devices, pipes). Set it only for
	// images you created or trust: a descriptor chooses which host files
	// are read and returned as guest data.
	AllowAnyPath bool
	// MaxExtents bounds the extents a descriptor may name; 0 means
	// DefaultMaxExtents.
	MaxExtents int
}

// Image is an open VMDK, read-only. It implements image.Image; ReadAt and
// Extent may be called from many goroutines at once.
type Image struct {
	name      string
	size      int64
	subformat string
	info      Info
	parts     []part
	files     []*os.File
	c         *caches
	closeOnce sync.Once
	closeErr  error
}

// part places an extent in the virtual disk.
type part struct {
	start, length int64
	ext           extent
}

var _ image.Image = (*Image)(nil)

// Info is what qemu-img info shows of a VMDK.
type Info struct {
	CreateType string
	CID        uint32
	ParentCID  uint32
	Extents    []ExtentInfo
}

// ExtentInfo describes one extent, as qemu-img info lists them.
type ExtentInfo struct {
	Filename    string
	Type        string // SPARSE, FLAT or ZERO; empty for a monolithic sparse file
	VirtualSize int64
	Compressed  bool
	ClusterSize int64 // grain size in bytes; 0 for flat extents
}

// Open opens the VMDK at path: a sparse extent (monolithicSparse,
// streamOptimized) or a text descriptor naming its extent files, with
// options o (nil for the defaults).
func Open(path string, o *Options) (*Image, error) {
	if o == nil {
		o = &Options{}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	img := &Image{name: path}
	img.files = append(img.files, f)
	if err := img.open(f, o); err != nil {
		img.Close()
		return nil, err
	}
	return img, nil
}

func (img *Image) open(f *os.File, o *Options) error {
	st, err := f.Stat()
	if err != nil {
		return image.FileErrorf(img.name, "%w", err)
	}
	size := st.Size()
	head := make([]byte, min(size, sectorSize))
	if err := readAtZero(f, head, 0, size, img.name); err != nil {
		return err
	}
	if len(head) >= 4 && (string(head[:4]) == magicSparse || string(head[:4]) == magicCOWD) {
		img.c = newCaches()
		e, err := openSparse(f, size, img.name, 0, img.c)
		if err != nil {
			return err
		}
		d, err := embeddedDescriptor(e, o)
		if err != nil {
			return err
		}
		if namesOtherFiles(e, d) {
			// QEMU: a sparse header of capacity 0 whose embedded
			// descriptor names extents is a descriptor file.
			img.parts = nil
			return img.openDescriptor(d, o)
		}
		img.addSparse(e, "")
		img.setInfo(d, e.compressed)
		return nil
	}
	if size > maxDescriptor {
		if Detect(head) {
			return image.FileErrorf(img.name, "descriptor of %d bytes (at most %d): %w", size, maxDescriptor, image.ErrLimit)
		}
		return image.FileErrorf(img.name, "neither a sparse extent nor a descriptor (%d bytes): %w", size, image.ErrWrongFormat)
	}
	text := make([]byte, size)
	if err := readAtZero(f, text, 0, size, img.name); err != nil {
		return err
	}
	d, err := parseDescriptor(text, img.name, o.MaxExtents)
	if err != nil {
		return err
	}
	if d.CreateType == "" {
		if !Detect(text) {
			return image.FileErrorf(img.name, "not a VMDK: %w", image.ErrWrongFormat)
		}
		return image.FileErrorf(img.name, "invalid VMDK image descriptor: no createType: %w", image.ErrCorrupt)
	}
	return img.openDescriptor(d, o)
}

// NewReader reads a VMDK held in r, size bytes long, that is a single
// sparse or streamOptimized extent (with no other files: a download, a
// file inside an OVA). name is used in error messages. NewReader never
// opens host files; a descriptor naming extent files is refused. The
// image does not close r.
func NewReader(r io.ReaderAt, size int64, name string) (*Image, error) {
	img := &Image{name: name, c: newCaches()}
	e, err := openSparse(r, size, name, 0, img.c)
	if err != nil {
		if errors.Is(err, image.ErrWrongFormat) {
			head := make([]byte, min(max(size, 0), 4096))
			if readAtZero(r, head, 0, size, name) == nil && Detect(head) {
				return nil, image.FileErrorf(name, "a VMDK descriptor names other files; open it by path: %w", image.ErrUnsupported)
			}
		}
		return nil, err
	}
	d, err := embeddedDescriptor(e, &Options{})
	if err != nil {
		return nil, err
	}
	if namesOtherFiles(e, d) {
		return nil, image.FileErrorf(name, "the embedded descriptor names other files; open it by path: %w", image.ErrUnsupported)
	}
	img.addSparse(e, "")
	img.setInfo(d, e.compressed)
	return img, nil
}

// embeddedDescriptor reads the descriptor inside a sparse extent, if it
// has one, and refuses delta disks. Its extent lines are not used (the
// extent is the file itself), so only their syntax is checked loosely.
func embeddedDescriptor(e *sparseExtent, o *Options) (*descriptor, error) {
	h := e.h
	if h.DescriptorOffset == 0 || h.DescriptorSize == 0 {
		return nil, nil
	}
	if h.DescriptorOffset > uint64(e.fileSize)/sectorSize {
		return nil, image.FileErrorf(e.name, "embedded descriptor past end of file: %w", image.ErrCorrupt)
	}
	off := int64(h.DescriptorOffset) * sectorSize
	n := min(int64(min(h.DescriptorSize, maxDescriptor/sectorSize))*sectorSize, e.fileSize-off)
	text := make([]byte, n)
	if err := readAtZero(e.r, text, off, e.fileSize, e.name); err != nil {
		return nil, err
	}
	d, err := parseDescriptor(text, e.name, o.MaxExtents)
	if err != nil {
		if h.Capacity == 0 {
			return nil, err // the descriptor is all there is
		}
		// The data does not depend on the embedded descriptor: read the
		// keys alone, as QEMU does.
		if d, err = parseDescriptor(keysOnly(text), e.name, o.MaxExtents); err != nil {
			d = &descriptor{}
		}
	}
	if d.HasParent {
		return nil, image.FileErrorf(e.name, "delta disk (parentFileNameHint %q): VMDK parent links are not supported: %w", clip(d.ParentHint), image.ErrUnsupported)
	}
	return d, nil
}

// namesOtherFiles reports whether a sparse file is really a descriptor
// naming extents elsewhere: its capacity is 0 and its descriptor has
// extent lines. An empty monolithicSparse or streamOptimized disk looks
// the same (QEMU 7.2 cannot open its own zero-sized VMDKs for this
// reason); its create type tells it apart, and it opens as an empty disk.
func namesOtherFiles(e *sparseExtent, d *descriptor) bool {
	return e.h.Capacity == 0 && d != nil && len(d.Extents) > 0 &&
		d.CreateType != "monolithicSparse" && d.CreateType != "streamOptimized"
}

// keysOnly drops a descriptor's extent lines.
func keysOnly(text []byte) []byte {
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text = text[:i] // where parseDescriptor stops, so lines match
	}
	var out []string
	for _, l := range strings.Split(string(text), "\n") {
		if a, _ := cutField(strings.TrimSpace(l)); !isAccess(a) {
			out = append(out, l)
		}
	}
	return []byte(strings.Join(out, "\n"))
}

func (img *Image) addSparse(e *sparseExtent, typ string) {
	if c := e.capacity(); c > 0 {
		img.parts = append(img.parts, part{start: img.size, length: c, ext: e})
		img.size += c
	}
	img.info.Extents = append(img.info.Extents, ExtentInfo{Filename: e.name, Type: typ,
		VirtualSize: e.capacity(), Compressed: e.compressed, ClusterSize: e.grainBytes})
}

// setInfo fills the create type and CIDs. For a sparse file QEMU names
// the create type from the compression, not from the descriptor.
func (img *Image) setInfo(d *descriptor, compressed bool) {
	img.subformat = "monolithicSparse"
	if compressed {
		img.subformat = "streamOptimized"
	}
	img.info.CreateType = img.subformat
	if d != nil {
		img.info.CID, img.info.ParentCID = parseCID(d.CID), parseCID(d.ParentCID)
	}
}

func parseCID(s string) uint32 {
	var v uint32
	fmt.Sscanf(s, "%x", &v)
	return v
}

// openDescriptor opens the extents a descriptor names.
func (img *Image) openDescriptor(d *descriptor, o *Options) error {
	if d.HasParent {
		return image.FileErrorf(img.name, "delta disk (parentFileNameHint %q): VMDK parent links are not supported: %w", clip(d.ParentHint), image.ErrUnsupported)
	}
	if d.CreateType == "" {
		return image.FileErrorf(img.name, "invalid VMDK image descriptor: no createType: %w", image.ErrCorrupt)
	}
	if !supportedCreateType(d.CreateType) {
		return image.FileErrorf(img.name, "unsupported VMDK create type %q: %w", clip(d.CreateType), image.ErrUnsupported)
	}
	if len(d.Extents) == 0 {
		return image.FileErrorf(img.name, "descriptor names no extents: %w", image.ErrCorrupt)
	}
	img.subformat = d.CreateType
	img.info = Info{CreateType: d.CreateType, CID: parseCID(d.CID), ParentCID: parseCID(d.ParentCID)}
	if img.c == nil {
		img.c = newCaches()
	}
	dir := filepath.Dir(img.name)
	for i, de := range d.Extents {
		length := de.Sectors * sectorSize
		if de.Kind == kindZero {
			img.addPart(length, zeroExtent{})
			img.info.Extents = append(img.info.Extents, ExtentInfo{Type: kindZero, VirtualSize: length})
			continue
		}
		p, err := resolveExtent(dir, de.File, o)
		if err != nil {
			return image.FileErrorf(img.name, "extent %d: %w", i, err)
		}
		f, err := os.Open(p)
		if err != nil {
			return image.FileErrorf(img.name, "extent %d: %w: %w", i, err, image.ErrCorrupt)
		}
		img.files = append(img.files, f)
		st, err := f.Stat()
		if err != nil {
			return image.FileErrorf(p, "%w", err)
		}
		switch de.Kind {
		case kindFlat:
			img.addPart(length, &flatExtent{r: f, f: f, name: p, fileSize: st.Size(), offset: de.Offset * sectorSize})
			img.info.Extents = append(img.info.Extents, ExtentInfo{Filename: p, Type: kindFlat, VirtualSize: length})
		case kindSparse:
			e, err := openSparse(f, st.Size(), p, len(img.parts), img.c)
			if err != nil {
				return err
			}
			if e.h.Capacity == 0 && e.h.DescriptorOffset != 0 {
				return image.FileErrorf(img.name, "extent %d is itself a descriptor: %w", i, image.ErrUnsupported)
			}
			// QEMU sizes a sparse extent by its own header, not by the
			// descriptor's line.
			if img.size+e.capacity() > maxSectors*sectorSize {
				return image.FileErrorf(img.name, "extents add up to more than %d bytes: %w", int64(maxSectors*sectorSize), image.ErrLimit)
			}
			img.addSparse(e, kindSparse)
		}
	}
	if img.size == 0 {
		return image.FileErrorf(img.name, "descriptor extents have no size: %w", image.ErrCorrupt)
	}
	return nil
}

func (img *Image) addPart(length int64, e extent) {
	img.parts = append(img.parts, part{start: img.size, length: length, ext: e})
	img.size += length
}

// resolveExtent turns an extent file name from a descriptor into a path.
// Names are relative to the descriptor's directory. Unless o allows any
// path, absolute names, names that leave the directory (through ".." or a
// symbolic link) and files that are not regular files are refused with
// image.ErrBackingRefused: an image from elsewhere must not make qimg read
// /etc/shadow or a block device and return it as guest data.
func resolveExtent(dir, name string, o *Options) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("extent file name with a NUL byte: %w", image.ErrCorrupt)
	}
	if o.AllowAnyPath {
		if filepath.IsAbs(name) {
			return name, nil
		}
		return filepath.Join(dir, name), nil
	}
	if filepath.IsAbs(name) {
		return "", fmt.Errorf("extent file %q is an absolute path (allow with Options.AllowAnyPath): %w", clip(name), image.ErrBackingRefused)
	}
	clean := filepath.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("extent file %q is outside the descriptor's directory (allow with Options.AllowAnyPath): %w", clip(name), image.ErrBackingRefused)
	}
	full := filepath.Join(dir, clean)
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		return "", fmt.Errorf("extent file %q: %w: %w", clip(name), err, image.ErrCorrupt)
	}
	if rel, err := filepath.Rel(realDir, real); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("extent file %q links outside the descriptor's directory (allow with Options.AllowAnyPath): %w", clip(name), image.ErrBackingRefused)
	}
	st, err := os.Stat(real)
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("extent file %q is not a regular file (allow with Options.AllowAnyPath): %w", clip(name), image.ErrBackingRefused)
	}
	return real, nil
}

// Size is the virtual size in bytes.
func (img *Image) Size() int64 { return img.size }

// Subformat is the create type: monolithicSparse, streamOptimized,
// monolithicFlat, twoGbMaxExtentSparse, twoGbMaxExtentFlat, vmfs or custom.
func (img *Image) Subformat() string { return img.subformat }

// Info returns the create type, CIDs and extents, as qemu-img info shows
// them.
func (img *Image) Info() Info {
	i := img.info
	i.Extents = append([]ExtentInfo(nil), i.Extents...)
	return i
}

// find returns the index of the part holding off (0 <= off < size).
func (img *Image) find(off int64) int {
	return sort.Search(len(img.parts), func(i int) bool { return img.parts[i].start+img.parts[i].length > off })
}

// ReadAt reads guest bytes. Past Size it returns io.EOF.
func (img *Image) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, image.FileErrorf(img.name, "read at negative offset %d: %w", off, image.ErrInvalidArgument)
	}
	if off >= img.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), img.size-off))
	buf := p[:n]
	for i := img.find(off); len(buf) > 0; i++ {
		pt := img.parts[i]
		k := min(int64(len(buf)), pt.start+pt.length-off)
		if err := pt.ext.readAt(buf[:k], off-pt.start); err != nil {
			return 0, err
		}
		buf = buf[k:]
		off += k
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Extent reports the run of bytes from start that share one status:
// unallocated grains are holes (not Data, Zero), zeroed grains are
// allocated zeros, stored grains are Data (and Compressed in a
// streamOptimized extent), flat extents are Data with Zero over the
// holes of their file. A run never crosses an extent boundary.
func (img *Image) Extent(start, length int64) (image.Extent, error) {
	if start < 0 || length <= 0 || start >= img.size {
		return image.Extent{}, image.FileErrorf(img.name, "extent [%d,+%d) outside the image: %w", start, length, image.ErrInvalidArgument)
	}
	pt := img.parts[img.find(start)]
	length = min(length, pt.start+pt.length-start)
	e, err := pt.ext.status(start-pt.start, length)
	if err != nil {
		return image.Extent{}, err
	}
	e.Start += pt.start
	return e, nil
}

// Close closes the files the image opened. It is safe to call twice.
func (img *Image) Close() error {
	img.closeOnce.Do(func() {
		var errs []error
		for _, f := range img.files {
			errs = append(errs, f.Close())
		}
		img.closeErr = errors.Join(errs...)
	})
	return img.closeErr
}
