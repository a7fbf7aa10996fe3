package fstree

import (
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/qimg/qimg/image"
)

// sample is / with etc/hostname, a dir, symlinks absolute, relative,
// climbing above the root, and a loop.
func sample() *memTree {
	t := newMemTree()
	etc := t.add(1, "etc", &memNode{mode: fs.ModeDir | 0o755})
	t.add(etc, "hostname", &memNode{mode: 0o644, data: []byte("guest\n")})
	t.add(1, "abs", &memNode{mode: fs.ModeSymlink | 0o777, target: "/etc/hostname"})
	t.add(etc, "rel", &memNode{mode: fs.ModeSymlink | 0o777, target: "../../../../etc"})
	t.add(1, "loop", &memNode{mode: fs.ModeSymlink | 0o777, target: "loop"})
	t.add(1, "file", &memNode{mode: 0o644, data: []byte("x")})
	return t
}

func TestResolve(t *testing.T) {
	tree := sample()
	for _, c := range []struct {
		name   string
		follow bool
		want   int   // inode, when no error
		err    error // errors.Is
	}{
		{".", true, 1, nil},
		{"etc/hostname", true, 3, nil},
		{"abs", true, 3, nil},
		{"abs", false, 4, nil},
		{"etc/rel/hostname", true, 3, nil}, // ".." stops at the root
		{"etc/rel", false, 5, nil},
		{"loop", true, 0, fs.ErrInvalid},
		{"loop", false, 6, nil},
		{"loop/x", false, 0, fs.ErrInvalid}, // a link in the middle is followed
		{"missing", true, 0, fs.ErrNotExist},
		{"file/x", true, 0, fs.ErrNotExist},
		{"/etc", true, 0, fs.ErrInvalid},
		{"etc/../etc", true, 0, fs.ErrInvalid}, // not a valid fs.FS path
	} {
		in, err := Resolve[*memNode](tree, "open", c.name, c.follow)
		if c.err != nil {
			var pe *fs.PathError
			if !errors.Is(err, c.err) || !errors.As(err, &pe) || pe.Op != "open" || pe.Path != c.name {
				t.Errorf("Resolve(%q, %v) = %v, want a PathError wrapping %v", c.name, c.follow, err, c.err)
			}
			continue
		}
		if err != nil || in.ino != c.want {
			t.Errorf("Resolve(%q, %v) = inode %v, %v; want %d", c.name, c.follow, in, err, c.want)
		}
	}
}

func TestResolveBounds(t *testing.T) {
	// A directory that is its own child: a path down it is refused once
	// deeper than MaxDepth, with the tree's own limit error.
	tree := newMemTree()
	d := tree.add(1, "d", &memNode{mode: fs.ModeDir | 0o755})
	tree.nodes[d].names["d"] = d
	deep := strings.Repeat("d/", MaxDepth+1) + "d"
	if _, err := Resolve[*memNode](tree, "stat", deep, true); !errors.Is(err, image.ErrLimit) {
		t.Errorf("a path %d directories deep: %v, want ErrLimit", MaxDepth+2, err)
	}
	if _, err := Resolve[*memNode](tree, "stat", strings.Repeat("d/", MaxDepth-1)+"d", true); err != nil {
		t.Errorf("a path %d directories deep: %v", MaxDepth, err)
	}
	// A link whose target multiplies the path's components is corrupt.
	tree.add(1, "wide", &memNode{mode: fs.ModeSymlink, target: strings.Repeat("./", maxComponents)})
	if _, err := Resolve[*memNode](tree, "stat", "wide", true); !errors.Is(err, image.ErrCorrupt) {
		t.Errorf("a link of %d components: %v, want ErrCorrupt", maxComponents, err)
	}
}

func TestCache(t *testing.T) {
	c := NewCache[int, string](3)
	c.Put(1, "a", 1)
	c.Put(2, "b", 2)
	if v, ok := c.Get(1); !ok || v != "a" {
		t.Fatalf("Get(1) = %q, %v", v, ok)
	}
	c.Put(3, "c", 1) // 4 > 3: emptied first
	if _, ok := c.Get(1); ok {
		t.Error("the cache kept entries past its bound")
	}
	if v, ok := c.Get(3); !ok || v != "c" {
		t.Errorf("Get(3) = %q, %v after the reset", v, ok)
	}
	c.Put(4, "huge", 4)
	if _, ok := c.Get(4); ok {
		t.Error("a value heavier than the cache was kept")
	}
	c.Put(5, "e", 1)
	c.Update(5, func(string) int { return 1 })
	c.Delete(5)
	if _, ok := c.Get(5); ok {
		t.Error("Delete kept the entry")
	}
	if v, err := c.Load(7, func(int) (string, error) { return "g", nil }); err != nil || v != "g" {
		t.Errorf("Load(7) = %q, %v", v, err)
	}
	if v, _ := c.Get(7); v != "g" {
		t.Error("Load did not keep the value")
	}
	c.Put(6, "f", 1)
	c.Clear()
	if _, ok := c.Get(6); ok {
		t.Error("Clear kept the entry")
	}
}

