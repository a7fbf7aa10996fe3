package lvm

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/qimg/qimg/image"
)

// Limits on what one volume group may hold, far above what LVM users
// create, so that hostile metadata cannot make qimg build millions of
// volumes.
const (
	maxPVs      = 1024
	maxLVs      = 8192
	maxSegments = 1 << 16 // in the whole VG
)

// VG is an LVM2 volume group as its metadata describes it.
type VG struct {
	Name string
	UUID string
	// Seqno counts the metadata's updates; Scan keeps the newest copy.
	Seqno int64
	// ExtentSize is the size of a physical (and logical) extent in bytes.
	ExtentSize int64
	PVs        []*PV
	LVs        []*LV

	name    string         // where the metadata came from, for messages
	pvIndex map[string]*PV // PVs by Name, built by ParseVG
}

// PV is a physical volume of a volume group.
type PV struct {
	// Name is the metadata's name for the PV ("pv0"), which segments use.
	Name string
	UUID string
	// Device is the host device the PV was on when LVM last wrote the
	// metadata: a hint for people, meaningless inside a disk image.
	Device string
	// DevSize is the device size recorded in the metadata, in bytes.
	DevSize int64
	// PEStart is where the first extent starts, in bytes from the PV's
	// start; PECount is the number of extents.
	PEStart int64
	PECount int64
	// Image and File are the device Scan found with the PV's UUID, or
	// nil and "" when the PV is missing.
	Image image.Image
	File  string
}

// Device is an image that may be an LVM2 physical volume, for Scan: a
// whole disk or a partition (an image.Section), with its name for
// messages.
type Device struct {
	Name  string
	Image image.Image
}

// Scan finds the volume groups on devs, as vgscan does: each device with
// an LVM2 label is a PV, the newest metadata (highest seqno) of each
// volume group is parsed, and the group's PVs are matched to devices by
// UUID. Devices without a label are skipped, and so are PVs in no group.
// A group some of whose PVs are not among devs is returned with those
// PVs' Image nil (see Missing): its LVs on the others can still be read.
func Scan(devs ...Device) ([]*VG, error) {
	byUUID := map[string]Device{}
	newest := map[string]*VG{}
	var order []string
	for _, d := range devs {
		h, err := ReadPVHeader(d.Image, d.Name)
		if errors.Is(err, image.ErrWrongFormat) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if prev, dup := byUUID[h.UUID]; dup {
			return nil, image.FileErrorf(d.Name, "LVM PV %s is also on %s (a copied disk?): %w", h.UUID, prev.Name, image.ErrCorrupt)
		}
		byUUID[h.UUID] = d
		texts, err := ReadMetadata(d.Image, d.Name, h)
		if err != nil {
			return nil, err
		}
		for _, text := range texts {
			vg, err := ParseVG(text, d.Name)
			if err != nil {
				return nil, err
			}
			if slices.IndexFunc(vg.PVs, func(p *PV) bool { return p.UUID == h.UUID }) < 0 {
				return nil, image.FileErrorf(d.Name, "LVM metadata of volume group %s does not list the PV %s that holds it: %w", vg.Name, h.UUID, image.ErrCorrupt)
			}
			old, seen := newest[vg.UUID]
			if !seen {
				order = append(order, vg.UUID)
			}
			if !seen || vg.Seqno > old.Seqno {
				newest[vg.UUID] = vg
			}
		}
	}
	vgs := make([]*VG, 0, len(order))
	for _, id := range order {
		vg := newest[id]
		for _, pv := range vg.PVs {
			if d, ok := byUUID[pv.UUID]; ok {
				pv.Image, pv.File = d.Image, d.Name
			}
		}
		vgs = append(vgs, vg)
	}
	return vgs, nil
}

// Missing returns the PVs of the group that Scan did not find.
func (vg *VG) Missing() []*PV {
	var m []*PV
	for _, pv := range vg.PVs {
		if pv.Image == nil {
			m = append(m, pv)
		}
	}
	return m
}

