package iso9660_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qimg/qimg/guestfs/iso9660"
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
