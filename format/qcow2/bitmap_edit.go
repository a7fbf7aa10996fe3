package qcow2

import (
	"context"
	"fmt"
	"math/bits"

	"github.com/qimg/qimg/image"
)

// Persistent dirty bitmaps change the way qemu-img bitmap changes them:
// the actions run in order on the bitmaps held in memory, and the first
// that fails stops the rest, while those before it are kept. The result
// is then written as the snapshot operations write theirs
// (snapshot_write.go): under the dirty bit, the contents that changed and
// a new directory go into new clusters, one header write switches to
// them, and the refcount repair frees what the old ones held. Bitmaps
// whose contents did not change keep their tables.

// ErrBitmapNotFound is the class of the error for a bitmap no bitmap of
// the image (or of the merge source) is called.
var ErrBitmapNotFound = fmt.Errorf("bitmap not found: %w", image.ErrInvalidArgument)

// BitmapAction is one of the changes of qemu-img bitmap.
type BitmapAction int

// The actions, named as qemu-img names them in its messages.
const (
	BitmapAdd BitmapAction = iota
	BitmapRemove
	BitmapClear
	BitmapEnable
	BitmapDisable
	BitmapMerge
)

func (a BitmapAction) String() string {
	return [...]string{"add", "remove", "clear", "enable", "disable", "merge"}[a]
}

// BitmapChange is one action on the bitmap EditBitmaps changes.
type BitmapChange struct {
	Action BitmapAction
	// Granularity is, for BitmapAdd, the bytes each bit stands for; 0
	// picks QEMU's default: the cluster size, within 4 KiB to 64 KiB.
	Granularity int64
	// Source is, for BitmapMerge, the bitmap whose set bits are added.
	Source string
}

// BitmapError is the failure of one change, with QEMU's reason (and the
// hint it prints on the next line, if any). It wraps an image.Err* class.
type BitmapError struct {
	File   string
	Action BitmapAction
	Bitmap string
	Reason string
	Hint   string
	Class  error
}

func (e *BitmapError) Error() string {
	return fmt.Sprintf("%s: operation %s on bitmap %s failed: %s", e.File, e.Action, e.Bitmap, e.Reason)
}

func (e *BitmapError) Unwrap() error { return e.Class }

// bitmapEdit is the state of the bitmaps while the changes run.
type bitmapEdit struct {
	img      *Image
	list     []*bitmapEntry
	changed  bool
	diskN    int    // bitmaps in the directory on disk, as QEMU counts them
	diskSize int64  // and its size
	from     *Image // the merge source's image: this one if nil
	fromList []*bitmapEntry
	fromNone bool // the source is of a format without bitmaps
}

// EditBitmaps applies changes in order to the bitmap called name, as
// qemu-img bitmap does. Merges take their source bitmap from from, or
// from this image if from is nil (an image of another format holds no
// bitmaps). The first change that fails stops the others and its
// *BitmapError is returned, after the changes before it are written.
func (img *Image) EditBitmaps(ctx context.Context, name string, changes []BitmapChange, from image.Image) error {
	if img.wfile == nil {
		return img.errorf(image.ErrReadOnly, "changing bitmaps needs an image opened for writing")
	}
	list, err := img.loadBitmapList()
	if err != nil {
		return err
	}
	ed := &bitmapEdit{img: img, list: list, diskN: len(list), diskSize: int64(len(encodeBitmapDirectory(list)))}
	if from != nil {
		ed.from, _ = from.(*Image)
		ed.fromNone = ed.from == nil
		if ed.from != nil {
			if ed.fromList, err = ed.from.loadBitmapList(); err != nil {
				return err
			}
		}
	}
	var failed error
	for _, c := range changes {
		if failed = ed.apply(name, c); failed != nil {
			break
		}
	}
	if ed.changed {
		if err := img.snapshotOp(ctx, func() error { return img.writeBitmaps(ed.list) }); err != nil {
			return err
		}
	}
	return failed
}

