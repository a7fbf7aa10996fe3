package qcow2

// Crash safety of EditBitmaps, with the machinery of the snapshot crash
// test (snapshot_crash_test.go): the child is killed before each sampled
// write, sync or truncate, and what it leaves, once QEMU has opened it for
// writing, must check clean and hold the old bitmaps or the new ones as
// QEMU loads them (list, flags, granularity and contents).

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/qimg/qimg/internal/qemutest"
)

// bitmapCrashChanges change a bitmap's contents (a new table and data
// clusters), its flags and so the directory, in one edit.
var bitmapCrashChanges = []BitmapChange{
	{Action: BitmapMerge, Source: "b0"},
	{Action: BitmapEnable},
}

func TestBitmapCrash(t *testing.T) {
	qemutest.Need(t, "qemu-system-x86_64")
	dir := t.TempDir()
	base := filepath.Join(dir, "base.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", base, "3M")
	qemutest.Img(t, "bitmap", "--add", base, "b0")
	qemutest.Img(t, "bitmap", "--add", "-g", "512", "--disable", base, "b1")
	qemutest.Img(t, "bitmap", "--add", base, "b2")
	qemutest.IO(t, base, "write -P 1 0 100k", "write -P 2 2M 3k")
	qemutest.Img(t, "bitmap", "--remove", base, "b2")
	old := qemutest.Bitmaps(t, base)[0]
	done := filepath.Join(t.TempDir(), "done.qcow2")
	copyTo(t, base, done)
	out, killed := runSnapChild(t, "bitmaps", done, 0)
	var points int
	if _, err := fmt.Sscanf(out[strings.Index(out, "points "):], "points %d", &points); err != nil || killed {
		t.Fatalf("counting the points: %v\n%s", err, out)
	}
	qemutest.Check(t, done)
	want := qemutest.Bitmaps(t, done)[0]
	if reflect.DeepEqual(want, old) {
		t.Fatal("the edit changed nothing")
	}
	for _, at := range crashPoints(points) {
		path := filepath.Join(t.TempDir(), "crash.qcow2")
		copyTo(t, base, path)
		if _, killed := runSnapChild(t, "bitmaps", path, at); !killed {
			t.Fatalf("the child was not killed at point %d of %d", at, points)
		}
		qemutest.IO(t, path, "read 0 512") // QEMU opened for writing repairs a dirty image
		qemutest.Check(t, path)
		if got := qemutest.Bitmaps(t, path)[0]; !reflect.DeepEqual(got, old) && !reflect.DeepEqual(got, want) {
			t.Errorf("killed at point %d of %d: neither the old bitmaps nor the new ones\n%+v\nold: %+v\nnew: %+v", at, points, got, old, want)
		}
	}
	t.Logf("killed at %d of its %d points", len(crashPoints(points)), points)
}
