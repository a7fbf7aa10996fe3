package lvm

import (
	"fmt"
	"io"
	"sort"

	"github.com/qimg/qimg/image"
)

// LV is a logical volume: a sequence of segments, each mapping a run of
// the LV's extents somewhere.
type LV struct {
	Name string
	UUID string
	// Size is the LV's size in bytes: its extents times the extent size.
	Size int64
	// Visible is false for LVs LVM hides (the pieces of RAID, thin
	// pools, snapshots), which lvs lists only with -a.
	Visible bool
	// Status is the metadata's status flags ("READ", "WRITE", "VISIBLE").
	Status []string
	// Segments are in order of StartExtent and tile the LV.
	Segments []Segment

	vg         *VG
	snapshotOf string // set on a snapshot's COW store: the origin's name
}

// Segment is a run of an LV's extents.
type Segment struct {
	StartExtent int64
	ExtentCount int64
	// Type is the metadata's segment type: "striped" for linear and
	// striped segments, or "raid1", "thin", "thin-pool", "mirror",
	// "snapshot", "cache" and so on.
	Type string
	// StripeCount and Stripes describe a striped segment; linear is
	// one stripe. They are empty for other types.
	StripeCount int64
	Stripes     []Stripe
	// CowStore and Origin name the LVs of a snapshot segment.
	CowStore, Origin string
}

// Stripe is where one stripe of a segment starts: a PV (by the
// metadata's name for it, "pv0") and an extent of that PV.
type Stripe struct {
	PV          string
	StartExtent int64
}

// DeviceName is the name libguestfs (and udev on a host) gives a logical
// volume: /dev/VG/LV.
func DeviceName(vg, lv string) string { return "/dev/" + vg + "/" + lv }

// Open returns an image of the logical volume lv of the group, read
// through the images of its PVs (see Scan): a window of the PV for a
// single linear segment, the segments' windows end to end for an LV
// extended over several. The image is writable when the PV images are.
// It does not own the PV images: closing it leaves them open.
//
// Only linear segments (type "striped" with one stripe) are read; RAID,
// mirrors, thin volumes and pools, caches, snapshots (and their COW
// stores), VDO and segments striped over several PVs are refused as
// image.ErrUnsupported, naming the segment type. A segment on a PV Scan
// did not find is image.ErrInvalidArgument (the caller did not give the
// device), naming the PV; one that reaches past the end of its PV's image
// is image.ErrCorrupt. A nil lv (vg.LV of an unknown name) is
// image.ErrInvalidArgument.
func (vg *VG) Open(lv *LV) (image.Image, error) {
	if lv == nil { // vg.LV of a name the group does not have
		return nil, image.FileErrorf(vg.name, "no such logical volume in volume group %s: %w", vg.Name, image.ErrInvalidArgument)
	}
	what := "logical volume " + vg.Name + "/" + lv.Name
	if lv.vg != vg {
		return nil, image.FileErrorf(vg.name, "%s is not of this volume group: %w", what, image.ErrInvalidArgument)
	}
	if lv.snapshotOf != "" {
		return nil, image.FileErrorf(vg.name, "%s is the copy-on-write store of a snapshot of %s, which qimg cannot read: %w", what, lv.snapshotOf, image.ErrUnsupported)
	}
	if len(lv.Segments) == 0 {
		return nil, image.FileErrorf(vg.name, "%s has no segments: %w", what, image.ErrCorrupt)
	}
	var parts []part
	var start int64
	for i, seg := range lv.Segments {
		if seg.Type != "striped" && seg.Type != "linear" {
			return nil, image.FileErrorf(vg.name, "%s: segment %d is of type %s; qimg reads only linear volumes: %w", what, i+1, seg.Type, image.ErrUnsupported)
		}
		if seg.StripeCount != 1 || len(seg.Stripes) != 1 {
			return nil, image.FileErrorf(vg.name, "%s: segment %d is striped over %d PVs; qimg reads only linear volumes: %w", what, i+1, seg.StripeCount, image.ErrUnsupported)
		}
		st := seg.Stripes[0]
		pv := vg.PV(st.PV)
		if pv == nil { // ParseVG checked; a caller may have edited the VG
			return nil, image.FileErrorf(vg.name, "%s: segment %d is on an unknown PV %q: %w", what, i+1, st.PV, image.ErrCorrupt)
		}
		if pv.Image == nil {
			return nil, image.FileErrorf(vg.name, "%s: segment %d is on PV %s (%s, last seen as %s), which is missing: %w", what, i+1, pv.Name, pv.UUID, pv.Device, image.ErrInvalidArgument)
		}
		// ParseVG bounded the extents by the PV's pe_count and pe_start
		// plus pe_count extents by MaxInt64, so this cannot overflow.
		off := pv.PEStart + st.StartExtent*vg.ExtentSize
		size := seg.ExtentCount * vg.ExtentSize
		if off > pv.Image.Size() || size > pv.Image.Size()-off {
			return nil, image.FileErrorf(pv.File, "%s: segment %d ([%d, +%d)) lies past the end of PV %s (%d bytes): %w", what, i+1, off, size, pv.Name, pv.Image.Size(), image.ErrCorrupt)
		}
		sec, err := image.NewSection(pv.Image, off, size)
		if err != nil {
			return nil, image.FileErrorf(pv.File, "%s: segment %d: %w", what, i+1, err)
		}
		if seg.StartExtent*vg.ExtentSize != start {
			return nil, image.FileErrorf(vg.name, "%s: segment %d does not follow the one before: %w", what, i+1, image.ErrCorrupt)
		}
		parts = append(parts, part{start: start, img: sec})
		start += size
	}
	if len(parts) == 1 {
		return parts[0].img, nil
	}
	c := &concat{parts: parts, size: start}
	for _, p := range parts {
		if _, ok := p.img.(image.WritableImage); !ok {
			return c, nil
		}
	}
	return &writableConcat{c}, nil
}

