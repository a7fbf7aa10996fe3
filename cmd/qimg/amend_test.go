package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/qimg/qimg/internal/qemutest"
)

// amendFixture makes images of several layouts, each with data, zero and
// compressed clusters: default, 4 KiB clusters, refcount widths 1, 4 and
// 64, internal snapshots, version 2, an overlay on a backing file, and
// features version 2 lacks.
func amendFixture(t *testing.T, dir string) {
	data := []string{"write -P 1 0 1M", "write -z 1M 128k", "write -c -P 2 2M 64k", "write -z -u 3M 64k"}
	for name, opts := range map[string]string{
		"d.qcow2": "", "c4k.qcow2": "cluster_size=4096", "r1.qcow2": "refcount_bits=1",
		"r4.qcow2": "refcount_bits=4", "r64.qcow2": "refcount_bits=64", "v2.qcow2": "compat=0.10",
		"el2.qcow2": "extended_l2=on", "zstd.qcow2": "compression_type=zstd", "lazy.qcow2": "lazy_refcounts=on",
	} {
		args := []string{"create", "-q", "-f", "qcow2"}
		if opts != "" {
			args = append(args, "-o", opts)
		}
		img(t, dir, append(args, name, "4M")...)
		cmds := data
		if name == "v2.qcow2" {
			cmds = []string{"write -P 1 0 1M", "write -c -P 2 2M 64k"}
		}
		qio(t, dir, "qcow2", name, cmds...)
	}
	img(t, dir, "create", "-q", "-f", "qcow2", "s.qcow2", "4M")
	qio(t, dir, "qcow2", "s.qcow2", data...)
	img(t, dir, "snapshot", "-c", "s1", "s.qcow2")
	qio(t, dir, "qcow2", "s.qcow2", "write -P 3 512k 1M", "write -z 0 64k", "write -z 3M 64k")
	img(t, dir, "create", "-q", "-f", "qcow2", "b.qcow2", "4M")
	qio(t, dir, "qcow2", "b.qcow2", "write -P 7 0 4M")
	img(t, dir, "create", "-q", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", "ov.qcow2")
	qio(t, dir, "qcow2", "ov.qcow2", "write -z 0 128k", "write -z -u 1M 64k", "write -P 4 2M 64k")
	img(t, dir, "create", "-q", "-f", "qcow2", "-o", "data_file=df.raw", "df.qcow2", "4M")
	img(t, dir, "create", "-q", "-f", "raw", "r.raw", "1M")
	img(t, dir, "create", "-q", "-f", "qcow2", "bm.qcow2", "4M")
	qio(t, dir, "qcow2", "bm.qcow2", data...)
	img(t, dir, "bitmap", "--add", "bm.qcow2", "b0")
}

// amendInfo is what qemu-img info says of an image, without the fields
// that depend on where clusters lie.
func amendInfo(t *testing.T, dir, file string) map[string]any {
	m := infoJSON(t, dir, file)
	for _, k := range []string{"actual-size", "filename", "dirty-flag"} {
		delete(m, k)
	}
	return m
}

func TestAmendMatchesQemu(t *testing.T) {
	base := t.TempDir()
	amendFixture(t, base)
	snapBefore := snapshotRaw(t, base, "s.qcow2")
	for _, c := range []struct {
		file string
		opts string
	}{
		{"d.qcow2", "compat=0.10"},
		{"c4k.qcow2", "compat=0.10"},
		{"s.qcow2", "compat=0.10"},
		{"ov.qcow2", "compat=0.10"},
		{"lazy.qcow2", "compat=0.10"},
		{"zstd.qcow2", "compat=0.10"},
		{"v2.qcow2", "compat=1.1"},
		{"v2.qcow2", "compat=v3,refcount_bits=4,lazy_refcounts=on"},
		{"v2.qcow2", "size=8M"},
		{"v2.qcow2", "compat=0.10"},
		{"d.qcow2", "refcount_bits=1"},
		{"d.qcow2", "refcount_bits=4"},
		{"c4k.qcow2", "refcount_bits=64"},
		{"r1.qcow2", "refcount_bits=16"},
		{"r4.qcow2", "refcount_bits=8"},
		{"r64.qcow2", "refcount_bits=2"},
		{"r4.qcow2", "compat=0.10,refcount_bits=16"},
		{"s.qcow2", "refcount_bits=8"},
		{"s.qcow2", "refcount_bits=1"},
		{"d.qcow2", "lazy_refcounts=on"},
		{"lazy.qcow2", "lazy_refcounts=off"},
		{"d.qcow2", "size=8M"},
		{"d.qcow2", "size=2M"},
		{"c4k.qcow2", "size=1536k"},
		{"s.qcow2", "size=2M"},
		{"s.qcow2", "size=16M"},
		{"ov.qcow2", "size=8M"},
		{"d.qcow2", "size=0"},
		{"d.qcow2", "size=3000"},
		{"d.qcow2", "size=-1"},
		{"d.qcow2", "size=8M,lazy_refcounts=on,refcount_bits=32"},
		{"d.qcow2", "backing_file=x"},
		{"d.qcow2", "backing_fmt=raw"},
		{"d.qcow2", "backing_file="},
		{"ov.qcow2", "backing_file=b.qcow2,backing_fmt=qcow2"},
		{"ov.qcow2", "backing_file=b.qcow2"},
		{"d.qcow2", "cluster_size=4096"},
		{"d.qcow2", "preallocation=full"},
		{"d.qcow2", "encryption=on"},
		{"d.qcow2", "encrypt.format=luks"},
		{"d.qcow2", "encrypt.new-secret=x"},
		{"d.qcow2", "extended_l2=on"},
		{"d.qcow2", "compression_type=zstd"},
		{"d.qcow2", "data_file=x"},
		{"d.qcow2", "data_file_raw=on"},
		{"d.qcow2", "data_file_raw=off"},
		{"d.qcow2", "compat=foo"},
		{"d.qcow2", "compat="},
		{"d.qcow2", "refcount_bits=3"},
		{"d.qcow2", "refcount_bits=128"},
		{"d.qcow2", "lazy_refcounts=maybe"},
		{"d.qcow2", "bogus=1"},
		{"d.qcow2", "help"},
		{"el2.qcow2", "compat=0.10"},
		{"df.qcow2", "compat=0.10"},
		{"r4.qcow2", "compat=0.10"},
		{"v2.qcow2", "lazy_refcounts=on"},
		{"v2.qcow2", "refcount_bits=8"},
		{"bm.qcow2", "lazy_refcounts=on,refcount_bits=8"},
		{"r.raw", "size=2M"},
		{"missing.qcow2", "size=2M"},
	} {
		args := []string{"amend", "-o", c.opts, c.file}
		t.Run(c.file+":"+c.opts, func(t *testing.T) {
			dq, di := parityDirs(t, func(dir string) {
				files := []string{"b.qcow2", "df.raw"}
				if c.file != "missing.qcow2" {
					files = append(files, c.file)
				}
				for i := range files {
					files[i] = filepath.Join(base, files[i])
				}
				if out, err := exec.Command("cp", append(append([]string{"-a"}, files...), dir)...).CombinedOutput(); err != nil {
					t.Fatalf("copying the fixture: %v %s", err, out)
				}
			})
			want := qemuIn(t, dq, "qemu-img", args...)
			got := qimgIn(t, di, args...)
			if got.code != want.code || got.stdout != want.stdout || got.stderr != amendNormalize(want.stderr) {
				t.Fatalf("%v: exit %d, stdout %q, stderr %q; qemu-img: exit %d, stdout %q, stderr %q",
					args, got.code, got.stdout, got.stderr, want.code, want.stdout, amendNormalize(want.stderr))
			}
			if !strings.HasSuffix(c.file, ".qcow2") || c.file == "missing.qcow2" {
				return
			}
			qemutest.Check(t, filepath.Join(di, c.file))
			if w, g := amendInfo(t, dq, c.file), amendInfo(t, di, c.file); !reflect.DeepEqual(w, g) {
				t.Errorf("%v: qemu-img info differs\nqimg's image:\n%s\nqemu-img's:\n%s", args, mustJSON(t, g), mustJSON(t, w))
			}
			same(t, dq, di, "compare", filepath.Join(dq, c.file), filepath.Join(di, c.file))
			if c.file != "s.qcow2" {
				return
			}
			// convert -l reads a snapshot at the active layer's size, so
			// after a resize qemu-img's result is the reference; else the
			// snapshot as it was: QEMU 7.2's downgrade writes zeros into a
			// cluster the active layer marks zero even when the snapshot
			// shares it (here its first 64 KiB).
			ref := snapBefore
			if strings.Contains(c.opts, "size=") {
				ref = snapshotRaw(t, dq, c.file)
			}
			if snapshotRaw(t, di, c.file) != ref {
				t.Errorf("%v: the snapshot's contents changed", args)
			}
		})
	}
}

// amendNormalize is normalize, with the hint that names the program.
func amendNormalize(s string) string {
	return strings.ReplaceAll(normalize(s), "'qemu-img rebase'", "'qimg rebase'")
}

// snapshotRaw is the contents of snapshot 1, as qemu-img reads them.
func snapshotRaw(t *testing.T, dir, file string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "snap.raw")
	img(t, dir, "convert", "-l", "snapshot.id=1", "-O", "raw", file, out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAmendRefusesBitmapDowngrade: QEMU 7.2 downgrades an image with
// persistent bitmaps and leaves a version 2 image whose bitmap clusters
// leak (qemu-img check exits 3); qimg refuses, and the image is unchanged.
func TestAmendRefusesBitmapDowngrade(t *testing.T) {
	dir := t.TempDir()
	amendFixture(t, dir)
	p := filepath.Join(dir, "bm.qcow2")
	before, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	r := qimgIn(t, dir, "amend", "-o", "compat=0.10", "bm.qcow2")
	if r.code != 1 || !strings.Contains(r.stderr, "Cannot downgrade an image with persistent dirty bitmaps") {
		t.Fatalf("amend -o compat=0.10 of an image with bitmaps: %+v", r)
	}
	if after, _ := os.ReadFile(p); string(after) != string(before) {
		t.Fatal("the refused downgrade changed the image")
	}
}
