package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/qimg/qimg/internal/qemutest"
)

// snapshotDates masks the DATE column of snapshot -l, which differs
// between two runs.
var snapshotDates = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`)

// TestSnapshotChangesMatchQemu runs the same sequence of snapshot
// changes, writes and resizes with qemu-img on one copy of an image and
// with qimg on another: each step prints and exits alike, both images
// check clean with no leaks, the listings agree (but for the dates), and
// the active layer and every snapshot read the same.
func TestSnapshotChangesMatchQemu(t *testing.T) {
	type step []string // a qimg/qemu-img command, or "io CMD" run by qemu-io on both
	seq := []step{
		{"snapshot", "-c", "s1", "IMG"},
		{"io", "write -P 2 0 96k"},
		{"snapshot", "-c", "s2", "IMG"},
		{"snapshot", "-c", "s1", "IMG"}, // names may repeat
		{"resize", "IMG", "+1M"},
		{"io", "write -P 3 64k 64k"},
		{"snapshot", "-l", "IMG"},
		{"snapshot", "-a", "s1", "IMG"}, // the first s1, with the old size
		{"snapshot", "-a", "3", "IMG"},  // by ID
		{"snapshot", "-d", "s1", "IMG"},
		{"snapshot", "-a", "nope", "IMG"},
		{"snapshot", "-d", "nope", "IMG"},
		{"snapshot", "-d", "2", "IMG"}, // -d takes names only
		{"snapshot", "-c", "x", "-a", "s2", "IMG"},
		{"snapshot", "-a", "s2", "IMG"},
		{"snapshot", "-l", "IMG"},
		{"snapshot", "-d", "s2", "IMG"},
		{"snapshot", "-d", "s1", "IMG"},
		{"snapshot", "-l", "IMG"},
		{"snapshot", "IMG"},
	}
	for _, c := range []struct{ name, opts string }{
		{"default", ""},
		{"small-clusters-lazy", "cluster_size=4096,lazy_refcounts=on"},
		{"extended-l2", "extended_l2=on"},
		{"refcount-bits-4", "refcount_bits=4"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dq, di := t.TempDir(), t.TempDir()
			for _, d := range []string{dq, di} {
				args := []string{"create", "-q", "-f", "qcow2"}
				if c.opts != "" {
					args = append(args, "-o", c.opts)
				}
				img(t, d, append(args, "t.qcow2", "2M")...)
				qio(t, d, "qcow2", "t.qcow2", "write -P 1 0 1M", "write -c -P 5 1M 64k", "write -z 1536k 64k")
			}
			for _, s := range seq {
				if s[0] == "io" {
					qio(t, dq, "qcow2", "t.qcow2", s[1])
					qio(t, di, "qcow2", "t.qcow2", s[1])
					continue
				}
				args := make([]string, len(s))
				for i, a := range s {
					args[i] = strings.ReplaceAll(a, "IMG", "t.qcow2")
				}
				want := qemuIn(t, dq, "qemu-img", args...)
				got := qimgIn(t, di, args...)
				wantOut, gotOut := snapshotDates.ReplaceAllString(want.stdout, "DATE"), snapshotDates.ReplaceAllString(got.stdout, "DATE")
				if got.code != want.code || gotOut != wantOut || strings.TrimSpace(got.stderr) != strings.TrimSpace(normalize(want.stderr)) {
					t.Errorf("%v: qimg exit %d, stdout\n%s\nstderr %s\nqemu-img exit %d, stdout\n%s\nstderr %s", args, got.code, gotOut, got.stderr, want.code, wantOut, want.stderr)
				}
				qemutest.Check(t, filepath.Join(di, "t.qcow2"))
				same(t, dq, di, "compare", "-f", "qcow2", "-F", "qcow2", filepath.Join(dq, "t.qcow2"), filepath.Join(di, "t.qcow2"))
				sameSnapshots(t, dq, di)
			}
		})
	}
}

// sameSnapshots compares the contents of every snapshot qemu-img lists.
func sameSnapshots(t *testing.T, dq, di string) {
	t.Helper()
	list := qemuIn(t, dq, "qemu-img", "snapshot", "-l", "t.qcow2").stdout
	for _, line := range strings.Split(list, "\n")[min(2, len(list)):] {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		for _, d := range []string{dq, di} {
			img(t, d, "convert", "-f", "qcow2", "-O", "raw", "-l", "snapshot.id="+f[0], "t.qcow2", "snap"+f[0]+".raw")
		}
		same(t, dq, di, "compare", "-f", "raw", "-F", "raw", filepath.Join(dq, "snap"+f[0]+".raw"), filepath.Join(di, "snap"+f[0]+".raw"))
	}
}
