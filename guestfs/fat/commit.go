package fat

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"maps"
	"slices"

	"github.com/qimg/qimg/image"
)

// Commit writes every staged change to the device, in the order doc.go
// describes: new clusters, FAT entries of new chains, directory slots,
// FAT entries of freed chains, FSInfo; with a flush (Flush or Sync, if
// the device has one) between steps. It stops without writing in place
// if ctx is done before the first in-place write; after that it
// finishes. A write error leaves the FS unusable (the volume is in one
// of the states doc.go lists). After a Commit the FS reads the new
// state and stages the next transaction.
func (f *FS) Commit(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.writable("commit", "."); err != nil {
		return err
	}
	steps, err := f.plan()
	if err != nil {
		return err
	}
	if len(steps) == 0 {
		return nil
	}
	if err := f.apply(ctx, steps); err != nil {
		return err
	}
	if c, ok := f.w.(committer); ok {
		if err := c.Commit(ctx); err != nil {
			f.broken = image.FileErrorf(f.name, "commit: %w", err)
			return f.broken
		}
	}
	return f.reset()
}

// committer is a device that holds writes until told the commit is
// whole (a redo log, package guestfs/redo): its Commit makes every
// write of the commit happen at once.
type committer interface {
	Commit(ctx context.Context) error
}

// write is one WriteAt of a commit.
type write struct {
	off  int64
	data []byte
}

// step is a set of writes that may land in any order, followed by a
// flush.
type step struct {
	what    string
	inPlace bool // overwrites something the volume on the device uses
	writes  []write
}