// LV returns the logical volume called name, or nil.
func (vg *VG) LV(name string) *LV {
	for _, lv := range vg.LVs {
		if lv.Name == name {
			return lv
		}
	}
	return nil
}

// PV returns the physical volume the metadata calls name ("pv0"), or nil.
func (vg *VG) PV(name string) *PV {
	if pv, ok := vg.pvIndex[name]; ok {
		return pv
	}
	for _, pv := range vg.PVs {
		if pv.Name == name {
			return pv
		}
	}
	return nil
}

// ParseVG parses the text of a volume group's metadata (as ReadMetadata
// returns it, or a file of /etc/lvm/backup) and checks it: every size
// and extent range is computed without overflow and must lie inside its
// PV, segments must tile each LV from extent 0. The PVs' Image is nil.
// name is the file the text comes from, for messages.
func ParseVG(text []byte, name string) (*VG, error) {
	root, err := ParseMetadata(text, name)
	if err != nil {
		return nil, err
	}
	b := builder{name: name}
	return b.vg(root)
}

type builder struct {
	name string
	path string // the section being read, for messages
}

func (b *builder) errorf(class error, format string, args ...any) error {
	where := "LVM metadata"
	if b.path != "" {
		where += " of " + b.path
	}
	return image.FileErrorf(b.name, "%s: %s: %w", where, fmt.Sprintf(format, args...), class)
}

func (b *builder) str(s *Section, key string) (string, error) {
	v, ok := s.Values[key]
	if !ok || v.Kind != String {
		return "", b.errorf(image.ErrCorrupt, "%s is missing or not a string", key)
	}
	return v.Str, nil
}

// num reads a non-negative integer of at most limit.
func (b *builder) num(s *Section, key string, limit int64) (int64, error) {
	v, ok := s.Values[key]
	if !ok || v.Kind != Int {
		return 0, b.errorf(image.ErrCorrupt, "%s is missing or not an integer", key)
	}
	if v.Int < 0 || v.Int > limit {
		return 0, b.errorf(image.ErrCorrupt, "%s = %d, outside [0, %d]", key, v.Int, limit)
	}
	return v.Int, nil
}

