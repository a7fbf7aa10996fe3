package iso9660_test

import (
	"bytes"
	"io/fs"
	"os"
	"path"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/qimg/qimg/guestfs/iso9660"
)

// openISO opens a file with the package's reader.
func openISO(t testing.TB, p string) *iso9660.FS {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := iso9660.Open(f, st.Size(), p)
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

// compareFS checks that fsys holds items and nothing else; modes are
// compared when rr (Rock Ridge keeps them), symbolic links only then.
func compareFS(t *testing.T, fsys fs.FS, items []item, rr bool) {
	t.Helper()
	want := map[string]item{}
	for _, it := range items {
		if it.target != "" && !rr {
			continue
		}
		want[it.path] = it
		for d := path.Dir(it.path); d != "."; d = path.Dir(d) {
			if _, ok := want[d]; !ok {
				want[d] = item{path: d, dir: true, mode: 0o755}
			}
		}
	}
	seen := 0
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		seen++
		it, ok := want[p]
		if !ok {
			t.Errorf("unexpected %s", p)
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case it.dir != d.IsDir():
			t.Errorf("%s: dir %v, want %v", p, d.IsDir(), it.dir)
		case rr && info.Mode() != it.mode|map[bool]fs.FileMode{true: fs.ModeDir}[it.dir]:
			t.Errorf("%s: mode %v, want %v", p, info.Mode(), it.mode)
		case it.target != "":
			got, err := fsys.(fs.ReadLinkFS).ReadLink(p)
			if err != nil || got != it.target {
				t.Errorf("%s: link to %q (%v), want %q", p, got, err, it.target)
			}
		case !it.dir:
			got, err := fs.ReadFile(fsys, p)
			if err != nil || !bytes.Equal(got, it.data) {
				t.Errorf("%s: content differs (%d bytes, %v)", p, len(got), err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != len(want) {
		t.Errorf("found %d entries, want %d", seen, len(want))
	}
}

// The reader gives back what the writer wrote, through Rock Ridge, and
// through Joliet when Rock Ridge is left out.
func TestRoundTrip(t *testing.T) {
	items := sampleTree()
	p := writeISO(t, items, iso9660.Options{VolumeID: "cidata", Joliet: true, RockRidge: true, Time: fixed})
	fsys := openISO(t, p)
	if fsys.VolumeID() != "cidata" {
		t.Errorf("volume id %q", fsys.VolumeID())
	}
	compareFS(t, fsys, items, true)

	noRR := writeISO(t, items, iso9660.Options{VolumeID: "config-2", Joliet: true, Time: fixed})
	compareFS(t, openISO(t, noRR), jolietItems(items), false)
}

// jolietName is what Joliet keeps of a name: 64 characters, the
// extension kept.
func jolietName(c string) string {
	if len(c) <= 64 {
		return c
	}
	if i := strings.LastIndexByte(c, '.'); i > 0 && len(c)-i <= 9 {
		return c[:64-(len(c)-i)] + c[i:]
	}
	return c[:64]
}

// jolietPath applies jolietName to every component.
func jolietPath(p string) string {
	parts := strings.Split(p, "/")
	for i, c := range parts {
		parts[i] = jolietName(c)
	}
	return strings.Join(parts, "/")
}

// jolietItems renames items as the Joliet tree holds them.
func jolietItems(items []item) []item {
	out := make([]item, len(items))
	for i, it := range items {
		it.path = jolietPath(it.path)
		out[i] = it
	}
	return out
}

// fstest.TestFS checks the fs.FS contract (without the big file, which
// its byte-at-a-time reads make slow, and the link leading outside).
func TestFSContract(t *testing.T) {
	var items []item
	for _, it := range sampleTree() {
		if it.path != "big.bin" && it.path != "abs-link" {
			items = append(items, it)
		}
	}
	fsys := openISO(t, writeISO(t, items, iso9660.Options{VolumeID: "cidata", Joliet: true, RockRidge: true, Time: fixed}))
	if err := fstest.TestFS(fsys, "user-data", "openstack/latest/meta_data.json", "latest-link"); err != nil {
		t.Error(err)
	}
}
