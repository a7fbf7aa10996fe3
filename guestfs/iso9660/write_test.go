package iso9660_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qimg/qimg/guestfs/iso9660"
	"github.com/qimg/qimg/image"
)

// item is one entry of a test tree: a file (data), a directory (dir) or
// a symbolic link (target).
type item struct {
	path   string
	data   []byte
	dir    bool
	target string
	mode   fs.FileMode
}

var fixed = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// sampleTree has what cloud images need and what breaks naive writers:
// deep directories, long and mixed-case names, 8.3 collisions, a
// symbolic link, an empty file, a file of several blocks.
func sampleTree() []item {
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16)
	big[12345] = 'X'
	items := []item{
		{path: "user-data", data: []byte("#cloud-config\npassword: x\n"), mode: 0o644},
		{path: "meta-data", data: []byte("instance-id: i-1\nlocal-hostname: vm\n"), mode: 0o644},
		{path: "network-config", data: []byte("version: 2\n"), mode: 0o600},
		{path: "openstack/latest/meta_data.json", data: []byte(`{"uuid":"u"}`), mode: 0o644},
		{path: "openstack/latest/user_data", data: []byte("#!/bin/sh\n"), mode: 0o755},
		{path: "openstack/latest/network_data.json", data: []byte(`{"links":[]}`), mode: 0o644},
		{path: "ec2/latest/meta-data.json", data: []byte(`{}`), mode: 0o644},
		{path: "empty", data: []byte{}, mode: 0o644},
		{path: "big.bin", data: big, mode: 0o644},
		{path: "Collide.Long.Name.txt", data: []byte("1"), mode: 0o644},
		{path: "collide.long.name.TXT", data: []byte("2"), mode: 0o644},
		{path: "COLLIDE.LONG.NAME.Txt", data: []byte("3"), mode: 0o644},
		{path: "collide-long-dir.d", dir: true, mode: 0o750},
		{path: "collide_long_dir", dir: true, mode: 0o755},
		{path: "latest-link", target: "openstack/latest", mode: fs.ModeSymlink | 0o777},
		{path: "abs-link", target: "/etc/../usr/./lib", mode: fs.ModeSymlink | 0o777},
	}
	long := "A Very Long Mixed-Case File Name For Testing ISO 9660 Writers.conf" // 66
	deep := ""
	for i := range 10 {
		deep += "/Level" + string(rune('A'+i)) + "-dir"
		items = append(items, item{path: deep[1:], dir: true, mode: 0o755})
		items = append(items, item{path: deep[1:] + "/" + long, data: []byte(deep), mode: 0o644})
	}
	items = append(items, item{path: deep[1:] + "/" + strings.Repeat("n", 200), data: []byte("long"), mode: 0o644})
	return items
}

