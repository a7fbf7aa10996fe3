package redo

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/qimg/qimg/image"
)

// committedLog makes a log that committed but was not applied (the
// edit stopped at its first device write) and returns its bytes, the
// device as it was and as the log leaves it.
func committedLog(t *testing.T) (log []byte, old, new *memDevice) {
	t.Helper()
	r := rand.New(rand.NewPCG(3, 3))
	old = newMem(1<<20, 3)
	ws := randomWrites(r, old.Size(), 12)
	new = old.clone()
	for _, w := range ws {
		w.apply(new)
	}
	path := logPath(t)
	stopAt, steps := 0, 0
	edit(t, old.clone(), logPath(t), ws)(func(s Step) {
		steps++
		if s == DeviceWrite && stopAt == 0 {
			stopAt = steps
		}
	})
	if _, stopped := runUntil(stopAt, edit(t, old.clone(), path, ws)); !stopped {
		t.Fatal("not stopped")
	}
	log, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return log, old, new
}

// readBytes runs Read on a file holding b.
func readBytes(t *testing.T, b []byte) (*Pending, error) {
	path := logPath(t)
	mustWrite(t, path, b)
	p, err := Read(path)
	if err != nil && !strings.Contains(err.Error(), path) {
		t.Fatalf("the error does not name the log %s: %v", path, err)
	}
	return p, err
}

func TestReadCommitted(t *testing.T) {
	log, old, new := committedLog(t)
	p, err := readBytes(t, log)
	if err != nil {
		t.Fatal(err)
	}
	if p.Target != target(old.Size()) {
		t.Fatalf("target %v, want %v", p.Target, target(old.Size()))
	}
	v, err := p.View(old)
	if err != nil {
		t.Fatal(err)
	}
	checkReads(t, rand.New(rand.NewPCG(1, 1)), v, new.b, 30)
	if _, err := p.View(zeroDevice{old.Size() + 1}); !errors.Is(err, image.ErrInvalidArgument) {
		t.Fatalf("View of a device of another size: %v", err)
	}
	if err := p.Replay(context.Background(), zeroDevice{old.Size() - 512}); !errors.Is(err, image.ErrInvalidArgument) {
		t.Fatalf("Replay onto a device of another size: %v", err)
	}
	dev := old.clone()
	if err := p.Replay(context.Background(), dev); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dev.b, new.b) || dev.flushes != 1 || exists(p.Path()) {
		t.Fatalf("replay: device new %v, %d flushes, log still there %v", bytes.Equal(dev.b, new.b), dev.flushes, exists(p.Path()))
	}
}

// TestTornLog cuts a committed log at every length: each is an edit
// that never committed.
func TestTornLog(t *testing.T) {
	log, _, _ := committedLog(t)
	for n := 0; n < len(log); n += 1 + n/64 {
		if _, err := readBytes(t, log[:n]); !errors.Is(err, ErrIncomplete) {
			t.Fatalf("log cut at %d of %d bytes: %v, want ErrIncomplete", n, len(log), err)
		}
	}
	for n := len(log) - footerSize; n < len(log); n++ {
		if _, err := readBytes(t, log[:n]); !errors.Is(err, ErrIncomplete) {
			t.Fatalf("log cut at %d of %d bytes: %v, want ErrIncomplete", n, len(log), err)
		}
	}
}

// TestDamagedLog flips bytes of a committed log: a torn footer is an
// edit that never committed; damage anywhere else, under a valid
// footer, is corruption.
func TestDamagedLog(t *testing.T) {
	log, _, _ := committedLog(t)
	table := int64(le.Uint64(log[len(log)-footerSize+16:]))
	for _, c := range []struct {
		what string
		at   int
		want error
	}{
		{"magic", 0, image.ErrCorrupt},
		{"header", 20, image.ErrCorrupt},
		{"target name", 60, image.ErrCorrupt},
		{"data", headerSize + 5, image.ErrCorrupt},
		{"last data byte", int(table) - 1, image.ErrCorrupt},
		{"table", int(table) + 3, image.ErrCorrupt},
		{"footer magic", len(log) - footerSize, ErrIncomplete},
		{"footer count", len(log) - footerSize + 24, ErrIncomplete},
		{"footer CRC", len(log) - 1, ErrIncomplete},
	} {
		b := bytes.Clone(log)
		b[c.at] ^= 0x40
		if _, err := readBytes(t, b); !errors.Is(err, c.want) {
			t.Errorf("%s (byte %d) flipped: %v, want %v", c.what, c.at, err, c.want)
		}
	}
	b := bytes.Clone(log)
	le.PutUint32(b[8:], 99)
	le.PutUint32(b[headerSize-4:], crc(b[:headerSize-4]))
	if _, err := readBytes(t, b); !errors.Is(err, image.ErrUnsupported) || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("version 99: %v", err)
	}
}

func TestNotALog(t *testing.T) {
	for _, c := range []struct {
		what string
		b    []byte
		want error
	}{
		{"empty", nil, ErrIncomplete},
		{"short", []byte("QIMG"), ErrIncomplete},
		{"zeros", make([]byte, 4096), ErrIncomplete},
		{"text", []byte(strings.Repeat("hello, world\n", 100)), image.ErrCorrupt},
	} {
		if _, err := readBytes(t, c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.what, err, c.want)
		}
	}
	if _, err := Read(logPath(t)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no log: %v", err)
	}
}

// TestOneEditAtATime: a second Log on the same file is refused at its
// first write, and the first one's log is untouched.
func TestOneEditAtATime(t *testing.T) {
	dev := newMem(1<<20, 1)
	path := logPath(t)
	a, _ := New(dev, path, target(dev.Size()))
	b, _ := New(dev, path, target(dev.Size()))
	if _, err := a.WriteAt([]byte("a"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WriteAt([]byte("b"), 0); !errors.Is(err, image.ErrInvalidArgument) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second writer: %v", err)
	}
	if err := a.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if dev.b[0] != 'a' {
		t.Fatal("the first edit was lost")
	}
}

// TestDiscard: Discard and Close drop an uncommitted edit and its file.
func TestDiscard(t *testing.T) {
	dev := newMem(1<<20, 1)
	old := bytes.Clone(dev.b)
	path := logPath(t)
	l, _ := New(dev, path, target(dev.Size()))
	l.WriteAt(make([]byte, 9000), 100)
	if !exists(path) {
		t.Fatal("no log file after a write")
	}
	if err := l.Discard(); err != nil || exists(path) {
		t.Fatalf("Discard: %v, file there %v", err, exists(path))
	}
	got := make([]byte, len(old))
	l.ReadAt(got, 0)
	if !bytes.Equal(got, old) {
		t.Fatal("reads after Discard do not show the device")
	}
	l.WriteZeroes(0, 512)
	if err := l.Close(); err != nil || exists(path) || !bytes.Equal(dev.b, old) {
		t.Fatalf("Close: %v, file there %v, device changed %v", err, exists(path), !bytes.Equal(dev.b, old))
	}
	if _, err := l.WriteAt([]byte("x"), 0); err == nil {
		t.Fatal("a write after Close succeeded")
	}
	if _, err := New(dev, path, target(dev.Size()+1)); !errors.Is(err, image.ErrInvalidArgument) {
		t.Fatalf("New with a target of another size: %v", err)
	}
}
