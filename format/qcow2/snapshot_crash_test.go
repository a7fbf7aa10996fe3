package qcow2

// Crash safety of the snapshot operations: a child process runs one
// operation on a file that kills the process before its k-th write, sync
// or truncate, for k over every such point. What is left, once QEMU has
// opened it for writing (which rebuilds the refcounts of an image whose
// dirty bit is set), must check clean with no leaks and be the old image
// or the new one: the same snapshot list, active layer and snapshots.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qimg/qimg/internal/qemutest"
)

const (
	snapCrashOp    = "QIMG_SNAPCRASH_OP"
	snapCrashImage = "QIMG_SNAPCRASH_IMAGE"
	snapCrashAt    = "QIMG_SNAPCRASH_AT"
)

// dyingFile kills its process at its k-th mutating call, before it.
type dyingFile struct {
	*os.File
	calls, killAt int
}

func (f *dyingFile) point() {
	f.calls++
	if f.calls == f.killAt {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}

func (f *dyingFile) WriteAt(p []byte, off int64) (int, error) {
	f.point()
	return f.File.WriteAt(p, off)
}
func (f *dyingFile) Truncate(n int64) error { f.point(); return f.File.Truncate(n) }
func (f *dyingFile) Sync() error            { f.point(); return f.File.Sync() }

// TestSnapshotCrashChild is the process the crash test kills. Run by
// itself (no QIMG_SNAPCRASH_OP) it has nothing to do.
func TestSnapshotCrashChild(t *testing.T) {
	op := os.Getenv(snapCrashOp)
	if op == "" {
		return
	}
	path := os.Getenv(snapCrashImage)
	at, _ := strconv.Atoi(os.Getenv(snapCrashAt))
	osf, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := &dyingFile{File: osf, killAt: at}
	img, err := OpenFile(f, path, &OpenOptions{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	switch op {
	case "create":
		err = img.CreateSnapshot(ctx, "new", time.Unix(1700000000, 0))
	case "apply":
		err = img.ApplySnapshot(ctx, "s0")
	case "delete":
		err = img.DeleteSnapshot(ctx, "s0")
	case "bitmaps":
		err = img.EditBitmaps(ctx, "b1", bitmapCrashChanges, nil)
	default:
		err = img.Amend(ctx, amendCrashOps[op])
	}
	if err == nil {
		err = img.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("points %d\n", f.calls)
}

// snapState is what a snapshot operation changes, as QEMU reads it.
type snapState struct {
	list   string            // snapshot -l without dates
	active []byte            // the active layer
	snaps  map[string][]byte // each snapshot's contents, by ID
}

func readSnapState(t *testing.T, path string) snapState {
	t.Helper()
	list := qemutest.Img(t, "snapshot", "-l", path)
	s := snapState{list: snapDates(list), active: qemutest.ToRaw(t, path), snaps: map[string][]byte{}}
	for _, line := range strings.Split(list, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] == "ID" || f[0] == "Snapshot" {
			continue
		}
		out := filepath.Join(t.TempDir(), "snap.raw")
		qemutest.Img(t, "convert", "-f", "qcow2", "-O", "raw", "-l", "snapshot.id="+f[0], path, out)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		s.snaps[f[0]] = b
	}
	return s
}

// snapDates drops the date and time columns of a snapshot listing.
func snapDates(list string) string {
	var out []string
	for _, line := range strings.Split(list, "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 {
			f = append(f[:3], f[6:]...)
		}
		out = append(out, strings.Join(f, " "))
	}
	return strings.Join(out, "\n")
}

func (s snapState) equal(o snapState) bool {
	if s.list != o.list || !bytes.Equal(s.active, o.active) || len(s.snaps) != len(o.snaps) {
		return false
	}
	for id, b := range s.snaps {
		if !bytes.Equal(b, o.snaps[id]) {
			return false
		}
	}
	return true
}

// runSnapChild runs the child on path, killing it at point at (0: never),
// and returns its output.
func runSnapChild(t *testing.T, op, path string, at int) (string, bool) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestSnapshotCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), snapCrashOp+"="+op, snapCrashImage+"="+path, snapCrashAt+"="+strconv.Itoa(at))
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL {
		return string(out), true
	}
	if err != nil {
		t.Fatalf("child %s at %d: %v\n%s", op, at, err, out)
	}
	return string(out), false
}

func TestSnapshotCrash(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", base, "3M")
	qemutest.IO(t, base, "write -P 1 0 1M", "write -c -P 5 1M 64k")
	qemutest.Img(t, "snapshot", "-c", "s0", base)
	qemutest.IO(t, base, "write -P 2 512k 1M", "write -z 0 64k")
	qemutest.Img(t, "resize", "-q", base, "4M")
	old := readSnapState(t, base)
	for _, op := range []string{"create", "apply", "delete"} {
		t.Run(op, func(t *testing.T) {
			done := filepath.Join(t.TempDir(), "done.qcow2")
			copyTo(t, base, done)
			out, killed := runSnapChild(t, op, done, 0)
			var points int
			if _, err := fmt.Sscanf(out[strings.Index(out, "points "):], "points %d", &points); err != nil || killed {
				t.Fatalf("counting the points of %s: %v\n%s", op, err, out)
			}
			qemutest.Check(t, done)
			want := readSnapState(t, done)
			if want.equal(old) {
				t.Fatalf("%s changed nothing", op)
			}
			for _, at := range crashPoints(points) {
				path := filepath.Join(t.TempDir(), "crash.qcow2")
				copyTo(t, base, path)
				if _, killed := runSnapChild(t, op, path, at); !killed {
					t.Fatalf("%s: the child was not killed at point %d of %d", op, at, points)
				}
				// QEMU opened for writing repairs a dirty image.
				qemutest.IO(t, path, "read 0 512")
				qemutest.Check(t, path)
				if got := readSnapState(t, path); !got.equal(old) && !got.equal(want) {
					t.Errorf("%s killed at point %d of %d: neither the old image nor the new one\n%s\nold:\n%s\nnew:\n%s", op, at, points, got.list, old.list, want.list)
				}
			}
			t.Logf("%s: killed at %d of its %d points", op, len(crashPoints(points)), points)
		})
	}
}

// crashPoints samples the points to kill at: all of the first and last
// few (where the header and the dirty bit change) and an even spread in
// between, about 16 in all.
func crashPoints(n int) []int {
	var at []int
	step := max(1, n/10)
	for k := 1; k <= n; k++ {
		if k <= 3 || k > n-3 || k%step == 0 {
			at = append(at, k)
		}
	}
	return at
}

func copyTo(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