// build makes a Builder of items.
func build(t testing.TB, items []item) *iso9660.Builder {
	t.Helper()
	b := iso9660.NewBuilder()
	for _, it := range items {
		var err error
		switch {
		case it.dir:
			err = b.AddDir(it.path, it.mode)
		case it.target != "":
			err = b.AddSymlink(it.path, it.target)
		default:
			err = b.AddFile(it.path, it.data, it.mode)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// writeISO writes items to a file in a temporary directory.
func writeISO(t testing.TB, items []item, opts iso9660.Options) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "out.iso")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := iso9660.Write(f, build(t, items), opts); err != nil {
		t.Fatal(err)
	}
	return p
}

// stressTree needs continuation areas: 255-byte names, a link target
// longer than a block (chained areas; libisofs refuses targets over 1024
// bytes, so it is the last item), and a directory of several blocks.
func stressTree() []item {
	items := []item{
		{path: strings.Repeat("x", 255), data: []byte("x"), mode: 0o644},
		{path: "d/" + strings.Repeat("Ä", 127), data: []byte("utf8"), mode: 0o644},
		{path: "d", dir: true, mode: 0o755},
	}
	var target []string
	for i := range 12 {
		target = append(target, strings.Repeat(string(rune('a'+i)), 240))
	}
	items = append(items, item{path: "longlink", target: strings.Join(target, "/"), mode: fs.ModeSymlink | 0o777},
		item{path: "d/medlink", target: "../" + strings.Join(target[:4], "/../"), mode: fs.ModeSymlink | 0o777})
	for i := range 150 {
		items = append(items, item{path: fmt.Sprintf("many/file number %03d with a longish name.txt", i), data: []byte{byte(i)}, mode: 0o644})
	}
	return items
}

func TestStressRoundTrip(t *testing.T) {
	items := stressTree()
	p := writeISO(t, items, iso9660.Options{VolumeID: "x", Joliet: true, RockRidge: true, Time: fixed})
	compareFS(t, openISO(t, p), items, true)
}

// With a fixed time the image is the same byte for byte, and times read
// back are that time.
func TestReproducible(t *testing.T) {
	items := sampleTree()[:9]
	opts := iso9660.Options{VolumeID: "cidata", Joliet: true, RockRidge: true, Time: fixed}
	var a, b bytes.Buffer
	if err := iso9660.Write(&a, build(t, items), opts); err != nil {
		t.Fatal(err)
	}
	if err := iso9660.Write(&b, build(t, items), opts); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two writes of one tree differ")
	}
	fsys, err := iso9660.Open(bytes.NewReader(a.Bytes()), int64(a.Len()), "a.iso")
	if err != nil {
		t.Fatal(err)
	}
	info, err := fsys.Stat("openstack/latest/user_data")
	if err != nil || !info.ModTime().Equal(fixed) || info.Mode() != 0o755 {
		t.Errorf("stat: %v %v", info, err)
	}
}

// Long names that agree in their first 64 characters still get distinct
// Joliet names.
func TestJolietCollisions(t *testing.T) {
	long := strings.Repeat("j", 70)
	items := []item{
		{path: long + "1.txt", data: []byte("1"), mode: 0o644},
		{path: long + "2.txt", data: []byte("2"), mode: 0o644},
		{path: long + "3", data: []byte("3"), mode: 0o644},
		{path: long + "4", data: []byte("4"), mode: 0o644},
	}
	var buf bytes.Buffer
	if err := iso9660.Write(&buf, build(t, items), iso9660.Options{Joliet: true, Time: fixed}); err != nil {
		t.Fatal(err)
	}
	fsys, err := iso9660.Open(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "j.iso")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil || len(entries) != 4 {
		t.Fatalf("%d entries, %v", len(entries), err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		data, err := fs.ReadFile(fsys, e.Name())
		if err != nil || len([]rune(e.Name())) > 64 || seen[string(data)] {
			t.Errorf("%q: %q %v", e.Name(), data, err)
		}
		seen[string(data)] = true
	}
}

func TestBuilderErrors(t *testing.T) {
	b := iso9660.NewBuilder()
	if err := b.AddFile("a/b", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := []error{
		b.AddFile("a/b", nil, 0o644),   // twice
		b.AddFile("a/b/c", nil, 0o644), // under a file
		b.AddDir("../x", 0o755),
		b.AddFile("", nil, 0o644),
		b.AddFile(strings.Repeat("x", 256), nil, 0o644),
		b.AddSymlink("l", ""),
		b.AddFileReader("big", bytes.NewReader(nil), iso9660.MaxFileSize+1, 0o644),
		iso9660.Write(io.Discard, b, iso9660.Options{VolumeID: strings.Repeat("v", 33)}),
	}
	for i, err := range bad {
		if !errors.Is(err, image.ErrInvalidArgument) {
			t.Errorf("case %d: %v, want ErrInvalidArgument", i, err)
		}
	}
	if err := b.AddDir("a", 0o700); err != nil { // an existing directory: mode only
		t.Error(err)
	}
}
