package qcow2

import (
	"context"
	"errors"
	"math/bits"

	"github.com/qimg/qimg/image"
)

// Amend changes an existing image's options as `qemu-img amend` does, in
// QEMU 7.2's order: upgrade to version 3 first (later steps may need it),
// then the refcount width, lazy refcounts, the virtual size, and the
// downgrade to version 2 last (after the features version 2 lacks are
// gone). Unlike QEMU, which refuses a downgrade only when it reaches it,
// qimg checks every refusal before it changes anything, so a refused
// amend leaves the image as it was.
//
// Each step is crash-safe on its own: a step that moves metadata on a
// version 3 image runs under the dirty bit and ends with a refcount
// repair (as the snapshot operations do, snapshot_write.go), and the
// version changes are one write of the header cluster. An amend killed
// between steps leaves the steps before it done.

// ErrAmendBacking is wrapped by the error for a backing_file or
// backing_fmt that differs from the image's: QEMU points to rebase.
var ErrAmendBacking = errors.New("Cannot amend the backing file")

// AmendOptions are the options `qemu-img amend -o` takes for qcow2. A nil
// pointer or a zero value leaves the setting as it is.
type AmendOptions struct {
	Compat        string // "0.10" or "v2", "1.1" or "v3"
	RefcountBits  int
	LazyRefcounts *bool
	Size          uint64 // 0: unchanged, as in QEMU
	BackingFile   *string
	BackingFormat *string
	DataFile      *string
	DataFileRaw   *bool
	// Encrypt is set when any encrypt.* option was given.
	Encrypt bool
}

// amendPlan is what an amend will do, decided before anything changes.
type amendPlan struct {
	version      uint32
	refcountBits int
	lazy         bool
	size         uint64
	dataFile     *string
	dataFileRaw  bool
}

// amendError is an error whose text is qemu-img's message alone.
func (img *Image) amendError(class error, format string, args ...any) error {
	return image.FileErrorf(img.name, "%w", image.Errorf(class, format, args...))
}

// Amend applies o; see the comment at the top of amend.go. It needs an
// image opened for writing.
func (img *Image) Amend(ctx context.Context, o AmendOptions) error {
	if img.wfile == nil {
		return img.errorf(image.ErrReadOnly, "amend needs an image opened for writing")
	}
	if err := img.Flush(); err != nil {
		return err
	}
	p, err := img.planAmend(ctx, o)
	if err != nil {
		return err
	}
	version, width, size := img.hdr.Version, img.hdr.RefcountBits(), img.hdr.Size
	if p.version > version {
		if err := img.upgrade(); err != nil {
			return err
		}
	}
	if p.refcountBits != width {
		if err := img.changeRefcountWidth(ctx, p.refcountBits); err != nil {
			return err
		}
	}
	if err := img.amendFeatureBits(p); err != nil {
		return err
	}
	if p.size != 0 && p.size != size {
		if err := img.amendSize(ctx, int64(p.size)); err != nil {
			return err
		}
	}
	if p.version < version {
		return img.downgrade(ctx)
	}
	return nil
}

