package ext4

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path"
	"testing"
)

// TestOpenEntry walks the test tree by entries, as copy-out does, and
// checks every file, directory and link against the path-based calls;
// file contents are read with a buffer larger than most files, the read
// that bypasses the small-read window.
func TestOpenEntry(t *testing.T) {
	src := source(t)
	for _, v := range []string{"4k", "inline"} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			opts := map[string][]string{"4k": {"-b", "4096"}, "inline": {"-O", "inline_data"}}[v]
			fsys := openImage(t, mkfs(t, src, opts...))
			var seen int
			walkEntries(t, fsys, ".", func(name string, d fs.DirEntry) {
				seen++
				checkEntry(t, fsys, name, d)
			})
			if seen < 3100 {
				t.Errorf("walked %d entries", seen)
			}
		})
	}
	fsys := openImage(t, mkfs(t, src))
	other := openImage(t, mkfs(t, src))
	ents, err := other.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.OpenEntry(ents[0].Name(), ents[0]); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("an entry of another FS: %v", err)
	}
}

// walkEntries calls fn for every entry below dir, opening directories by
// their entries only.
func walkEntries(t *testing.T, fsys *FS, dir string, fn func(string, fs.DirEntry)) {
	f, err := fsys.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	walkOpen(t, fsys, dir, f.(fs.ReadDirFile), fn)
}

func walkOpen(t *testing.T, fsys *FS, dir string, f fs.ReadDirFile, fn func(string, fs.DirEntry)) {
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ents {
		name := path.Join(dir, d.Name())
		fn(name, d)
		if d.IsDir() {
			sub, err := fsys.OpenEntry(name, d)
			if err != nil {
				t.Fatal(err)
			}
			walkOpen(t, fsys, name, sub.(fs.ReadDirFile), fn)
		}
	}
}

func checkEntry(t *testing.T, fsys *FS, name string, d fs.DirEntry) {
	t.Helper()
	want, err := fsys.Lstat(name)
	if err != nil {
		t.Fatal(err)
	}
	f, err := fsys.OpenEntry(name, d)
	if err != nil {
		t.Fatalf("OpenEntry %s: %v", name, err)
	}
	defer f.Close()
	got, err := f.Stat()
	if err != nil || got.Mode() != want.Mode() || got.Sys().(*Inode).Ino != want.Sys().(*Inode).Ino {
		t.Errorf("%s: entry opens %v, Lstat says %v (%v)", name, got, want, err)
	}
	switch {
	case want.Mode()&fs.ModeSymlink != 0:
		target, err := fsys.ReadLinkEntry(name, d)
		if wantTarget, _ := fsys.ReadLink(name); err != nil || target != wantTarget {
			t.Errorf("%s: ReadLinkEntry %q %v, ReadLink %q", name, target, err, wantTarget)
		}
	case want.Mode().IsRegular():
		data := readBig(t, f)
		if wantData, err := fs.ReadFile(fsys, name); err != nil || !bytes.Equal(data, wantData) {
			t.Errorf("%s: %d bytes by entry, %d by path (%v)", name, len(data), len(wantData), err)
		}
		if _, err := fsys.ReadLinkEntry(name, d); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("%s: ReadLinkEntry of a file: %v", name, err)
		}
	}
}

// readBig reads f through a 1 MiB buffer, as copy-out does.
func readBig(t *testing.T, f fs.File) []byte {
	var out bytes.Buffer
	if _, err := io.CopyBuffer(struct{ io.Writer }{&out}, f, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
