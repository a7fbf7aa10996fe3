package fat

import (
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/qimg/qimg/image"
)

// FS is a FAT12, FAT16 or FAT32 volume opened by Open or OpenWritable.
// It implements fs.FS, fs.ReadDirFS and fs.StatFS, and reads see the
// changes staged since the last Commit. It is safe for concurrent use if
// its device is.
type FS struct {
	mu      sync.Mutex
	dev     io.ReaderAt
	w       io.WriterAt // nil when read-only
	name    string
	size    int64
	g       *geometry
	fat     *table
	rootKey uint32            // the root's key in dirs: 0 or the FAT32 root cluster
	dirs    map[uint32]*dir   // directories read or staged, by first cluster
	data    map[uint32][]byte // staged content of clusters allocated to files
	label   string
	now     func() time.Time
	broken  error // a Commit that failed part way
}

// Open reads the FAT volume held in r, size bytes, read-only; name
// names it in errors.
func Open(r io.ReaderAt, size int64, name string) (*FS, error) {
	return open(r, nil, size, name)
}

// Device is what OpenWritable edits: a volume that can be read and
// written in place. A Device that also has a Commit(context.Context)
// error method (a redo log, package guestfs/redo) holds the writes until
// that is called, at the end of FS.Commit: the commit is then all or
// nothing.
type Device interface {
	io.ReaderAt
	io.WriterAt
}

// OpenWritable opens the FAT volume on dev for editing. Changes are
// staged in memory and reach dev only in Commit. A volume whose dirty
// bit is set, whose FAT copies differ or whose FAT32 mirroring is off
// is refused: fsck.fat should look at it first.
func OpenWritable(dev Device, size int64, name string) (*FS, error) {
	return open(dev, dev, size, name)
}

func open(r io.ReaderAt, w io.WriterAt, size int64, name string) (*FS, error) {
	g, err := readGeometry(r, size, name)
	if err != nil {
		return nil, err
	}
	f := &FS{dev: r, w: w, name: name, size: size, g: g, now: time.Now}
	if g.bits == fat32 {
		f.rootKey = g.rootCluster
	}
	if err := f.reset(); err != nil {
		return nil, err
	}
	root, err := f.loadDir(f.rootKey)
	if err != nil {
		return nil, err
	}
	if _, f.label, err = parse(root.cur, root.key); err != nil {
		return nil, image.FileErrorf(name, "%w: %w", err, image.ErrCorrupt)
	}
	if f.label == "" || f.label == "NO NAME" {
		f.label = g.label
	}
	if f.label == "NO NAME" {
		f.label = ""
	}
	return f, nil
}

// reset drops every cache and staged change and, for a writable
// volume, reads the FAT whole and checks it can be edited.
func (f *FS) reset() error {
	f.fat = &table{dev: f.dev, name: f.name, g: f.g, start: f.g.fatStart(f.g.activeFAT),
		sectors: map[int64][]byte{}, staged: map[uint32]uint32{}}
	f.dirs, f.data = map[uint32]*dir{}, map[uint32][]byte{}
	if f.w == nil {
		return nil
	}
	switch {
	case !f.g.mirrored:
		return image.FileErrorf(f.name, "FAT32 mirroring is off (only FAT %d is active); qimg edits mirrored FATs only: %w", f.g.activeFAT+1, image.ErrUnsupported)
	case f.g.dirty:
		return image.FileErrorf(f.name, "the volume's dirty bit is set (not cleanly unmounted); run fsck.fat before editing it: %w", image.ErrUnsupported)
	}
	if err := f.fat.scan(); err != nil {
		return err
	}
	if f.g.bits != fat12 {
		v, err := f.fat.old(1)
		if err != nil {
			return err
		}
		if clean := f.fat.eoc()>>1 + 1; v&clean == 0 { // bit 15 (FAT16) or 27 (FAT32)
			return image.FileErrorf(f.name, "FAT entry 1 says the volume was not cleanly unmounted; run fsck.fat before editing it: %w", image.ErrUnsupported)
		}
	}
	return nil
}

// Label returns the volume label ("EFI", "CIDATA"), or "" for none.
func (f *FS) Label() string { return f.label }

// Type returns "FAT12", "FAT16" or "FAT32".
func (f *FS) Type() string {
	return map[int]string{fat12: "FAT12", fat16: "FAT16", fat32: "FAT32"}[f.g.bits]
}

// node is what a name resolves to: the root (parent nil) or an entry of
// parent.
type node struct {
	parent *dir
	e      entry
	path   []uint32 // keys of the directories from the root down to parent
}

func (n *node) isDir() bool { return n.parent == nil || n.e.isDir() }

// key is the directory key of a directory node.
func (f *FS) key(n *node) uint32 {
	if n.parent == nil {
		return f.rootKey
	}
	return n.e.first(f.g.bits)
}