func (b *builder) vg(root *Section) (*VG, error) {
	if v, ok := root.Values["contents"]; ok && (v.Kind != String || v.Str != "Text Format Volume Group") {
		return nil, b.errorf(image.ErrCorrupt, "contents is not \"Text Format Volume Group\"")
	}
	if v, ok := root.Values["version"]; ok && (v.Kind != Int || v.Int != 1) {
		return nil, b.errorf(image.ErrUnsupported, "text format version is not 1")
	}
	if len(root.Sections) != 1 {
		return nil, b.errorf(image.ErrCorrupt, "%d volume groups in one text, not 1", len(root.Sections))
	}
	s := root.Sections[0]
	vg := &VG{Name: s.Name, name: b.name, pvIndex: map[string]*PV{}}
	b.path = "volume group " + s.Name
	var err error
	if vg.UUID, err = b.str(s, "id"); err != nil {
		return nil, err
	}
	if vg.Seqno, err = b.num(s, "seqno", math.MaxInt64); err != nil {
		return nil, err
	}
	// extent_size is in sectors, a 32-bit field in LVM.
	es, err := b.num(s, "extent_size", math.MaxUint32)
	if err != nil {
		return nil, err
	}
	if es == 0 {
		return nil, b.errorf(image.ErrCorrupt, "extent_size is 0")
	}
	vg.ExtentSize = es * sectorSize
	if f, ok := s.Values["format"]; ok && (f.Kind != String || f.Str != "lvm2") {
		return nil, b.errorf(image.ErrUnsupported, "format is not \"lvm2\"")
	}

	pvs := s.Section("physical_volumes")
	if pvs == nil {
		return nil, b.errorf(image.ErrCorrupt, "no physical_volumes section")
	}
	if len(pvs.Sections) > maxPVs {
		return nil, b.errorf(image.ErrLimit, "%d PVs, more than %d", len(pvs.Sections), maxPVs)
	}
	for _, ps := range pvs.Sections {
		pv, err := b.pv(vg, ps)
		if err != nil {
			return nil, err
		}
		b.path = "volume group " + vg.Name
		if slices.ContainsFunc(vg.PVs, func(o *PV) bool { return o.UUID == pv.UUID }) {
			return nil, b.errorf(image.ErrCorrupt, "PV %s listed twice", pv.UUID)
		}
		if _, dup := vg.pvIndex[pv.Name]; dup { // the parser refuses two sections of one name
			return nil, b.errorf(image.ErrCorrupt, "PV %s listed twice", pv.Name)
		}
		vg.PVs = append(vg.PVs, pv)
		vg.pvIndex[pv.Name] = pv
	}

	lvs := s.Section("logical_volumes")
	if lvs == nil {
		return vg, nil // a group with no LVs yet
	}
	if len(lvs.Sections) > maxLVs {
		return nil, b.errorf(image.ErrLimit, "%d LVs, more than %d", len(lvs.Sections), maxLVs)
	}
	segs := 0
	for _, ls := range lvs.Sections {
		segs += len(ls.Sections)
		if segs > maxSegments {
			return nil, b.errorf(image.ErrLimit, "more than %d segments", maxSegments)
		}
		lv, err := b.lv(vg, ls)
		if err != nil {
			return nil, err
		}
		vg.LVs = append(vg.LVs, lv)
	}
	// A snapshot's COW store is a linear LV of its own whose bytes are
	// the snapshot's exception table, not a file system: mark it so that
	// Open refuses it rather than returning those bytes.
	byName := make(map[string]*LV, len(vg.LVs))
	for _, lv := range vg.LVs {
		byName[lv.Name] = lv
	}
	for _, lv := range vg.LVs {
		for _, seg := range lv.Segments {
			if seg.Type == "snapshot" {
				if cow := byName[seg.CowStore]; cow != nil {
					cow.snapshotOf = seg.Origin
				}
			}
		}
	}
	return vg, nil
}

func (b *builder) pv(vg *VG, s *Section) (*PV, error) {
	b.path = "PV " + s.Name + " of volume group " + vg.Name
	pv := &PV{Name: s.Name}
	var err error
	if pv.UUID, err = b.str(s, "id"); err != nil {
		return nil, err
	}
	if d, ok := s.Values["device"]; ok && d.Kind == String {
		pv.Device = d.Str
	}
	// Sizes are in sectors; bytes must fit an int64.
	const maxSectors = math.MaxInt64 / sectorSize
	if _, ok := s.Values["dev_size"]; ok {
		n, err := b.num(s, "dev_size", maxSectors)
		if err != nil {
			return nil, err
		}
		pv.DevSize = n * sectorSize
	}
	ps, err := b.num(s, "pe_start", maxSectors)
	if err != nil {
		return nil, err
	}
	pv.PEStart = ps * sectorSize
	if pv.PECount, err = b.num(s, "pe_count", math.MaxUint32); err != nil {
		return nil, err
	}
	if pv.PECount > (math.MaxInt64-pv.PEStart)/vg.ExtentSize {
		return nil, b.errorf(image.ErrCorrupt, "%d extents of %d bytes from %d overflow", pv.PECount, vg.ExtentSize, pv.PEStart)
	}
	return pv, nil
}