func TestDirs(t *testing.T) {
	tree := sample()
	dirs := NewDirs[int](100, 4)
	scans := 0
	walk := func(fn func([]byte, int, uint8) bool) error { scans++; return tree.walk(1)(fn) }
	tooMany := func(max int) error { return image.FileErrorf("mem", "more than %d: %w", max, image.ErrLimit) }
	if _, err := dirs.Lookup(1, "etc", walk, tooMany); !errors.Is(err, image.ErrLimit) {
		t.Fatalf("a directory of 6 entries with a limit of 4: %v", err)
	}
	dirs = NewDirs[int](100, 10)
	for range 3 {
		if ino, err := dirs.Lookup(1, "etc", walk, tooMany); err != nil || ino != 2 {
			t.Fatalf("Lookup(etc) = %d, %v", ino, err)
		}
	}
	if scans != 2 { // the refused scan, then one for three lookups
		t.Errorf("%d scans, want 2: the directory was not cached", scans)
	}
	if _, err := dirs.Lookup(1, "new", walk, tooMany); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Lookup(new) before the edit: %v", err)
	}
	dirs.Changed(1, "new", 9, false)
	if ino, err := dirs.Lookup(1, "new", walk, tooMany); err != nil || ino != 9 {
		t.Errorf("Lookup(new) after Changed = %d, %v", ino, err)
	}
	dirs.Changed(1, "etc", 0, true)
	if _, err := dirs.Lookup(1, "etc", walk, tooMany); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Lookup(etc) after its removal: %v", err)
	}
}

func TestList(t *testing.T) {
	tree := sample()
	ents, err := List[int](tree, tree.walk(1), 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name()+":"+e.Type().String())
	}
	if got := strings.Join(names, " "); got != "abs:L--------- etc:d--------- file:---------- loop:L---------" {
		t.Errorf("List = %s", got)
	}
	if ino, ok := Inode[int](tree, ents[1]); !ok || ino != 2 {
		t.Errorf("Inode(etc) = %d, %v", ino, ok)
	}
	if _, ok := Inode[int](sample(), ents[1]); ok {
		t.Error("Inode took an entry of another tree")
	}
}

func TestFileReads(t *testing.T) {
	tree := newMemTree()
	data := pattern(3*windowSize + 123)
	ino := tree.add(1, "big", &memNode{mode: 0o644, data: data})
	md := &memData{t: tree, n: tree.nodes[ino]}
	f := NewFile("big", md)
	if err := iotest.TestReader(f, data); err != nil {
		t.Fatal(err)
	}
	// Small reads inside one window cost one read of the data.
	md.reads = 0
	buf := make([]byte, 100)
	for off := int64(windowSize); off < 2*windowSize-100; off += 1000 {
		if _, err := f.ReadAt(buf, off); err != nil || string(buf) != string(data[off:off+100]) {
			t.Fatalf("ReadAt(%d) = %v", off, err)
		}
	}
	if md.reads != 1 {
		t.Errorf("%d reads of the data for small reads in one window, want 1", md.reads)
	}
	// A small read across a window's end and at the file's end.
	if n, err := f.ReadAt(buf, 2*windowSize-50); err != nil || n != 100 || string(buf) != string(data[2*windowSize-50:2*windowSize+50]) {
		t.Errorf("read across a window: %d, %v", n, err)
	}
	if n, err := f.ReadAt(buf, int64(len(data))-10); err != io.EOF || n != 10 {
		t.Errorf("read at the end: %d, %v; want 10, EOF", n, err)
	}
	all, err := f.ReadAll()
	if err != nil || string(all) != string(data) {
		t.Errorf("ReadAll: %d bytes, %v", len(all), err)
	}
	f.Close()
	if _, err := f.Read(buf); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
}

func TestFileDir(t *testing.T) {
	tree := sample()
	d := NewFile(".", &memData{t: tree, n: tree.nodes[1]})
	if _, err := d.Read(make([]byte, 1)); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("Read of a directory: %v", err)
	}
	first, err := d.ReadDir(3)
	if err != nil || len(first) != 3 {
		t.Fatalf("ReadDir(3) = %d, %v", len(first), err)
	}
	rest, err := d.ReadDir(3)
	if err != nil || len(rest) != 1 || rest[0].Name() != "loop" {
		t.Fatalf("ReadDir(3) again = %v, %v", rest, err)
	}
	if _, err := d.ReadDir(1); err != io.EOF {
		t.Errorf("ReadDir at the end: %v", err)
	}
	fi, err := d.Stat()
	if err != nil || !fi.IsDir() || fi.Name() != "." {
		t.Errorf("Stat = %v, %v", fi, err)
	}
}