// loadBitmapList reads the bitmap directory as QEMU does when it opens the
// image: none unless the autoclear bit vouches for it.
func (img *Image) loadBitmapList() ([]*bitmapEntry, error) {
	h := img.hdr
	if h.Bitmaps == nil || h.AutoclearFeatures&AutoclearBitmaps == 0 || h.Bitmaps.NbBitmaps == 0 {
		return nil, nil
	}
	dir, err := img.bitmapDirectory()
	if err != nil {
		return nil, img.errorf(image.ErrCorrupt, "%v", err)
	}
	list, err := parseBitmapDirectory(dir, h.Bitmaps.NbBitmaps, uint64(img.Size()), h.ClusterSize())
	if err != nil {
		return nil, img.errorf(image.ErrCorrupt, "%v", err)
	}
	return list, nil
}

// apply runs one change.
func (ed *bitmapEdit) apply(name string, c BitmapChange) error {
	fail := func(class error, format string, args ...any) error {
		return &BitmapError{File: ed.img.name, Action: c.Action, Bitmap: name, Reason: fmt.Sprintf(format, args...), Class: class}
	}
	if c.Action == BitmapAdd {
		return ed.add(name, c.Granularity, fail)
	}
	i := findBitmap(ed.list, name)
	if i < 0 {
		return fail(ErrBitmapNotFound, "Dirty bitmap '%s' not found", name)
	}
	b := ed.list[i]
	if c.Action == BitmapRemove {
		ed.list = append(ed.list[:i:i], ed.list[i+1:]...)
		if b.tableOff != 0 {
			ed.diskN--
			ed.diskSize -= int64(bitmapEntrySize(len(b.name)))
		}
		ed.changed = true
		return nil
	}
	if c.Action == BitmapMerge {
		return ed.merge(b, c.Source, fail)
	}
	if b.inUse {
		return inconsistent(fail(image.ErrInvalidArgument, "Bitmap '%s' is inconsistent and cannot be used", name))
	}
	switch c.Action {
	case BitmapClear:
		b.bits, b.rewrite = nil, true
	case BitmapEnable:
		b.autoRecord = true
	case BitmapDisable:
		b.autoRecord = false
	}
	ed.changed = true
	return nil
}

// inconsistent adds QEMU's hint to the error about a bitmap in use.
func inconsistent(err error) error {
	err.(*BitmapError).Hint = "Try block-dirty-bitmap-remove to delete this bitmap from disk"
	return err
}

func findBitmap(list []*bitmapEntry, name string) int {
	for i, b := range list {
		if b.name == name {
			return i
		}
	}
	return -1
}

// defaultGranularity is QEMU's bdrv_get_default_bitmap_granularity.
func (img *Image) defaultGranularity() uint32 {
	return uint32(min(64<<10, max(4<<10, img.hdr.ClusterSize())))
}

// add makes a new, empty bitmap that records writes, checked as QEMU's
// block_dirty_bitmap_add checks it.
func (ed *bitmapEdit) add(name string, granularity int64, fail func(error, string, ...any) error) error {
	if name == "" {
		return fail(image.ErrInvalidArgument, "Bitmap name cannot be empty")
	}
	g := uint32(granularity) // qemu-img passes it on as a uint32
	if granularity == 0 {
		g = ed.img.defaultGranularity()
	} else if g < 512 || g&(g-1) != 0 {
		return fail(image.ErrInvalidArgument, "Granularity must be power of 2 and at least 512")
	}
	if why := ed.cannotStore(name, g); why != "" {
		return fail(image.ErrUnsupported, "Can't make bitmap '%s' persistent in '%s': %s", name, ed.img.name, why)
	}
	if findBitmap(ed.list, name) >= 0 {
		return fail(image.ErrInvalidArgument, "Bitmap already exists: %s", name)
	}
	gbits := uint8(bits.TrailingZeros32(g))
	ed.list = append(ed.list, &bitmapEntry{name: name, gbits: gbits, rewrite: true, autoRecord: true})
	ed.changed = true
	return nil
}

