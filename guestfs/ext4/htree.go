package ext4

import (
	"cmp"
	"encoding/binary"
	"slices"

	"github.com/qimg/qimg/image"
)

// An htree directory's block 0 is its root: "." and "..", whose record
// spans the rest of the block, then dx_root_info and the index entries
// (hash, block) of the first level. Inner nodes are blocks whose single
// fake entry spans the block, then a count/limit header and entries.
const (
	dxRootInfo  = 0x18
	dxNodeCount = 8
)

// dxLevel is one index node on the path to a leaf.
type dxLevel struct {
	pblk     uint64
	b        []byte
	countOff int
	at       int // the entry taken
}

func (l *dxLevel) count() int { return int(binary.LittleEndian.Uint16(l.b[l.countOff+2:])) }
func (l *dxLevel) limit() int { return int(binary.LittleEndian.Uint16(l.b[l.countOff:])) }

// entry returns index entry i's hash and logical block (entry 0's hash
// is implicitly 0; its slot holds limit and count).
func (l *dxLevel) entry(i int) (uint32, uint64) {
	le := binary.LittleEndian
	e := l.b[l.countOff+8*i:]
	h := uint32(0)
	if i > 0 {
		h = le.Uint32(e)
	}
	return h, uint64(le.Uint32(e[4:]) & 0x0FFFFFFF)
}

// sealDx writes the checksum of an index block (root or node), kept in a
// tail after limit entries.
func (f *FS) sealDx(dir *Inode, b []byte, countOff int) error {
	if !f.sb.metadataCsum() {
		return nil
	}
	le := binary.LittleEndian
	limit, count := int(le.Uint16(b[countOff:])), int(le.Uint16(b[countOff+2:]))
	tail := countOff + 8*limit
	if count > limit || tail+8 > len(b) {
		return f.corrupt("directory %d index: no room for its checksum", dir.Ino)
	}
	c := crc32c(f.inodeSeed(dir), b[:countOff+8*count])
	c = crc32c(c, b[tail:tail+4])
	c = crc32c(c, []byte{0, 0, 0, 0}) // the checksum field itself
	le.PutUint32(b[tail+4:], c)
	return nil
}

// dirHashVersion is the hash the root names, unsigned if the superblock
// says names hash unsigned.
func (f *FS) dirHashVersion(root []byte) uint8 {
	v := root[dxRootInfo+4]
	if f.sb.unsignedDir && v <= hashTea {
		v += hashUnsigned
	}
	return v
}

// dxPath descends an htree from the root to the leaf for hash h.
func (f *FS) dxPath(dir *Inode, h uint32) ([]dxLevel, uint64, error) {
	p, _, err := f.mapBlock(dir, 0)
	if err != nil || p == 0 {
		return nil, 0, f.corrupt("directory %d has no root block", dir.Ino)
	}
	root, err := f.metaBlock(p)
	if err != nil {
		return nil, 0, err
	}
	infoLen, levels := int(root[dxRootInfo+5]), int(root[dxRootInfo+6])
	maxLevels := 2
	if f.sb.has(incompatLargedir) {
		maxLevels = 3
	}
	if infoLen != 8 || levels >= maxLevels {
		return nil, 0, f.corrupt("directory %d index root: info length %d, %d levels", dir.Ino, infoLen, levels)
	}
	cur := dxLevel{pblk: p, b: root, countOff: dxRootInfo + infoLen}
	var path []dxLevel
	for {
		n := cur.count()
		if n == 0 || n > cur.limit() || cur.countOff+8*cur.limit() > len(cur.b) {
			return nil, 0, f.corrupt("directory %d index: %d of %d entries", dir.Ino, n, cur.limit())
		}
		cur.at = 0
		for i := 1; i < n; i++ {
			if eh, _ := cur.entry(i); eh > h {
				break
			}
			cur.at = i
		}
		path = append(path, cur)
		_, child := cur.entry(cur.at)
		if len(path) > levels {
			return path, child, nil
		}
		cp, _, err := f.mapBlock(dir, uint32(child))
		if err != nil || cp == 0 {
			return nil, 0, f.corrupt("directory %d index names block %d, not in the directory", dir.Ino, child)
		}
		nb, err := f.metaBlock(cp)
		if err != nil {
			return nil, 0, err
		}
		cur = dxLevel{pblk: cp, b: nb, countOff: dxNodeCount}
	}
}