func (f *FS) apply(ctx context.Context, steps []step) error {
	started := false
	for _, s := range steps {
		if !started && s.inPlace {
			if err := ctx.Err(); err != nil {
				return err
			}
			started = true
		}
		if !started {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		for _, w := range s.writes {
			if _, err := f.write(w, s.inPlace); err != nil {
				return f.fail(s.what, started, err)
			}
		}
		if err := f.flush(); err != nil {
			return f.fail(s.what, started, err)
		}
	}
	return nil
}

// write makes one write of a step. Clusters free on the device (not in
// place) go through a redo log's WriteUnused, straight to the disk: a
// crash leaves them unreferenced.
func (f *FS) write(w write, inPlace bool) (int, error) {
	if u, ok := f.w.(interface {
		WriteUnused(p []byte, off int64) (int, error)
	}); ok && !inPlace {
		return u.WriteUnused(w.data, w.off)
	}
	return f.w.WriteAt(w.data, w.off)
}

// fail records a failed commit; past the first in-place write the FS
// no longer knows what the device holds.
func (f *FS) fail(what string, started bool, err error) error {
	err = image.FileErrorf(f.name, "commit: writing %s: %w", what, err)
	if started {
		f.broken = err
	}
	return err
}

// flush makes what was written durable before the next step, when the
// device can (image.WritableImage's Flush, os.File's Sync).
func (f *FS) flush() error {
	switch d := f.w.(type) {
	case interface{ Flush() error }:
		return d.Flush()
	case interface{ Sync() error }:
		return d.Sync()
	}
	return nil
}

// plan lists the steps of a commit; none if nothing is staged.
func (f *FS) plan() ([]step, error) {
	dirs, err := f.dirPhases()
	if err != nil {
		return nil, err
	}
	if len(dirs) == 0 && len(f.fat.staged) == 0 {
		return nil, nil
	}
	steps := []step{{what: "new clusters", writes: f.newClusters(dirs)}}
	fsinfo, err := f.readFSInfo()
	if err != nil {
		return nil, err
	}
	fatChanges := len(f.fat.staged) > 0
	if fsinfo != nil && fatChanges {
		inv := slices.Clone(fsinfo)
		binary.LittleEndian.PutUint32(inv[488:], 0xffffffff)
		steps = append(steps, step{"FSInfo (free count unknown)", true, []write{{f.g.fsInfo * f.g.sectorSize, inv}}})
	}
	img := &fatImage{t: f.fat, sectors: map[int64][]byte{}}
	alloc, link, free := f.fat.changes()
	steps = append(steps, img.steps("FAT entries of new clusters", alloc, false)...)
	steps = append(steps, img.steps("FAT links to new directory clusters", link, false)...)
	for p := byte(1); p <= lastPhase; p++ {
		steps = append(steps, step{fmt.Sprintf("directory slots (phase %d)", p), true, f.dirWrites(dirs, p)})
	}
	steps = append(steps, img.steps("FAT entries of freed clusters", free, true)...)
	if fsinfo != nil && fatChanges {
		fin := slices.Clone(fsinfo)
		t := f.fat
		binary.LittleEndian.PutUint32(fin[488:], t.freeOld-t.allocated+t.released)
		if t.lastAlloc != 0 {
			binary.LittleEndian.PutUint32(fin[492:], t.lastAlloc)
		}
		steps = append(steps, step{"FSInfo", true, []write{{f.g.fsInfo * f.g.sectorSize, fin}}})
	}
	var out []step
	for _, s := range steps {
		if len(s.writes) > 0 {
			s.writes = coalesce(s.writes)
			out = append(out, s)
		}
	}
	return out, nil
}

// readFSInfo reads the FAT32 FSInfo sector, nil if there is none or its
// signatures are wrong (it is then left alone).
func (f *FS) readFSInfo() ([]byte, error) {
	if f.g.fsInfo == 0 {
		return nil, nil
	}
	b := make([]byte, f.g.sectorSize)
	if _, err := f.dev.ReadAt(b, f.g.fsInfo*f.g.sectorSize); err != nil {
		return nil, image.FileErrorf(f.name, "reading FSInfo: %w", ioErr(err))
	}
	le := binary.LittleEndian
	if le.Uint32(b) != 0x41615252 || le.Uint32(b[484:]) != 0x61417272 || le.Uint32(b[508:]) != 0xaa550000 {
		return nil, nil
	}
	return b, nil
}

// maxRun bounds a joined write, so joining copies little.
const maxRun = 1 << 20

// coalesce sorts writes and joins the ones that touch, up to maxRun
// bytes.
func coalesce(ws []write) []write {
	slices.SortFunc(ws, func(a, b write) int { return cmp.Compare(a.off, b.off) })
	var out []write
	for i := 0; i < len(ws); {
		j, size := i+1, len(ws[i].data)
		for j < len(ws) && ws[j-1].off+int64(len(ws[j-1].data)) == ws[j].off && size+len(ws[j].data) <= maxRun {
			size += len(ws[j].data)
			j++
		}
		if j == i+1 {
			out = append(out, ws[i])
		} else {
			buf := make([]byte, 0, size)
			for _, w := range ws[i:j] {
				buf = append(buf, w.data...)
			}
			out = append(out, write{ws[i].off, buf})
		}
		i = j
	}
	return out
}

// changes sorts the staged FAT entries: entries of clusters free on the
// device (new chains), changes to used entries that stay used (a
// directory's last cluster linked to its new ones), and frees.
func (t *table) changes() (alloc, link, free []uint32) {
	for _, c := range slices.Sorted(maps.Keys(t.staged)) {
		v := t.staged[c]
		o, _ := t.old(c)
		switch {
		case o == 0 && v != 0:
			alloc = append(alloc, c)
		case o != 0 && v != 0 && v != o:
			link = append(link, c)
		case o != 0 && v == 0:
			free = append(free, c)
		}
	}
	return alloc, link, free
}

// fatImage builds the FAT sectors step by step, from the device's.
type fatImage struct {
	t       *table
	sectors map[int64][]byte
}

// steps applies entries cs and returns the writes of the sectors they
// touch to every FAT copy: the first copy last when adding (until it is
// written the volume reads as before), first when freeing (it then
// reads as after).
func (m *fatImage) steps(what string, cs []uint32, firstFirst bool) []step {
	touched := map[int64]bool{}
	for _, c := range cs {
		m.set(c, m.t.staged[c], touched)
	}
	if len(touched) == 0 {
		return nil
	}
	g := m.t.g
	order := make([]int, 0, g.fats)
	for i := 1; i < g.fats; i++ {
		order = append(order, i)
	}
	if firstFirst {
		order = append([]int{0}, order...)
	} else {
		order = append(order, 0)
	}
	var out []step
	for _, copyIdx := range order {
		s := step{what: fmt.Sprintf("%s (FAT %d)", what, copyIdx+1), inPlace: true}
		for _, sec := range slices.Sorted(maps.Keys(touched)) {
			s.writes = append(s.writes, write{g.fatStart(copyIdx) + sec*g.sectorSize, slices.Clone(m.sectors[sec])})
		}
		out = append(out, s)
	}
	return out
}

// set writes entry c = v into the image, keeping the top four bits of
// FAT32 entries.
func (m *fatImage) set(c, v uint32, touched map[int64]bool) {
	off := m.t.entryOffset(c)
	n := int64(m.t.g.bits+7) / 8
	var cur uint32
	for i := range n {
		cur |= uint32(*m.byteRef(off+i, touched)) << (8 * i)
	}
	switch m.t.g.bits {
	case fat12:
		if c&1 != 0 {
			cur = cur&0x000f | v<<4
		} else {
			cur = cur&0xf000 | v&0xfff
		}
	case fat16:
		cur = v
	case fat32:
		cur = cur&0xf0000000 | v&0x0fffffff
	}
	for i := range n {
		*m.byteRef(off+i, touched) = byte(cur >> (8 * i))
	}
}

func (m *fatImage) byteRef(off int64, touched map[int64]bool) *byte {
	ss := m.t.g.sectorSize
	s := off / ss
	buf, ok := m.sectors[s]
	if !ok {
		m.t.byteAt(off) // cached on a writable volume
		buf = slices.Clone(m.t.sectors[s])
		m.sectors[s] = buf
	}
	touched[s] = true
	return &buf[off%ss]
}

// Directory slots are written in phases, so that an entry that moves
// (a rename keeps the chain) is never in two places at once:
const (
	phaseChange  = 1 // new, changed and removed entries
	phaseMoveOut = 2 // the old slots of a moved entry
	phaseDotDot  = 3 // ".." of a directory moved to another parent
	phaseMoveIn  = 4 // the new slots of a moved entry
	lastPhase    = phaseMoveIn
)

// dirPlan is a changed directory with the phase of each slot (0:
// unchanged).
type dirPlan struct {
	d     *dir
	phase []byte
}

// dirPhases finds the changed directories and gives each changed slot
// its phase.
func (f *FS) dirPhases() ([]dirPlan, error) {
	var plans []dirPlan
	for _, key := range slices.Sorted(maps.Keys(f.dirs)) {
		d := f.dirs[key]
		if !d.isNew && bytes.Equal(d.old, d.cur) {
			continue
		}
		p := dirPlan{d: d, phase: make([]byte, d.slots())}
		for i := range p.phase {
			if !bytes.Equal(d.old[i*slotSize:(i+1)*slotSize], d.slotOf(i)) {
				p.phase[i] = phaseChange
			}
		}
		if !d.isNew && !d.root && p.phase[1] != 0 {
			p.phase[1] = phaseDotDot
		}
		plans = append(plans, p)
	}
	if err := f.phaseMoves(plans); err != nil {
		return nil, err
	}
	return plans, nil
}

// span is the slots of one entry in a directory plan.
type span struct {
	p          *dirPlan
	start, end int // slots [start, end]
}

func (s span) sector(ss int64) (int64, int64) {
	per := int(ss / slotSize)
	return int64(s.start / per), int64(s.end / per)
}

func (s span) set(phase byte) {
	for i := s.start; i <= s.end; i++ {
		if s.p.phase[i] != 0 {
			s.p.phase[i] = phase
		}
	}
}

// phaseMoves finds entries that moved, keeping a chain used on the
// device: their new slots (phase 4) are written after their old slots
// are freed (phase 2). Both move in one write (phase 1) when they lie
// in the same sector of the same directory.
func (f *FS) phaseMoves(plans []dirPlan) error {
	in := map[uint32]span{}
	for i := range plans {
		p := &plans[i]
		es, _, err := parse(p.d.cur, p.d.key)
		if err != nil {
			return image.FileErrorf(f.name, "%w: %w", err, image.ErrCorrupt)
		}
		for _, e := range es {
			c := e.first(f.g.bits)
			s := span{p, e.slot - e.lfn, e.slot}
			if c == 0 || !f.fat.isOld(c) || !changed(p, s) {
				continue
			}
			if e.slot*slotSize < len(p.d.old) {
				o := entry{}
				copy(o.raw[:], p.d.old[e.slot*slotSize:])
				if !isFree(o.raw[:]) && o.raw[11] != attrLFN && o.first(f.g.bits) == c {
					continue // changed in place
				}
			}
			in[c] = s
			s.set(phaseMoveIn)
		}
	}
	for i := range plans {
		p := &plans[i]
		old, _, err := parse(p.d.old, p.d.key)
		if err != nil {
			continue // what the device holds was read before; an unreadable old state moves nothing
		}
		for _, e := range old {
			to, ok := in[e.first(f.g.bits)]
			if !ok || !isFree(p.d.slotOf(e.slot)) {
				continue
			}
			from := span{p, e.slot - e.lfn, e.slot}
			a1, a2 := from.sector(f.g.sectorSize)
			b1, b2 := to.sector(f.g.sectorSize)
			if from.p == to.p && a1 == a2 && b1 == b2 && a1 == b1 {
				to.set(phaseChange) // one sector write moves it
				continue
			}
			from.set(phaseMoveOut)
		}
	}
	return nil
}

func changed(p *dirPlan, s span) bool {
	for i := s.start; i <= s.end; i++ {
		if p.phase[i] != 0 {
			return true
		}
	}
	return false
}

// image is a directory's content once the phases up to p are written.
// Never-used slots before a used one read as deleted, so readers that
// stop at the first never-used slot (Windows, mtools) see every entry
// written so far.
func (p *dirPlan) image(upTo byte) []byte {
	out := slices.Clone(p.d.old)
	if upTo == 0 {
		return out
	}
	for i, ph := range p.phase {
		if ph != 0 && ph <= upTo {
			copy(out[i*slotSize:], p.d.slotOf(i))
		}
	}
	last := -1
	for i := 0; i < len(out); i += slotSize {
		if out[i] != 0 {
			last = i
		}
	}
	for i := 0; i < last; i += slotSize {
		if out[i] == 0 {
			out[i] = freeSlot
		}
	}
	return out
}

// offset is where byte b of a directory lies on the device.
func (f *FS) offset(d *dir, b int64) int64 {
	if d.key == 0 {
		return f.g.rootStart() + b
	}
	return f.g.clusterOffset(d.chain[b/f.g.clusterSize]) + b%f.g.clusterSize
}

// newClusters lists the writes to clusters free on the device: staged
// file data, new directories as they read after phase 1, and the zeroed
// clusters that extend old directories.
func (f *FS) newClusters(dirs []dirPlan) []write {
	var ws []write
	for _, c := range slices.Sorted(maps.Keys(f.data)) {
		ws = append(ws, write{f.g.clusterOffset(c), f.data[c]})
	}
	cs := f.g.clusterSize
	for _, p := range dirs {
		d := p.d
		var content []byte
		from := int64(d.oldLen)
		if d.isNew {
			content, from = p.image(phaseChange), 0
		} else {
			content = d.old
		}
		for b := from; b < int64(len(content)); b += cs {
			ws = append(ws, write{f.offset(d, b), content[b : b+cs]})
		}
	}
	return ws
}

// dirWrites lists the sectors of changed directories that phase p
// changes.
func (f *FS) dirWrites(dirs []dirPlan, p byte) []write {
	var ws []write
	ss := f.g.sectorSize
	for _, dp := range dirs {
		if dp.d.isNew && p == phaseChange {
			continue // written whole with the new clusters
		}
		before, after := dp.image(p-1), dp.image(p)
		for b := int64(0); b < int64(len(after)); b += ss {
			if !bytes.Equal(before[b:b+ss], after[b:b+ss]) {
				ws = append(ws, write{f.offset(dp.d, b), after[b : b+ss]})
			}
		}
	}
	return ws
}

var _ fs.FS = (*FS)(nil)
