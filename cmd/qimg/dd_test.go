package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/qimg/qimg/internal/qemutest"
)

// TestDDMatchesQemu runs qemu-img dd and qimg dd on the same inputs: the
// messages and exit codes agree, and the outputs are the same bytes, raw
// and qcow2 alike.
func TestDDMatchesQemu(t *testing.T) {
	dq, di := twin(t)
	for _, args := range [][]string{
		{"if=mp.qcow2", "of=out"}, // a chain over raw, with zero and compressed clusters
		{"-O", "qcow2", "if=mp.qcow2", "of=out"},
		{"-O", "qcow2", "bs=1M", "count=3", "skip=2", "if=mp.qcow2", "of=out"}, // count counts from the start
		{"-O", "qcow2", "bs=1000", "skip=3", "count=1000", "if=mp.qcow2", "of=out"},
		{"bs=3", "count=5", "if=odd.raw", "of=out"}, // rounded up to a sector
		{"-O", "qcow2", "bs=7", "skip=1", "if=odd.raw", "of=out"},
		{"bs=64k", "count=1k", "if=s.qcow2", "of=out"}, // count with a suffix
		{"-f", "raw", "if=r.raw", "of=out", "bs=1.5k", "count=2"},
		{"skip=100000", "if=odd.raw", "of=out"}, // past the end: an empty image and a warning
		{"count=0", "if=odd.raw", "of=out"},
		{"if=odd.raw", "of=out", "of=out2"}, // the last operand wins
		{"-U", "if=e.qcow2", "of=out"},
		{"bs=0", "if=odd.raw", "of=out"},
		{"bs=2147483648", "if=odd.raw", "of=out"},
		{"bs=1x", "if=odd.raw", "of=out"},
		{"count=-1", "if=odd.raw", "of=out"},
		{"count=1.5", "if=odd.raw", "of=out"},
		{"skip=1y", "if=odd.raw", "of=out"},
		{"bs", "if=odd.raw", "of=out"},
		{"foo=1", "if=odd.raw", "of=out"},
		{"if=odd.raw"},
		{"of=out"},
		{"-O", "foo", "if=odd.raw", "of=out"},
		{"if=missing", "of=out"},
		{"-f", "qcow2", "if=odd.raw", "of=out"},
		{"if=odd.raw", "of=nodir/out"},
	} {
		for _, d := range []string{dq, di} {
			os.Remove(filepath.Join(d, "out"))
			os.Remove(filepath.Join(d, "out2"))
		}
		r := same(t, dq, di, append([]string{"dd"}, args...)...)
		if r.code != 0 {
			continue
		}
		for _, out := range []string{"out", "out2"} {
			want, werr := os.ReadFile(filepath.Join(dq, out))
			got, gerr := os.ReadFile(filepath.Join(di, out))
			if os.IsNotExist(werr) && os.IsNotExist(gerr) {
				continue
			}
			if werr != nil || gerr != nil {
				t.Fatalf("%v: %v / %v", args, werr, gerr)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("dd %v: qimg wrote %d bytes that differ from qemu-img's %d", args, len(got), len(want))
			}
			if args[0] == "-O" {
				qemutest.Check(t, filepath.Join(di, out))
			}
		}
	}
}