// htreeAdd inserts an entry into an indexed directory: into the leaf its
// hash leads to, splitting that leaf in two by hash when it is full.
func (f *FS) htreeAdd(dir *Inode, name []byte, ino uint32, ft uint8) error {
	rootP, _, err := f.mapBlock(dir, 0)
	if err != nil || rootP == 0 {
		return f.corrupt("directory %d has no root block", dir.Ino)
	}
	root, err := f.metaBlock(rootP)
	if err != nil {
		return err
	}
	version := f.dirHashVersion(root)
	h, ok := nameHash(version, name, f.sb.hashSeed)
	if !ok {
		return image.FileErrorf(f.name, "ext4: directory %d uses hash %d, which qimg does not compute: %w", dir.Ino, version, image.ErrUnsupported)
	}
	path, leafL, err := f.dxPath(dir, h)
	if err != nil {
		return err
	}
	leafP, _, err := f.mapBlock(dir, uint32(leafL))
	if err != nil || leafP == 0 {
		return f.corrupt("directory %d index names block %d, not in the directory", dir.Ino, leafL)
	}
	leaf, err := f.metaBlock(leafP)
	if err != nil {
		return err
	}
	if f.insertInLeaf(leaf, name, ino, ft) {
		f.sealLeaf(dir, leaf)
		return nil
	}
	return f.splitLeaf(dir, path, leaf, version, dirent{name: name, ino: ino, ft: ft})
}

// dirent is a live entry moved between leaves.
type dirent struct {
	name []byte
	ino  uint32
	ft   uint8
	hash uint32
}

// splitLeaf moves the upper half (by hash) of a full leaf and the new
// entry into a new leaf, and indexes it in the lowest node of path.
func (f *FS) splitLeaf(dir *Inode, path []dxLevel, leaf []byte, version uint8, add dirent) error {
	var ents []dirent
	for off := 0; off < f.leafArea(); {
		ino, rl, n := f.entryAt(leaf, off)
		if rl < 8 {
			return f.corrupt("directory %d: bad leaf", dir.Ino)
		}
		if ino != 0 {
			ents = append(ents, dirent{name: append([]byte(nil), n...), ino: ino, ft: leaf[off+7]})
		}
		off += rl
	}
	ents = append(ents, add)
	for i := range ents {
		ents[i].hash, _ = nameHash(version, ents[i].name, f.sb.hashSeed)
	}
	slices.SortStableFunc(ents, func(a, b dirent) int { return cmp.Compare(a.hash, b.hash) })
	// Split where the hash changes, near the middle: entries of one hash
	// must stay in one leaf for lookups to find them.
	mid := -1
	for d := 0; d < len(ents); d++ {
		for _, m := range []int{len(ents)/2 + d, len(ents)/2 - d} {
			if m > 0 && m < len(ents) && ents[m].hash != ents[m-1].hash {
				mid = m
				break
			}
		}
		if mid > 0 {
			break
		}
	}
	if mid < 0 {
		return image.FileErrorf(f.name, "ext4: directory %d: too many names of one hash to split a leaf: %w", dir.Ino, image.ErrUnsupported)
	}
	node, err := f.makeRoom(dir, path)
	if err != nil {
		return err
	}
	bs := uint64(f.sb.blockSize)
	newL := (dir.Size + bs - 1) / bs
	nb, err := f.appendDirBlock(dir)
	if err != nil {
		return err
	}
	f.fillLeaf(leaf, ents[:mid])
	f.fillLeaf(nb, ents[mid:])
	f.sealLeaf(dir, leaf)
	f.sealLeaf(dir, nb)
	return f.insertIndex(dir, node, ents[mid].hash, newL)
}

// insertIndex adds (hash, block) to a node after the entry taken.
func (f *FS) insertIndex(dir *Inode, node *dxLevel, hash uint32, lblk uint64) error {
	le := binary.LittleEndian
	at := node.countOff + 8*(node.at+1)
	end := node.countOff + 8*node.count()
	copy(node.b[at+8:end+8], node.b[at:end])
	le.PutUint32(node.b[at:], hash)
	le.PutUint32(node.b[at+4:], uint32(lblk))
	le.PutUint16(node.b[node.countOff+2:], uint16(node.count()+1))
	return f.sealDx(dir, node.b, node.countOff)
}