// lookup resolves name (an fs.ValidPath) to a node. A directory entry
// that leads back to a directory on its own path is corruption.
func (f *FS) lookup(op, name string) (*node, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if f.broken != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: f.broken}
	}
	n := &node{}
	if name == "." {
		return n, nil
	}
	for _, c := range strings.Split(name, "/") {
		if !n.isDir() {
			return nil, &fs.PathError{Op: op, Path: name, Err: errNotDir}
		}
		key := f.key(n)
		if key == 0 && n.parent != nil || slices.Contains(n.path, key) {
			return nil, &fs.PathError{Op: op, Path: name, Err: image.FileErrorf(f.name, "directory entry %q loops to cluster %d: %w", n.e.name, key, image.ErrCorrupt)}
		}
		d, err := f.loadDir(key)
		if err != nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: err}
		}
		e, err := f.find(d, c)
		if err != nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: err}
		}
		if e == nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		n = &node{parent: d, e: *e, path: append(slices.Clip(n.path), key)}
	}
	return n, nil
}

// dirOf loads the directory a directory node names.
func (f *FS) dirOf(op, name string, n *node) (*dir, error) {
	key := f.key(n)
	if key == 0 && n.parent != nil || slices.Contains(n.path, key) {
		return nil, &fs.PathError{Op: op, Path: name, Err: image.FileErrorf(f.name, "directory entry %q loops to cluster %d: %w", n.e.name, key, image.ErrCorrupt)}
	}
	d, err := f.loadDir(key)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return d, nil
}

// Open opens a file or directory.
func (f *FS) Open(name string) (fs.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup("open", name)
	if err != nil {
		return nil, err
	}
	info := f.info(n)
	if n.isDir() {
		d, err := f.dirOf("open", name, n)
		if err != nil {
			return nil, err
		}
		es, err := f.dirEntries(d)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &dirFile{info: info, entries: es}, nil
	}
	chain, err := f.fileChain(&n.e)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	r := &chainReader{f: f, chain: chain}
	return &file{info: info, SectionReader: io.NewSectionReader(r, 0, int64(n.e.size()))}, nil
}

// fileChain lists the clusters holding a file's bytes.
func (f *FS) fileChain(e *entry) ([]uint32, error) {
	size := int64(e.size())
	if size == 0 {
		return nil, nil
	}
	need := (size + f.g.clusterSize - 1) / f.g.clusterSize
	if need > int64(f.g.clusters) {
		return nil, image.FileErrorf(f.name, "file %q of %d bytes is larger than the volume: %w", e.name, size, image.ErrCorrupt)
	}
	chain, err := f.fat.chain(e.first(f.g.bits), int(need))
	if err != nil {
		return nil, err
	}
	if int64(len(chain)) < need {
		return nil, image.FileErrorf(f.name, "file %q of %d bytes has only %d clusters: %w", e.name, size, len(chain), image.ErrCorrupt)
	}
	return chain, nil
}

// Stat describes a file or directory (FAT has no links to follow).
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	return f.info(n), nil
}

// Lstat is Stat: FAT has no symbolic links.
func (f *FS) Lstat(name string) (fs.FileInfo, error) { return f.Stat(name) }

// ReadLink fails: FAT has no symbolic links.
func (f *FS) ReadLink(name string) (string, error) {
	if _, err := f.Stat(name); err != nil {
		return "", err
	}
	return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
}

// ReadDir lists a directory in name order.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if !n.isDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errNotDir}
	}
	d, err := f.dirOf("readdir", name, n)
	if err != nil {
		return nil, err
	}
	es, err := f.dirEntries(d)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return es, nil
}

func (f *FS) dirEntries(d *dir) ([]fs.DirEntry, error) {
	es, err := f.list(d)
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, len(es))
	for i := range es {
		out[i] = f.info(&node{parent: d, e: es[i]})
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// chainReader reads a file's clusters as one run of bytes, staged
// clusters from memory.
type chainReader struct {
	f     *FS
	chain []uint32
}

func (r *chainReader) ReadAt(p []byte, off int64) (int, error) {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	return r.readAt(p, off)
}

// readAt is ReadAt with the FS locked.
func (r *chainReader) readAt(p []byte, off int64) (int, error) {
	cs := r.f.g.clusterSize
	done := 0
	for len(p) > 0 {
		i := off / cs
		if i >= int64(len(r.chain)) {
			return done, io.EOF
		}
		c, in := r.chain[i], off%cs
		m := min(int64(len(p)), cs-in)
		if buf, ok := r.f.data[c]; ok {
			copy(p[:m], buf[in:])
		} else if _, err := r.f.dev.ReadAt(p[:m], r.f.g.clusterOffset(c)+in); err != nil {
			return done, image.FileErrorf(r.f.name, "reading cluster %d: %w", c, ioErr(err))
		}
		p, off, done = p[m:], off+m, done+int(m)
	}
	return done, nil
}
