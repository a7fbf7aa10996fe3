package iso9660

import (
	"bytes"
	"encoding/binary"
	"io"
	"sort"
	"time"

	"github.com/qimg/qimg/image"
)

// Options choose what Write records besides the primary tree.
type Options struct {
	// VolumeID is the volume label, up to 32 bytes, recorded as given:
	// cloud-init looks for "cidata" and "config-2" in lower case.
	VolumeID string
	// Joliet adds a Joliet (UCS-2 level 3) tree, for Windows.
	Joliet bool
	// RockRidge adds POSIX names, modes, times and symbolic links to the
	// primary tree, for Linux.
	RockRidge bool
	// Time stamps every record and the volume; the zero value means
	// time.Now. A fixed time makes the output reproducible.
	Time time.Time
	// UID and GID are the owner Rock Ridge records for every file.
	UID, GID uint32
}

// tdir is a directory of one tree (primary or Joliet) being laid out.
type tdir struct {
	n            *node
	parent       *tdir
	num          int    // path table number, from 1
	ident        []byte // identifier in its parent
	kids         []*tkid
	self, up     sysUse
	extent, size uint32
}

// tkid is one record of a directory other than "." and "..".
type tkid struct {
	n     *node
	ident []byte
	dir   *tdir // for directories
	su    sysUse
}

// layout holds everything Write computes before writing a byte.
type layout struct {
	opts    Options
	t       time.Time
	trees   [2][]*tdir // primary, Joliet (nil without)
	conts   []*contArea
	files   []*node
	pathLoc [2][2]uint32 // L and M path table of each tree
	pathLen [2]uint32
	meta    uint32 // blocks before file data
	blocks  uint32
}

// Write writes b as an ISO 9660 image to w, sequentially. File content
// is read from the sources given to b while writing.
func Write(w io.Writer, b *Builder, opts Options) error {
	if len(opts.VolumeID) > 32 {
		return image.Errorf(image.ErrInvalidArgument, "iso9660: volume id %q longer than 32 bytes", opts.VolumeID)
	}
	l := &layout{opts: opts, t: opts.Time}
	if l.t.IsZero() {
		l.t = time.Now()
	}
	l.plan(b.root)
	meta := l.metadata()
	if _, err := w.Write(meta); err != nil {
		return err
	}
	pad := make([]byte, sector)
	for _, f := range l.files {
		n, err := io.Copy(w, io.NewSectionReader(f.data, 0, f.size))
		if err != nil {
			return err
		}
		if n != f.size {
			return image.Errorf(image.ErrInvalidArgument, "iso9660: %s: read %d bytes of %d", f.name, n, f.size)
		}
		if r := f.size % sector; r != 0 {
			if _, err := w.Write(pad[:sector-r]); err != nil {
				return err
			}
		}
	}
	return nil
}

// tree lays out the directories of one tree breadth first, children in
// identifier order, which is the order the path table needs.
func (l *layout) tree(root *node, joliet bool) []*tdir {
	rr := l.opts.RockRidge && !joliet
	top := &tdir{n: root, num: 1, ident: []byte{0}}
	top.parent = top
	dirs := []*tdir{top}
	for i := 0; i < len(dirs); i++ {
		d := dirs[i]
		var names []string
		for _, name := range sortedNames(d.n) {
			if joliet && d.n.children[name].isSymlink() {
				continue
			}
			names = append(names, name)
		}
		idents := make([][]byte, len(names))
		if joliet {
			for j, u := range jolietNames(names) {
				idents[j] = ucs2(u)
			}
		} else {
			isDir := make([]bool, len(names))
			for j, name := range names {
				isDir[j] = d.n.children[name].isDir()
			}
			for j, id := range isoNames(names, isDir) {
				idents[j] = []byte(id)
			}
		}
		for j, name := range names {
			d.kids = append(d.kids, &tkid{n: d.n.children[name], ident: idents[j]})
		}
		sort.Slice(d.kids, func(a, b int) bool { return bytes.Compare(d.kids[a].ident, d.kids[b].ident) < 0 })
		for _, k := range d.kids {
			if k.n.isDir() {
				k.dir = &tdir{n: k.n, parent: d, num: len(dirs) + 1, ident: k.ident}
				dirs = append(dirs, k.dir)
			}
			if rr {
				k.su = splitSU(l.rrEntries(k.n, false), suRoom(len(k.ident)))
			}
		}
		if rr {
			self := l.rrEntries(d.n, true)
			if d == top {
				self = append(append([][]byte{spEntry()}, self...), erEntry())
			}
			d.self = splitSU(self, suRoom(1))
			d.up = splitSU(l.rrEntries(d.parent.n, true), suRoom(1))
		}
	}
	return dirs
}

// rrEntries are the Rock Ridge entries of n's record; dot leaves out the
// name, for "." and "..".
func (l *layout) rrEntries(n *node, dot bool) [][]byte {
	links := uint32(1)
	if n.isDir() {
		links = 2
		for _, c := range n.children {
			if c.isDir() {
				links++
			}
		}
	}
	es := [][]byte{rrEntry(), pxEntry(n.mode, links, l.opts.UID, l.opts.GID, n.ino), tfEntry(l.t)}
	if !dot {
		es = append(es, nmEntries(n.name)...)
	}
	if n.isSymlink() {
		es = append(es, slEntries(n.target)...)
	}
	return es
}