// cannotStore is why QEMU's qcow2_co_can_store_new_dirty_bitmap refuses
// a new bitmap, or "".
func (ed *bitmapEdit) cannotStore(name string, g uint32) string {
	img := ed.img
	if img.hdr.Version < 3 {
		return "Cannot store dirty bitmaps in qcow2 v2 files"
	}
	need := (bitmapBits(uint64(img.Size()), uint8(bits.TrailingZeros32(g))) + 7) / 8
	switch {
	case need > maxBitmapPhys || need > maxBitmapTable*uint64(img.hdr.ClusterSize()):
		return "Too much space will be occupied by the bitmap. Use larger granularity"
	case len(name) > maxBitmapName:
		return fmt.Sprintf("Name length exceeds maximum (%d characters)", maxBitmapName)
	case ed.diskN == 0:
		return ""
	case ed.diskN >= maxBitmaps:
		return "Maximum number of persistent bitmaps is already reached"
	case ed.diskSize+int64(bitmapEntrySize(len(name))) > maxBitmapDirectory:
		return "Not enough space in the bitmap directory"
	}
	return ""
}

// merge adds the set bits of the bitmap called source to dst, as QEMU's
// block_dirty_bitmap_merge does: the source must be usable and cover a
// disk of the same size; dst must be usable.
func (ed *bitmapEdit) merge(dst *bitmapEntry, source string, fail func(error, string, ...any) error) error {
	srcImg, srcList := ed.img, ed.list
	if ed.from != nil {
		srcImg, srcList = ed.from, ed.fromList
	}
	i := findBitmap(srcList, source)
	if i < 0 || ed.fromNone {
		return fail(ErrBitmapNotFound, "Dirty bitmap '%s' not found", source)
	}
	src := srcList[i]
	if src.inUse {
		return inconsistent(fail(image.ErrInvalidArgument, "Bitmap '%s' is inconsistent and cannot be used", source))
	}
	if srcImg.Size() != ed.img.Size() {
		return fail(image.ErrInvalidArgument, "Bitmaps are of different sizes (destination size is %d, source size is %d) and can't be merged", ed.img.Size(), srcImg.Size())
	}
	if dst.inUse {
		return inconsistent(fail(image.ErrInvalidArgument, "Bitmap '%s' is inconsistent and cannot be used", dst.name))
	}
	srcBits, err := srcImg.bitmapContents(src)
	if err != nil {
		return err
	}
	dstBits, err := ed.img.bitmapContents(dst)
	if err != nil {
		return err
	}
	mergeBits(dstBits, dst.gbits, srcBits, src.gbits, uint64(ed.img.Size()))
	dst.bits, dst.rewrite = dstBits, true
	ed.changed = true
	return nil
}

// writeBitmaps writes the contents that changed and the directory of
// list into new clusters, then switches the header to them in one write.
// The caller holds the dirty bit and repairs the refcounts afterwards.
func (img *Image) writeBitmaps(list []*bitmapEntry) error {
	for _, b := range list {
		if !b.rewrite {
			continue
		}
		bits := b.bits
		if bits == nil {
			bits = []byte{}
		}
		off, n, err := img.writeBitmapContents(bits, b.gbits)
		if err != nil {
			return err
		}
		b.tableOff, b.tableSize, b.rewrite, b.bits = off, n, false, nil
	}
	h := *img.hdr
	h.Bitmaps = nil
	h.AutoclearFeatures &^= AutoclearBitmaps
	if len(list) > 0 {
		dir := encodeBitmapDirectory(list)
		off, err := img.putNewClusters(dir)
		if err != nil {
			return err
		}
		h.Bitmaps = &BitmapsExtension{NbBitmaps: uint32(len(list)), DirectorySize: uint64(len(dir)), DirectoryOff: off}
		h.AutoclearFeatures |= AutoclearBitmaps
	}
	if err := img.wfile.Sync(); err != nil {
		return image.FileErrorf(img.name, "syncing the new bitmaps: %w", err)
	}
	if _, err := img.writeHeader(&h); err != nil {
		return err
	}
	img.hdr = &h
	return nil
}