// nodeLimit is how many entries an inner index node holds.
func (f *FS) nodeLimit() int {
	n := int(f.sb.blockSize-dxNodeCount) / 8
	if f.sb.metadataCsum() {
		n-- // the tail
	}
	return n
}

// newIndexNode appends an inner index node to dir holding the given
// entries (entry 0's hash slot is rewritten with limit and count).
func (f *FS) newIndexNode(dir *Inode, entries []byte) (uint64, []byte, error) {
	bs := uint64(f.sb.blockSize)
	lblk := (dir.Size + bs - 1) / bs
	b, err := f.appendDirBlock(dir)
	if err != nil {
		return 0, nil, err
	}
	clear(b)
	f.putDirent(b, 0, int(bs), nil, 0) // the fake entry spanning the block
	copy(b[dxNodeCount:], entries)
	le := binary.LittleEndian
	le.PutUint16(b[dxNodeCount:], uint16(f.nodeLimit()))
	le.PutUint16(b[dxNodeCount+2:], uint16(len(entries)/8))
	return lblk, b, f.sealDx(dir, b, dxNodeCount)
}

// makeRoom returns the node of path (its last) to insert one entry in,
// making room when it is full: a full root moves its entries to a new
// node one level down; a full inner node splits in two, indexed in its
// parent. The index grows to the levels the file system allows (two,
// three with large_dir), as the kernel grows it.
func (f *FS) makeRoom(dir *Inode, path []dxLevel) (*dxLevel, error) {
	node := &path[len(path)-1]
	if node.count() < node.limit() {
		return node, nil
	}
	le := binary.LittleEndian
	maxLevels := 2
	if f.sb.has(incompatLargedir) {
		maxLevels = 3
	}
	full := image.FileErrorf(f.name, "ext4: directory %d: its index is full at %d levels: %w", dir.Ino, maxLevels, image.ErrLimit)
	if len(path) == 1 {
		levels := int(node.b[dxRootInfo+6])
		if levels+1 >= maxLevels {
			return nil, full
		}
		entries := node.b[node.countOff : node.countOff+8*node.count()]
		lblk, nb, err := f.newIndexNode(dir, entries)
		if err != nil {
			return nil, err
		}
		le.PutUint16(node.b[node.countOff+2:], 1)
		le.PutUint32(node.b[node.countOff+4:], uint32(lblk))
		node.b[dxRootInfo+6] = byte(levels + 1)
		if err := f.sealDx(dir, node.b, node.countOff); err != nil {
			return nil, err
		}
		return &dxLevel{b: nb, countOff: dxNodeCount, at: node.at}, nil
	}
	parent, err := f.makeRoom(dir, path[:len(path)-1])
	if err != nil {
		return nil, err
	}
	n := node.count()
	mid := n / 2
	moved := append([]byte(nil), node.b[node.countOff+8*mid:node.countOff+8*n]...)
	splitHash := le.Uint32(moved)
	lblk, nb, err := f.newIndexNode(dir, moved)
	if err != nil {
		return nil, err
	}
	le.PutUint16(node.b[node.countOff+2:], uint16(mid))
	if err := f.sealDx(dir, node.b, node.countOff); err != nil {
		return nil, err
	}
	if err := f.insertIndex(dir, parent, splitHash, lblk); err != nil {
		return nil, err
	}
	if node.at >= mid {
		return &dxLevel{b: nb, countOff: dxNodeCount, at: node.at - mid}, nil
	}
	return node, nil
}

// fillLeaf rewrites a leaf block to hold ents, the last record taking the
// rest of the area.
func (f *FS) fillLeaf(b []byte, ents []dirent) {
	clear(b)
	area := f.leafArea()
	off := 0
	for i, e := range ents {
		rl := direntSize(len(e.name))
		if i == len(ents)-1 {
			rl = area - off
		}
		f.putDirent(b[off:], e.ino, rl, e.name, e.ft)
		off += rl
	}
	if len(ents) == 0 {
		f.putDirent(b, 0, area, nil, 0)
	}
}
