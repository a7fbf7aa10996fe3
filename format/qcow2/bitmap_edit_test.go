package qcow2

// EditBitmaps is compared with qemu-img bitmap on twin images: the same
// actions, with the same guest writes by qemu-io between them (so that
// the bitmaps QEMU keeps have bits to merge and clear), must leave the
// bitmaps QEMU loads equal (names, order, granularity, flags, and the
// SHA-256 of their bits from QEMU's x-debug-block-dirty-bitmap-sha256),
// the same qemu-img info list, and an image qemu-img check finds clean.

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

// bitmapStep is one qemu-img bitmap call and the writes that follow it.
type bitmapStep struct {
	bitmap  string
	changes []BitmapChange
	fromSrc bool     // merge sources come from the second image (-b)
	io      []string // qemu-io commands on both twins afterwards
}

// qemuArgs is the qemu-img bitmap command line of s.
func (s bitmapStep) qemuArgs(path, src string) []string {
	args := []string{"bitmap"}
	for _, c := range s.changes {
		args = append(args, "--"+c.Action.String())
		if c.Action == BitmapMerge {
			args = append(args, c.Source)
		}
		if c.Action == BitmapAdd && c.Granularity != 0 {
			args = append(args, "-g", itoa(c.Granularity))
		}
	}
	if s.fromSrc {
		args = append(args, "-b", src, "-F", "qcow2")
	}
	return append(args, path, s.bitmap)
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

var bitmapSteps = []bitmapStep{
	{bitmap: "b0", changes: []BitmapChange{{Action: BitmapAdd}}},
	{bitmap: "b1", changes: []BitmapChange{{Action: BitmapAdd, Granularity: 4096}, {Action: BitmapDisable}},
		io: []string{"write -P 1 0 100k", "write -P 2 3M 64k", "write -P 3 7654321 4321"}},
	{bitmap: "b1", changes: []BitmapChange{{Action: BitmapMerge, Source: "b0"}, {Action: BitmapEnable}}},
	{bitmap: "b2", changes: []BitmapChange{{Action: BitmapAdd, Granularity: 1 << 20}},
		io: []string{"write -P 4 1049088 1k", "write -z 9M 4k"}},
	{bitmap: "b2", changes: []BitmapChange{{Action: BitmapMerge, Source: "b1"}}},
	{bitmap: "b0", changes: []BitmapChange{{Action: BitmapClear}}},
	{bitmap: "b0", changes: []BitmapChange{{Action: BitmapMerge, Source: "s0"}}, fromSrc: true},
	{bitmap: "b1", changes: []BitmapChange{{Action: BitmapRemove}, {Action: BitmapAdd, Granularity: 512}},
		io: []string{"write -P 5 5M 3k"}},
	// Fails at the second add: the first is kept.
	{bitmap: "b3", changes: []BitmapChange{{Action: BitmapAdd}, {Action: BitmapDisable}, {Action: BitmapAdd}}},
	{bitmap: "b3", changes: []BitmapChange{{Action: BitmapMerge, Source: "missing"}}},
	{bitmap: "b3", changes: []BitmapChange{{Action: BitmapMerge, Source: "big"}}, fromSrc: true},
	{bitmap: "nope", changes: []BitmapChange{{Action: BitmapClear}}},
	{bitmap: "b4", changes: []BitmapChange{{Action: BitmapAdd, Granularity: 1000}}},
	{bitmap: "b2", changes: []BitmapChange{{Action: BitmapMerge, Source: "b2"}, {Action: BitmapDisable}, {Action: BitmapMerge, Source: "b0"}}},
	{bitmap: "b0", changes: []BitmapChange{{Action: BitmapRemove}}},
	{bitmap: "b1", changes: []BitmapChange{{Action: BitmapRemove}}},
	{bitmap: "b3", changes: []BitmapChange{{Action: BitmapRemove}}},
	{bitmap: "b2", changes: []BitmapChange{{Action: BitmapRemove}}},
	{bitmap: "b5", changes: []BitmapChange{{Action: BitmapAdd}}},
}

func TestEditBitmapsMatchesQemu(t *testing.T) {
	qemutest.Need(t, "qemu-system-x86_64")
	layouts := []struct {
		name string
		opts string
		snap bool
	}{
		{"default", "", false},
		{"4k-clusters", "cluster_size=4096", false},
		{"refcount4", "refcount_bits=4", false},
		{"snapshots", "", true},
		{"2M-clusters", "cluster_size=2M", false},
		{"512-clusters", "cluster_size=512", false},
	}
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			q, i, src := filepath.Join(dir, "q.qcow2"), filepath.Join(dir, "i.qcow2"), filepath.Join(dir, "src.qcow2")
			for _, p := range []string{q, i, src} {
				args := []string{"create", "-q", "-f", "qcow2"}
				if l.opts != "" {
					args = append(args, "-o", l.opts)
				}
				qemutest.Img(t, append(args, p, "10M")...)
				if l.snap {
					qemutest.IO(t, p, "write -P 9 0 2M")
					qemutest.Img(t, "snapshot", "-c", "s", p)
				}
			}
			qemutest.Img(t, "bitmap", "--add", "-g", "8k", src, "s0")
			qemutest.IO(t, src, "write -P 7 2M 100k", "write -P 7 8M 1")
			qemutest.Img(t, "bitmap", "--add", src, "s1")
			big := filepath.Join(dir, "big.qcow2")
			qemutest.Img(t, "create", "-q", "-f", "qcow2", big, "11M")
			qemutest.Img(t, "bitmap", "--add", big, "big")
			for n, s := range bitmapSteps {
				srcPath := src
				if s.changes[0].Source == "big" {
					srcPath = big
				}
				_, code, stderr := qemutest.RunCode(t, "qemu-img", s.qemuArgs(q, srcPath)...)
				err := editBitmaps(t, i, s, srcPath)
				if (err != nil) != (code != 0) {
					t.Fatalf("step %d %v: qimg: %v; qemu-img exit %d: %s", n, s.qemuArgs("", ""), err, code, stderr)
				}
				var be *BitmapError
				if err != nil && (!errors.As(err, &be) || !strings.Contains(stderr, be.Reason)) {
					t.Errorf("step %d: qimg: %v; qemu-img: %s", n, err, stderr)
				}
				for _, io := range s.io {
					qemutest.IO(t, q, io)
					qemutest.IO(t, i, io)
				}
				compareBitmaps(t, n, q, i)
			}
		})
	}
}