// planAmend checks o against the image with qemu-img's messages, in the
// order QEMU meets them.
func (img *Image) planAmend(ctx context.Context, o AmendOptions) (*amendPlan, error) {
	h := img.hdr
	p := &amendPlan{
		version:      h.Version,
		refcountBits: h.RefcountBits(),
		lazy:         h.CompatibleFeatures&CompatLazyRefcounts != 0,
		size:         o.Size,
		dataFile:     o.DataFile,
		dataFileRaw:  h.AutoclearFeatures&AutoclearDataFileRaw != 0,
	}
	hasDataFile := h.IncompatibleFeatures&IncompatDataFile != 0
	switch o.Compat {
	case "":
	case "0.10", "v2":
		p.version = 2
	case "1.1", "v3":
		p.version = 3
	default:
		return nil, img.amendError(image.ErrInvalidArgument, "Unknown compatibility level %s", o.Compat)
	}
	if o.DataFile != nil && !hasDataFile {
		return nil, img.amendError(image.ErrInvalidArgument, "data-file can only be set for images that use an external data file")
	}
	if o.DataFileRaw != nil {
		if *o.DataFileRaw && !p.dataFileRaw {
			return nil, img.amendError(image.ErrInvalidArgument, "data-file-raw cannot be set on existing images")
		}
		p.dataFileRaw = *o.DataFileRaw
	}
	if o.LazyRefcounts != nil {
		p.lazy = *o.LazyRefcounts
	}
	if rb := o.RefcountBits; rb != 0 {
		if rb < 0 || rb > 64 || bits.OnesCount(uint(rb)) != 1 {
			return nil, img.amendError(image.ErrInvalidArgument, "Refcount width must be a power of two and may not exceed 64 bits")
		}
		p.refcountBits = rb
	}
	if o.Encrypt {
		switch h.CryptMethod {
		case cryptNone:
			return nil, img.amendError(image.ErrInvalidArgument, "Can't amend encryption options - encryption not present")
		case CryptAES:
			return nil, img.amendError(image.ErrUnsupported, "Only LUKS encryption options can be amended")
		}
		return nil, img.amendError(image.ErrUnsupported, "qimg does not change LUKS key slots (the encrypt.* options of amend)")
	}
	if p.refcountBits != h.RefcountBits() && p.version < 3 && p.refcountBits != 16 {
		return nil, img.amendError(image.ErrInvalidArgument, "Refcount widths other than 16 bits require compatibility level 1.1 or above (use compat=1.1 or greater)")
	}
	if p.version == 2 && h.Version == 2 && h.RefcountBits() != 16 {
		return nil, img.amendError(image.ErrCorrupt, "a version 2 image must have 16-bit refcounts")
	}
	if err := img.checkBackingUnchanged(o); err != nil {
		return nil, err
	}
	if p.lazy && h.CompatibleFeatures&CompatLazyRefcounts == 0 && p.version < 3 {
		return nil, img.amendError(image.ErrInvalidArgument, "Lazy refcounts only supported with compatibility level 1.1 and above (use compat=1.1 or greater)")
	}
	if p.size != 0 && p.size%512 != 0 {
		return nil, img.amendError(image.ErrUnaligned, "The new size must be a multiple of 512")
	}
	if p.size > maxVirtualSize {
		return nil, img.amendError(image.ErrInvalidArgument, "The new size %d is too large", p.size)
	}
	if p.version > h.Version {
		if err := img.checkUpgrade(); err != nil {
			return nil, err
		}
	}
	if p.version < h.Version {
		if err := img.checkDowngrade(ctx, p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// checkBackingUnchanged accepts backing_file and backing_fmt only when
// they name what the image already has, as QEMU does.
func (img *Image) checkBackingUnchanged(o AmendOptions) error {
	h := img.hdr
	if o.BackingFile == nil && o.BackingFormat == nil {
		return nil
	}
	differs := func(v *string, cur string) bool { return v == nil && cur != "" || v != nil && *v != cur }
	if differs(o.BackingFile, h.BackingFile) || differs(o.BackingFormat, h.BackingFormat) ||
		o.BackingFile != nil && *o.BackingFile == "" && h.BackingFile == "" {
		return image.FileErrorf(img.name, "%w: %w", ErrAmendBacking, image.ErrInvalidArgument)
	}
	return nil
}

// amendFeatureBits applies data_file, data_file_raw and lazy_refcounts:
// header fields, changed with one write of the header cluster. Turning
// lazy refcounts off needs consistent refcounts, which the image has: a
// dirty image was repaired when it was opened for writing.
func (img *Image) amendFeatureBits(p *amendPlan) error {
	h := img.hdr
	nh := *h
	if p.dataFileRaw {
		nh.AutoclearFeatures |= AutoclearDataFileRaw
	} else {
		nh.AutoclearFeatures &^= AutoclearDataFileRaw
	}
	if p.dataFile != nil {
		nh.DataFile = *p.dataFile
	}
	if p.lazy {
		nh.CompatibleFeatures |= CompatLazyRefcounts
	} else {
		nh.CompatibleFeatures &^= CompatLazyRefcounts
	}
	if nh.AutoclearFeatures == h.AutoclearFeatures && nh.DataFile == h.DataFile && nh.CompatibleFeatures == h.CompatibleFeatures {
		return nil
	}
	return img.switchHeader(&nh)
}

// amendSize resizes as QEMU's truncate does for amend: shrinking needs no
// flag, and images with internal snapshots may shrink too (the snapshots
// keep their own tables and sizes). On a version 3 image it runs under
// the dirty bit, so that a kill mid-way leaves nothing a repair on the
// next open does not fix.
func (img *Image) amendSize(ctx context.Context, size int64) error {
	if img.hdr.Version < 3 {
		return img.Resize(size, true)
	}
	if size >= img.Size() {
		return img.underDirtyBit(ctx, func() error { return img.Resize(size, true) })
	}
	return img.underDirtyBit(ctx, func() error { return img.shrinkBySwitch(size) })
}

// shrinkBySwitch shrinks in one header write, as a snapshot is applied: a
// new L1 table holds the entries that cover the new size (the last L2
// table, if it maps clusters past the new end, copied without them), and
// the header switches to it and to the new size together. The repair that
// follows frees what only the old tables referenced.
func (img *Image) shrinkBySwitch(size int64) error {
	if err := img.checkWrite(0, size); err != nil { // also marks bitmaps stale
		return err
	}
	img.mu.Lock()
	defer img.mu.Unlock()
	h := img.hdr
	cs := h.ClusterSize()
	perL2 := h.L2Entries() * cs
	keep := (size + perL2 - 1) / perL2
	l1 := append([]uint64(nil), img.l1[:keep]...)
	if tail := size % perL2; tail != 0 && l1[keep-1]&offsetMask != 0 {
		off := int64(l1[keep-1] & offsetMask)
		if err := img.checkTable("L2 table", uint64(off), cs, false); err != nil {
			return err
		}
		buf := make([]byte, cs)
		if _, err := img.file.ReadAt(buf, off); err != nil {
			return img.errorf(image.ErrCorrupt, "reading the L2 table at %#x: %v", off, err)
		}
		clear(buf[(tail+cs-1)/cs*h.L2EntrySize():])
		newOff, err := img.writeNewClusters(buf)
		if err != nil {
			return err
		}
		l1[keep-1] = newOff | flagCopied
	}
	l1Off, err := img.writeL1Copy(l1)
	if err != nil {
		return err
	}
	return img.switchActive(uint64(size), int64(len(l1)), l1Off)
}

// underDirtyBit runs change with the dirty bit set, then repairs the
// refcounts and clears the bit.
func (img *Image) underDirtyBit(ctx context.Context, change func() error) error {
	img.mu.Lock()
	err := img.setDirty()
	img.mu.Unlock()
	if err != nil {
		return err
	}
	err = change()
	img.mu.Lock()
	img.meta = nil
	if ferr := img.alloc.flush(); err == nil {
		err = ferr
	}
	img.mu.Unlock()
	// The repair also runs after a failed change: it frees what the
	// change allocated and clears the dirty bit.
	res, cerr := img.Check(ctx, image.RepairAll)
	if err == nil && cerr == nil && (res.CheckErrors > 0 || res.Corruptions > 0) {
		cerr = img.errorf(image.ErrCorrupt, "%d errors remain after the refcount repair", res.CheckErrors+res.Corruptions)
	}
	return errors.Join(err, cerr)
}

// switchHeader writes nh as the whole header cluster in one write (the
// moment the change happens) and syncs, then makes it the image's header.
func (img *Image) switchHeader(nh *Header) error {
	img.mu.Lock()
	defer img.mu.Unlock()
	if err := img.wfile.Sync(); err != nil {
		return err
	}
	buf, err := img.writeHeader(nh)
	if err != nil {
		return err
	}
	if err := img.wfile.Sync(); err != nil {
		return err
	}
	parsed, err := ParseHeader(buf)
	if err != nil {
		return image.FileErrorf(img.name, "the new header does not parse: %w", err)
	}
	*img.hdr = *parsed
	img.codec = newCodec(parsed.CompressionType, parsed.ClusterSize())
	return nil
}