// part is one image of a concatenation and where it starts in it.
type part struct {
	start int64
	img   image.Image
}

// concat is images end to end: an LV of several segments. It owns none
// of them.
type concat struct {
	parts []part
	size  int64
}

func (c *concat) Size() int64  { return c.size }
func (c *concat) Close() error { return nil }

// find returns the index of the part holding offset off (0 <= off < size).
func (c *concat) find(off int64) int {
	return sort.Search(len(c.parts), func(i int) bool { return c.parts[i].start > off }) - 1
}

func (c *concat) end(i int) int64 {
	if i+1 < len(c.parts) {
		return c.parts[i+1].start
	}
	return c.size
}

func (c *concat) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d: %w", off, image.ErrInvalidArgument)
	}
	done := 0
	for done < len(p) {
		if off >= c.size {
			return done, io.EOF
		}
		i := c.find(off)
		n := int(min(int64(len(p)-done), c.end(i)-off))
		k, err := c.parts[i].img.ReadAt(p[done:done+n], off-c.parts[i].start)
		done += k
		off += int64(k)
		if k < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF // a part shorter than its size
			}
			return done, err
		}
	}
	return done, nil
}

// Extent is the run at start within its part, in the LV's offsets; runs
// never cross segments, since the next may be anywhere on any PV.
func (c *concat) Extent(start, length int64) (image.Extent, error) {
	if start < 0 || start >= c.size || length <= 0 {
		return image.Extent{}, fmt.Errorf("extent [%d,+%d) outside the volume of %d bytes: %w", start, length, c.size, image.ErrInvalidArgument)
	}
	i := c.find(start)
	pt := c.parts[i]
	e, err := pt.img.Extent(start-pt.start, min(length, c.end(i)-start))
	if err != nil {
		return image.Extent{}, err
	}
	e.Start += pt.start
	return e, nil
}

// writableConcat is a concat of writable images; a write or zeroing
// that spans segments is split between them.
type writableConcat struct{ *concat }

func (w *writableConcat) each(off, n int64, f func(img image.WritableImage, off, n, done int64) error) error {
	if off < 0 || n < 0 || off > w.size || n > w.size-off {
		return fmt.Errorf("write [%d,+%d) outside the volume of %d bytes: %w", off, n, w.size, image.ErrInvalidArgument)
	}
	for done := int64(0); done < n; {
		i := w.find(off + done)
		k := min(n-done, w.end(i)-(off+done))
		if err := f(w.parts[i].img.(image.WritableImage), off+done-w.parts[i].start, k, done); err != nil {
			return err
		}
		done += k
	}
	return nil
}

// WriteAt writes all of p or, on an error, an unknown part of it (the
// segments before the failing one are written).
func (w *writableConcat) WriteAt(p []byte, off int64) (int, error) {
	err := w.each(off, int64(len(p)), func(img image.WritableImage, o, n, done int64) error {
		_, err := img.WriteAt(p[done:done+n], o)
		return err
	})
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *writableConcat) WriteZeroes(off, length int64) error {
	return w.each(off, length, func(img image.WritableImage, o, n, _ int64) error {
		return img.WriteZeroes(o, n)
	})
}

// Flush flushes every PV the volume is on (sections flush their whole
// image, so a PV holding several segments is flushed more than once).
func (w *writableConcat) Flush() error {
	for _, p := range w.parts {
		if err := p.img.(image.WritableImage).Flush(); err != nil {
			return err
		}
	}
	return nil
}
