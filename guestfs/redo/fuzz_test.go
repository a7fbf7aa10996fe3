package redo

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/qimg/qimg/image"
)

// FuzzRead reads mutated logs, then views and replays the ones that
// pass onto a device of the size they name: no panic, no allocation
// from a field, and every error either ErrIncomplete or one naming the
// log.
func FuzzRead(f *testing.F) {
	log, _, _ := committedLog(&testing.T{})
	f.Add(log, false)
	f.Add(log, true)
	f.Add(log[:len(log)-1], false)
	f.Add(log[:headerSize], false)
	f.Add([]byte("QIMGREDO"), true)
	// Replay syncs the log's directory: on tmpfs that costs nothing.
	dir := f.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "redo-fuzz-"); err == nil {
			dir = d
			f.Cleanup(func() { os.RemoveAll(d) })
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, fix bool) {
		if fix {
			b = fixSums(b)
		}
		path := filepath.Join(dir, "log")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := Read(path)
		if err != nil {
			if !errors.Is(err, ErrIncomplete) && !errors.Is(err, image.ErrCorrupt) && !errors.Is(err, image.ErrUnsupported) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		defer p.Close()
		dev := zeroDevice{p.Target.Size}
		v, err := p.View(dev)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		for _, off := range []int64{0, dev.size / 2, dev.size - 1} {
			if off < 0 {
				continue
			}
			if _, err := v.ReadAt(buf, off); err != nil && err != io.EOF {
				t.Fatalf("view read at %d: %v", off, err)
			}
			if off < dev.size {
				v.Extent(off, 1<<40)
			}
		}
		if err := p.Replay(context.Background(), dev); err != nil {
			t.Fatalf("replay of a log that read: %v", err)
		}
	})
}

// fixSums makes a mutated log's checksums and footer links right, so
// that mutations reach the checks behind them.
func fixSums(b []byte) []byte {
	if len(b) < headerSize+footerSize {
		return b
	}
	le.PutUint32(b[headerSize-4:], crc(b[:headerSize-4]))
	ft := b[len(b)-footerSize:]
	le.PutUint64(ft[8:], le.Uint64(b[16:]))
	le.PutUint32(ft[40:], le.Uint32(b[headerSize-4:]))
	tableOff := int64(le.Uint64(ft[16:]))
	if tableOff >= headerSize && tableOff <= int64(len(b)-footerSize) {
		le.PutUint32(ft[32:], crc(b[headerSize:tableOff]))
		le.PutUint32(ft[36:], crc(b[tableOff:len(b)-footerSize]))
	}
	le.PutUint32(ft[footerSize-4:], crc(ft[:footerSize-4]))
	return b
}