// dirSize is the size of a directory's extent: records never cross a
// block.
func dirSize(d *tdir) uint32 {
	off := 0
	add := func(n int) {
		if off%sector+n > sector {
			off += sector - off%sector
		}
		off += n
	}
	add(recordLen(1, d.self.len()))
	add(recordLen(1, d.up.len()))
	for _, k := range d.kids {
		add(recordLen(len(k.ident), k.su.len()))
	}
	return uint32((off + sector - 1) / sector * sector)
}

func blocksOf(n uint32) uint32 { return (n + sector - 1) / sector }

// plan numbers the nodes and places every structure.
func (l *layout) plan(root *node) {
	var ino uint32
	var number func(n *node)
	number = func(n *node) {
		ino++
		n.ino = ino
		for _, name := range sortedNames(n) {
			number(n.children[name])
		}
	}
	number(root)
	l.trees[0] = l.tree(root, false)
	if l.opts.Joliet {
		l.trees[1] = l.tree(root, true)
	}
	next := uint32(16 + 2) // system area, primary descriptor, terminator
	if l.opts.Joliet {
		next++
	}
	for t, dirs := range l.trees {
		if dirs == nil {
			continue
		}
		for _, d := range dirs {
			l.pathLen[t] += uint32(len(pathEntry(binary.LittleEndian, d.ident, 0, 0)))
		}
		for m := range 2 {
			l.pathLoc[t][m] = next
			next += blocksOf(l.pathLen[t])
		}
	}
	for _, dirs := range l.trees {
		for _, d := range dirs {
			d.size = dirSize(d)
			d.extent = next
			next += d.size / sector
		}
	}
	// Continuation areas pack into blocks, none crossing a block.
	var off uint32
	place := func(su sysUse) {
		for c := su.cont; c != nil; c = c.next {
			if off+uint32(c.size()) > sector {
				next, off = next+1, 0
			}
			c.block, c.off = next, off
			off += uint32(c.size())
			l.conts = append(l.conts, c)
		}
	}
	for _, d := range l.trees[0] {
		place(d.self)
		place(d.up)
		for _, k := range d.kids {
			place(k.su)
		}
	}
	if off > 0 {
		next++
	}
	l.meta = next
	for _, d := range l.trees[0] {
		for _, k := range d.kids {
			if k.n.isDir() || k.n.isSymlink() || k.n.size == 0 {
				continue
			}
			k.n.extent = next
			next += blocksOf(uint32(k.n.size))
			l.files = append(l.files, k.n)
		}
	}
	l.blocks = next
}

// metadata renders every block before the file data.
func (l *layout) metadata() []byte {
	buf := make([]byte, int(l.meta)*sector)
	at := func(block uint32) []byte { return buf[int(block)*sector:] }
	vd := func(t int) []byte {
		root := l.trees[t][0]
		v := volumeDescriptor{typ: 1, text: asciiText, volumeID: l.opts.VolumeID, blocks: l.blocks,
			pathSize: l.pathLen[t], lPath: l.pathLoc[t][0], mPath: l.pathLoc[t][1],
			root: dirRecord([]byte{0}, root.extent, root.size, true, l.t, nil), t: l.t}
		if t == 1 {
			v.typ, v.escape, v.text = 2, jolietEscapes[2], jolietText
		}
		return v.bytes()
	}
	copy(at(16), vd(0))
	term := uint32(17)
	if l.trees[1] != nil {
		copy(at(17), vd(1))
		term++
	}
	copy(at(term), []byte{255, 'C', 'D', '0', '0', '1', 1})
	for t, dirs := range l.trees {
		for m, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			var pt []byte
			for _, d := range dirs {
				pt = append(pt, pathEntry(bo, d.ident, d.extent, uint16(d.parent.num))...)
			}
			copy(at(l.pathLoc[t][m]), pt)
		}
		for _, d := range dirs {
			l.writeDir(at(d.extent)[:d.size], d)
		}
	}
	for _, c := range l.conts {
		copy(at(c.block)[c.off:], c.bytes())
	}
	return buf
}

// writeDir renders one directory's records into its extent.
func (l *layout) writeDir(ext []byte, d *tdir) {
	off := 0
	put := func(r []byte) {
		if off%sector+len(r) > sector {
			off += sector - off%sector
		}
		off += copy(ext[off:], r)
	}
	put(dirRecord([]byte{0}, d.extent, d.size, true, l.t, d.self.bytes()))
	put(dirRecord([]byte{1}, d.parent.extent, d.parent.size, true, l.t, d.up.bytes()))
	for _, k := range d.kids {
		extent, size := k.n.extent, uint32(k.n.size)
		if k.dir != nil {
			extent, size = k.dir.extent, k.dir.size
		}
		put(dirRecord(k.ident, extent, size, k.dir != nil, l.t, k.su.bytes()))
	}
}