// editBitmaps runs a step with qimg.
func editBitmaps(t *testing.T, path string, s bitmapStep, src string) error {
	t.Helper()
	img, err := Open(path, &OpenOptions{Writable: true, Backing: image.IgnoreBacking})
	if err != nil {
		t.Fatal(err)
	}
	var from image.Image
	if s.fromSrc {
		f, err := Open(src, &OpenOptions{Backing: image.IgnoreBacking})
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		from = f
	}
	err = img.EditBitmaps(context.Background(), s.bitmap, s.changes, from)
	if cerr := img.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	return err
}

// compareBitmaps fails unless QEMU loads the same bitmaps from both
// twins, qemu-img info lists them alike, and the qimg twin checks clean.
func compareBitmaps(t *testing.T, step int, q, i string) {
	t.Helper()
	qemutest.Check(t, i)
	got := qemutest.Bitmaps(t, q, i)
	if !reflect.DeepEqual(got[0], got[1]) {
		t.Fatalf("after step %d: QEMU loads\nqemu-img: %+v\nqimg:     %+v", step, got[0], got[1])
	}
	if a, b := infoBitmaps(t, q), infoBitmaps(t, i); a != b {
		t.Fatalf("after step %d: qemu-img info lists\nqemu-img: %s\nqimg:     %s", step, a, b)
	}
}

func infoBitmaps(t *testing.T, path string) string {
	t.Helper()
	var info struct {
		FormatSpecific struct {
			Data struct {
				Bitmaps json.RawMessage `json:"bitmaps"`
			} `json:"data"`
		} `json:"format-specific"`
	}
	if err := json.Unmarshal([]byte(qemutest.Img(t, "info", "--output=json", path)), &info); err != nil {
		t.Fatal(err)
	}
	return string(info.FormatSpecific.Data.Bitmaps)
}

// TestOpenForWritingKeepsBitmaps: opening an image for writing, and even
// changing its bitmaps, leaves the others valid; only the first change of
// guest data marks them in use.
func TestOpenForWritingKeepsBitmaps(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", p, "1M")
	qemutest.Img(t, "bitmap", "--add", p, "b0")
	img, err := Open(p, &OpenOptions{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := img.EditBitmaps(context.Background(), "b1", []BitmapChange{{Action: BitmapAdd}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	if got := infoBitmaps(t, p); !strings.Contains(got, `"b0"`) || !strings.Contains(got, `"b1"`) || strings.Contains(got, "in-use") {
		t.Fatalf("bitmaps after an edit: %s", got)
	}
	img, err = Open(p, &OpenOptions{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := img.WriteAt(make([]byte, 512), 0); err != nil {
		t.Fatal(err)
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	if got := infoBitmaps(t, p); strings.Count(got, "in-use") != 2 {
		t.Fatalf("bitmaps after a write: %s", got)
	}
	qemutest.Check(t, p)
}