func (b *builder) lv(vg *VG, s *Section) (*LV, error) {
	b.path = "logical volume " + vg.Name + "/" + s.Name
	lv := &LV{Name: s.Name, vg: vg}
	var err error
	if lv.UUID, err = b.str(s, "id"); err != nil {
		return nil, err
	}
	if st, ok := s.Values["status"]; ok && st.Kind == Array {
		for _, v := range st.Array {
			if v.Kind == String {
				lv.Status = append(lv.Status, v.Str)
				lv.Visible = lv.Visible || v.Str == "VISIBLE"
			}
		}
	}
	// LVM names the segments segment1, segment2, ... and they are the
	// LV's only subsections.
	for _, ss := range s.Sections {
		seg, err := b.segment(vg, ss)
		if err != nil {
			return nil, err
		}
		lv.Segments = append(lv.Segments, seg)
	}
	if n, ok := s.Values["segment_count"]; ok && (n.Kind != Int || n.Int != int64(len(lv.Segments))) {
		return nil, b.errorf(image.ErrCorrupt, "segment_count disagrees with the %d segments", len(lv.Segments))
	}
	slices.SortFunc(lv.Segments, func(x, y Segment) int { return cmp.Compare(x.StartExtent, y.StartExtent) })
	var next int64
	for i, seg := range lv.Segments {
		if seg.StartExtent != next {
			return nil, b.errorf(image.ErrCorrupt, "segment %d starts at extent %d, not %d", i+1, seg.StartExtent, next)
		}
		next += seg.ExtentCount // both at most MaxUint32 × maxSegments
	}
	if next > math.MaxInt64/vg.ExtentSize {
		return nil, b.errorf(image.ErrCorrupt, "%d extents of %d bytes overflow", next, vg.ExtentSize)
	}
	lv.Size = next * vg.ExtentSize
	return lv, nil
}

func (b *builder) segment(vg *VG, s *Section) (Segment, error) {
	lvPath := b.path
	b.path = lvPath + " " + s.Name
	defer func() { b.path = lvPath }()
	var seg Segment
	var err error
	if seg.StartExtent, err = b.num(s, "start_extent", math.MaxUint32); err != nil {
		return seg, err
	}
	if seg.ExtentCount, err = b.num(s, "extent_count", math.MaxUint32); err != nil {
		return seg, err
	}
	if seg.ExtentCount == 0 {
		return seg, b.errorf(image.ErrCorrupt, "extent_count is 0")
	}
	if seg.Type, err = b.str(s, "type"); err != nil {
		return seg, err
	}
	switch seg.Type {
	case "snapshot":
		// The names are kept to tell the COW store apart; snapshots
		// themselves are not read.
		seg.CowStore, _ = b.str(s, "cow_store")
		seg.Origin, _ = b.str(s, "origin")
		return seg, nil
	case "striped", "linear":
	default:
		return seg, nil // another type: Open refuses it, by name
	}
	seg.StripeCount = 1
	if _, ok := s.Values["stripe_count"]; ok || seg.Type == "striped" {
		if seg.StripeCount, err = b.num(s, "stripe_count", maxPVs); err != nil {
			return seg, err
		}
	}
	if seg.StripeCount == 0 || seg.ExtentCount%seg.StripeCount != 0 {
		return seg, b.errorf(image.ErrCorrupt, "%d extents do not split into %d stripes", seg.ExtentCount, seg.StripeCount)
	}
	st, ok := s.Values["stripes"]
	if !ok || st.Kind != Array || int64(len(st.Array)) != 2*seg.StripeCount {
		return seg, b.errorf(image.ErrCorrupt, "stripes is not an array of %d (PV, extent) pairs", seg.StripeCount)
	}
	per := seg.ExtentCount / seg.StripeCount
	for i := 0; i < len(st.Array); i += 2 {
		pvName, start := st.Array[i], st.Array[i+1]
		if pvName.Kind != String || start.Kind != Int {
			return seg, b.errorf(image.ErrCorrupt, "stripe %d is not a (PV name, extent) pair", i/2)
		}
		pv := vg.PV(pvName.Str)
		if pv == nil {
			return seg, b.errorf(image.ErrCorrupt, "stripe %d is on %q, which is not a PV of the group", i/2, pvName.Str)
		}
		if start.Int < 0 || start.Int > pv.PECount || per > pv.PECount-start.Int {
			return seg, b.errorf(image.ErrCorrupt, "extents %d+%d of %s outside its %d extents", start.Int, per, pv.Name, pv.PECount)
		}
		seg.Stripes = append(seg.Stripes, Stripe{PV: pv.Name, StartExtent: start.Int})
	}
	return seg, nil
}
