package redo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"testing"

	"github.com/qimg/qimg/image"
)

const devSize = 4 << 20

// checkReads compares random reads of got with want.
func checkReads(t *testing.T, r *rand.Rand, got io.ReaderAt, want []byte, n int) {
	t.Helper()
	for range n {
		off := r.Int64N(int64(len(want)))
		b := make([]byte, 1+r.Int64N(min(int64(len(want))-off, 2<<20)))
		if _, err := got.ReadAt(b, off); err != nil {
			t.Fatalf("ReadAt(%d bytes at %d): %v", len(b), off, err)
		}
		if !bytes.Equal(b, want[off:off+int64(len(b))]) {
			t.Fatalf("ReadAt(%d bytes at %d) differs from the model", len(b), off)
		}
	}
}

// TestModel edits through a Log and a plain byte slice side by side:
// reads agree at every step, the device is untouched until Commit and
// equal to the model after it, and the log file is gone.
func TestModel(t *testing.T) {
	for seed := range uint64(6) {
		r := rand.New(rand.NewPCG(seed, 2))
		dev := newMem(devSize, seed)
		old := bytes.Clone(dev.b)
		model := dev.clone()
		path := logPath(t)
		l, err := New(dev, path, target(devSize))
		if err != nil {
			t.Fatal(err)
		}
		for tx := range 2 {
			for i, w := range randomWrites(r, devSize, 40) {
				if err := w.apply(l); err != nil {
					t.Fatal(err)
				}
				w.apply(model)
				if i%7 == 0 {
					checkReads(t, r, l, model.b, 5)
				}
			}
			checkReads(t, r, l, model.b, 20)
			if !bytes.Equal(dev.b, old) {
				t.Fatalf("seed %d tx %d: the device changed before Commit", seed, tx)
			}
			if err := l.Flush(); err != nil || !bytes.Equal(dev.b, old) {
				t.Fatalf("Flush: %v, or it wrote the device", err)
			}
			if err := l.Commit(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(dev.b, model.b) {
				t.Fatalf("seed %d tx %d: after Commit the device is not the model", seed, tx)
			}
			if exists(path) {
				t.Fatal("the log is still there after Commit")
			}
			old = bytes.Clone(dev.b)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// killed is what a trace panics with to stop an edit as a kill would.
type killed struct{}

// runUntil runs fn with a trace that stops it before step at (0:
// never); it reports the steps made and whether it was stopped.
func runUntil(at int, fn func(Trace)) (steps int, stopped bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(killed); !ok {
				panic(r)
			}
			stopped = true
		}
	}()
	fn(func(Step) {
		steps++
		if steps == at {
			panic(killed{})
		}
	})
	return steps, false
}

// edit runs the writes through a Log and commits.
func edit(t *testing.T, dev image.WritableImage, path string, ws []write) func(Trace) {
	return func(tr Trace) {
		l, err := New(dev, path, target(dev.Size()), WithTrace(tr))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			if err := w.apply(l); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Commit(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// recoverDev does what opening the image for editing does.
func recoverDev(t *testing.T, dev image.WritableImage, path string, tr Trace) {
	t.Helper()
	p, err := Read(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case errors.Is(err, ErrIncomplete):
		if err := Remove(path); err != nil {
			t.Fatal(err)
		}
	case err != nil:
		t.Fatal(err)
	default:
		if err := p.Replay(context.Background(), dev, WithTrace(tr)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStopAtEveryStep stops an edit before each of its steps (log
// writes and syncs, directory syncs, device writes and flush, the
// removal), and recovery before each of its own: the device is always
// the old one or the new one.
func TestStopAtEveryStep(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	const size = 1 << 20
	base := newMem(size, 9)
	ws := randomWrites(r, size, 20)
	want := base.clone()
	for _, w := range ws {
		w.apply(want)
	}
	total, _ := runUntil(0, edit(t, base.clone(), logPath(t), ws))
	sawOld, sawNew := 0, 0
	for at := 1; at <= total; at++ {
		dev, path := base.clone(), logPath(t)
		if _, stopped := runUntil(at, edit(t, dev, path, ws)); !stopped {
			t.Fatalf("not stopped at step %d of %d", at, total)
		}
		// A read-only look sees the new device if the log committed.
		if p, err := Read(path); err == nil {
			v, err := p.View(dev)
			if err != nil {
				t.Fatal(err)
			}
			checkReads(t, r, v, want.b, 10)
			p.Close()
		}
		// Recovery itself stopped at some of its steps, then run whole.
		replay, _ := runUntil(0, func(tr Trace) { recoverDev(t, dev.clone(), copyLog(t, path), tr) })
		for _, rat := range samplePoints(replay, 6) {
			d2, p2 := dev.clone(), copyLog(t, path)
			if _, stopped := runUntil(rat, func(tr Trace) { recoverDev(t, d2, p2, tr) }); !stopped {
				t.Fatalf("recovery not stopped at step %d of %d", rat, replay)
			}
			recoverDev(t, d2, p2, nil)
			judge(t, d2.b, base.b, want.b, at*1000+rat, &sawOld, &sawNew)
		}
		recoverDev(t, dev, path, nil)
		judge(t, dev.b, base.b, want.b, at, &sawOld, &sawNew)
	}
	if sawOld == 0 || sawNew == 0 {
		t.Fatalf("%d old and %d new devices: both should occur", sawOld, sawNew)
	}
	t.Logf("%d steps: %d recoveries left the old device, %d the new", total, sawOld, sawNew)
}

func judge(t *testing.T, got, old, new []byte, at int, sawOld, sawNew *int) {
	t.Helper()
	switch {
	case bytes.Equal(got, old):
		*sawOld++
	case bytes.Equal(got, new):
		*sawNew++
	default:
		t.Fatalf("stopped at step %d: after recovery the device is neither old nor new", at)
	}
}

// copyLog copies the log at path (if any) to a new path.
func copyLog(t *testing.T, path string) string {
	to := logPath(t)
	b, err := osReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return to
	}
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, to, b)
	return to
}

// samplePoints picks up to 2n steps of total: the first n and the last n.
func samplePoints(total, n int) []int {
	var at []int
	for i := 1; i <= total; i++ {
		if i <= n || i > total-n {
			at = append(at, i)
		}
	}
	return at
}

// TestWriteUnused: data for unused space goes to the device at once and
// is flushed before the commit moment; bytes the log holds are logged
// again, so the newest write wins.
func TestWriteUnused(t *testing.T) {
	dev := newMem(1<<20, 5)
	path := logPath(t)
	var steps []Step
	l, _ := New(dev, path, target(dev.Size()), WithTrace(func(s Step) { steps = append(steps, s) }))
	if _, err := l.WriteUnused([]byte("direct"), 1000); err != nil {
		t.Fatal(err)
	}
	if string(dev.b[1000:1006]) != "direct" || exists(path) {
		t.Fatal("WriteUnused did not go straight to the device")
	}
	l.WriteAt([]byte("logged"), 5000)
	l.WriteUnused([]byte("LOG"), 5002) // overlaps the log: logged
	if string(dev.b[5000:5006]) == "loLOGd" {
		t.Fatal("a write over logged bytes reached the device before Commit")
	}
	b := make([]byte, 6)
	l.ReadAt(b, 5000)
	if string(b) != "loLOGd" {
		t.Fatalf("read %q", b)
	}
	steps = nil
	if err := l.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if string(dev.b[5000:5006]) != "loLOGd" || steps[0] != DeviceFlush {
		t.Fatalf("after Commit: %q; steps %v (the first must flush the direct writes)", dev.b[5000:5006], steps)
	}
}
