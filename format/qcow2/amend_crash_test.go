package qcow2

// Crash safety of Amend, with the child process and the kill points of the
// snapshot crash test: after a kill at any sampled write, sync or
// truncate, and once QEMU has opened the image for writing (which repairs
// an image left dirty), qemu-img check finds it clean and it is the old
// image or the new one: the same header fields as qemu-img info shows
// them, active layer and snapshots.

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/internal/qemutest"
)

func ptr[T any](v T) *T { return &v }

// amendCrashOps are the amends the crash test kills, one step each.
var amendCrashOps = map[string]AmendOptions{
	"amend-downgrade":  {Compat: "0.10"},
	"amend-upgrade":    {Compat: "1.1"},
	"amend-refcount1":  {RefcountBits: 1},
	"amend-refcount4":  {RefcountBits: 4},
	"amend-refcount64": {RefcountBits: 64},
	"amend-grow":       {Size: 8 << 20},
	"amend-shrink":     {Size: 1 << 20},
	"amend-lazy":       {LazyRefcounts: ptr(true)},
}

// amendState is a snapshot state plus the header as qemu-img info shows it.
type amendState struct {
	snapState
	info string
}

func readAmendState(t *testing.T, path string) amendState {
	t.Helper()
	var keep []string
	for _, line := range strings.Split(qemutest.Img(t, "info", path), "\n") {
		if !strings.HasPrefix(line, "disk size:") && !strings.HasPrefix(line, "image:") && !strings.Contains(line, ":  ") && !strings.Contains(line, "  20") {
			keep = append(keep, line)
		}
	}
	return amendState{readSnapState(t, path), strings.Join(keep, "\n")}
}

func (s amendState) equal(o amendState) bool {
	return s.info == o.info && s.snapState.equal(o.snapState)
}

func TestAmendCrash(t *testing.T) {
	dir := t.TempDir()
	v3 := filepath.Join(dir, "v3.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", v3, "3M")
	qemutest.IO(t, v3, "write -P 1 0 1M", "write -c -P 5 1M 64k", "write -z 2M 128k")
	qemutest.Img(t, "snapshot", "-c", "s0", v3)
	qemutest.IO(t, v3, "write -P 2 512k 1M", "write -z 0 64k")
	noSnap := filepath.Join(dir, "nosnap.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", noSnap, "3M")
	qemutest.IO(t, noSnap, "write -P 1 0 2M", "write -z 2M 128k")
	v2 := filepath.Join(dir, "v2.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", v2, "3M")
	qemutest.IO(t, v2, "write -P 1 0 1M", "write -c -P 5 1M 64k")
	qemutest.Img(t, "snapshot", "-c", "s0", v2)
	for _, c := range []struct{ op, base string }{
		{"amend-downgrade", v3}, {"amend-upgrade", v2}, {"amend-refcount1", noSnap},
		{"amend-refcount4", v3}, {"amend-refcount64", v3}, {"amend-grow", v3},
		{"amend-shrink", v3}, {"amend-lazy", v3},
	} {
		t.Run(c.op, func(t *testing.T) {
			old := readAmendState(t, c.base)
			done := filepath.Join(t.TempDir(), "done.qcow2")
			copyTo(t, c.base, done)
			out, killed := runSnapChild(t, c.op, done, 0)
			var points int
			if i := strings.Index(out, "points "); i < 0 || killed {
				t.Fatalf("counting the points of %s:\n%s", c.op, out)
			} else if _, err := fmt.Sscanf(out[i:], "points %d", &points); err != nil {
				t.Fatal(err)
			}
			qemutest.Check(t, done)
			want := readAmendState(t, done)
			if want.equal(old) {
				t.Fatalf("%s changed nothing", c.op)
			}
			for _, at := range crashPoints(points) {
				path := filepath.Join(t.TempDir(), "crash.qcow2")
				copyTo(t, c.base, path)
				if _, killed := runSnapChild(t, c.op, path, at); !killed {
					t.Fatalf("%s: the child was not killed at point %d of %d", c.op, at, points)
				}
				qemutest.IO(t, path, "read 0 512")
				qemutest.Check(t, path)
				if got := readAmendState(t, path); !got.equal(old) && !got.equal(want) {
					t.Errorf("%s killed at point %d of %d: neither the old image nor the new one\n%s\nold:\n%s\nnew:\n%s", c.op, at, points, got.info, old.info, want.info)
				}
			}
			t.Logf("%s: killed at %d of its %d points", c.op, len(crashPoints(points)), points)
		})
	}
}
