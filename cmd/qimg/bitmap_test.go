package main

import (
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/internal/qemutest"
)

// bitmapNode masks the name qemu-img gives the image in some messages: a
// node name such as #block123 that changes from run to run (qimg names
// the file).
var bitmapNode = regexp.MustCompile(`(bitmaps to |persistent in ')[^:']+`)

// TestBitmapMatchesQemu runs the same qemu-img bitmap command lines, and
// qemu-io writes between them, with qemu-img on one copy of the images
// and with qimg on another: each prints and exits alike, and QEMU loads
// the same bitmaps, with the same contents, from both copies, which
// check clean.
func TestBitmapMatchesQemu(t *testing.T) {
	qemutest.Need(t, "qemu-system-x86_64")
	seq := [][]string{
		{"bitmap", "--add", "t.qcow2", "b0"},
		{"bitmap", "--add", "-g", "4k", "--disable", "t.qcow2", "b1"},
		{"io", "write -P 1 0 100k"},
		{"bitmap", "--merge", "b0", "--enable", "t.qcow2", "b1"},
		{"bitmap", "--merge", "s0", "-b", "src.qcow2", "-F", "qcow2", "t.qcow2", "b0"},
		{"bitmap", "--merge", "s0", "-b", "src.qcow2", "t.qcow2", "b1"},
		{"bitmap", "--merge", "b0", "-b", "t.qcow2", "t.qcow2", "b1"},
		{"bitmap", "--merge", "x", "-b", "big.qcow2", "t.qcow2", "b1"},
		{"bitmap", "--merge", "b0", "-b", "r.raw", "-F", "raw", "t.qcow2", "b1"},
		{"bitmap", "--add", "--add", "t.qcow2", "b2"},
		{"bitmap", "--clear", "--remove", "--add", "-g", "0x200", "t.qcow2", "b2"},
		{"io", "write -P 2 5M 1k"},
		{"bitmap", "--add", "-g", "1000", "t.qcow2", "b3"},
		{"bitmap", "--add", "-g", "4G", "t.qcow2", "b3"},
		{"bitmap", "--add", "-g", "1.5x", "t.qcow2", "b3"},
		{"bitmap", "--add", "-g", "16E", "t.qcow2", "b3"},
		{"bitmap", "--add", "t.qcow2", ""},
		{"bitmap", "--add", "t.qcow2", strings.Repeat("n", 1024)},
		{"bitmap", "--clear", "t.qcow2", "nope"},
		{"bitmap", "--merge", "nope", "t.qcow2", "b0"},
		{"bitmap", "-g", "64k", "--clear", "t.qcow2", "b0"},
		{"bitmap", "-F", "qcow2", "--merge", "b0", "t.qcow2", "b1"},
		{"bitmap", "-b", "src.qcow2", "--add", "t.qcow2", "b1"},
		{"bitmap", "t.qcow2", "b1"},
		{"bitmap", "--add", "t.qcow2"},
		{"bitmap", "--add", "-f", "raw", "r.raw", "b0"},
		{"bitmap", "--disable", "-f", "raw", "r.raw", "b0"},
		{"bitmap", "--add", "v2.qcow2", "b0"},
		{"bitmap", "--clear", "u.qcow2", "u0"},
		{"bitmap", "--merge", "u0", "u.qcow2", "u1"},
		{"bitmap", "--remove", "u.qcow2", "u0"},
		{"bitmap", "--add", "missing.qcow2", "b0"},
		{"bitmap", "--image-opts", "--add", "--disable", "driver=qcow2,file.filename=t.qcow2", "b7"},
		{"bitmap", "--image-opts", "--remove", "driver=qcow2,file.driver=file,file.filename=t.qcow2", "b7"},
		{"bitmap", "--remove", "t.qcow2", "b0"},
		{"bitmap", "--remove", "t.qcow2", "b1"},
		{"bitmap", "--remove", "t.qcow2", "b2"},
	}
	dq, di := t.TempDir(), t.TempDir()
	for _, d := range []string{dq, di} {
		img(t, d, "create", "-q", "-f", "qcow2", "t.qcow2", "10M")
		img(t, d, "create", "-q", "-f", "qcow2", "src.qcow2", "10M")
		img(t, d, "bitmap", "--add", "src.qcow2", "s0")
		qio(t, d, "qcow2", "src.qcow2", "write -P 3 3M 1M")
		img(t, d, "create", "-q", "-f", "qcow2", "big.qcow2", "11M")
		img(t, d, "bitmap", "--add", "big.qcow2", "x")
		img(t, d, "create", "-q", "-f", "raw", "r.raw", "10M")
		img(t, d, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "v2.qcow2", "10M")
		img(t, d, "create", "-q", "-f", "qcow2", "u.qcow2", "10M")
		img(t, d, "bitmap", "--add", "u.qcow2", "u0")
		img(t, d, "bitmap", "--add", "u.qcow2", "u1")
	}
	staleFirstBitmap(t, dq, di)
	for _, args := range seq {
		if args[0] == "io" {
			qio(t, dq, "qcow2", "t.qcow2", args[1])
			qio(t, di, "qcow2", "t.qcow2", args[1])
			continue
		}
		want := qemuIn(t, dq, "qemu-img", args...)
		got := qimgIn(t, di, args...)
		w := bitmapNode.ReplaceAllString(normalize(want.stderr), "${1}NODE")
		g := bitmapNode.ReplaceAllString(got.stderr, "${1}NODE")
		if got.code != want.code || g != w || got.stdout != want.stdout {
			t.Errorf("%q: qimg exits %d:\n%sqemu-img exits %d:\n%s", args, got.code, g, want.code, w)
		}
		for _, f := range []string{"t.qcow2", "u.qcow2"} {
			qemutest.Check(t, filepath.Join(di, f))
			b := qemutest.Bitmaps(t, filepath.Join(dq, f), filepath.Join(di, f))
			if !reflect.DeepEqual(b[0], b[1]) {
				t.Fatalf("after %q, QEMU loads from %s\nqemu-img: %+v\nqimg:     %+v", args, f, b[0], b[1])
			}
		}
	}
}

// staleFirstBitmap marks u0 of u.qcow2 in use in both copies, as a QEMU
// that died would leave it: u.qcow2 gets a write by qimg (which marks all
// of its bitmaps in use), then u1 is added back afresh.
func staleFirstBitmap(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		p := filepath.Join(d, "u.qcow2")
		img(t, d, "bitmap", "--remove", "u.qcow2", "u1")
		w, err := qcow2.Open(p, &qcow2.OpenOptions{Writable: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteAt(make([]byte, 512), 0); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		img(t, d, "bitmap", "--add", "u.qcow2", "u1")
	}
}
