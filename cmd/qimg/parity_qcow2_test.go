package main

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Parity tests for qcow2 images qemu-img treats in its own particular way:
// odd virtual sizes, tables past the end of the file, extended L2 maps.
// Each fixture is made by qemu-img and qemu-io (then patched where the
// case needs a broken header) and every command runs on both tools.

// parityDirs builds a fixture in one directory with build and copies it to
// a second: qemu-img runs in the first, qimg in the second, so that
// commands that write can be compared by their results.
func parityDirs(t *testing.T, build func(dir string)) (dq, di string) {
	t.Helper()
	dq, di = t.TempDir(), t.TempDir()
	build(dq)
	if out, err := exec.Command("cp", "-a", dq+"/.", di).CombinedOutput(); err != nil {
		t.Fatalf("copying the fixture: %v %s", err, out)
	}
	return dq, di
}

// patchBE64 overwrites the big-endian 64-bit field at off of a file.
func patchBE64(t *testing.T, path string, off int64, v uint64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

// sameOutput runs a command that writes out (in the given format) with both
// tools, compares what they print, and then the images they wrote: the
// same virtual size and content by qemu-img, and a clean qemu-img check of
// a qcow2 written by qimg.
func sameOutput(t *testing.T, dq, di, out, format string, args ...string) {
	t.Helper()
	if r := same(t, dq, di, args...); r.code != 0 {
		return
	}
	want, got := infoJSON(t, dq, out), infoJSON(t, di, out)
	if want["virtual-size"] != got["virtual-size"] {
		t.Errorf("%v: virtual size %v, qemu-img makes %v", args, got["virtual-size"], want["virtual-size"])
	}
	if format == "qcow2" {
		if r := qemuIn(t, di, "qemu-img", "check", out); r.code != 0 {
			t.Errorf("%v: qemu-img check of qimg's output: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
	r := qemuIn(t, di, "qemu-img", "compare", "-f", format, "-F", format, filepath.Join(dq, out), filepath.Join(di, out))
	if r.code != 0 {
		t.Errorf("%v: qemu-img compare of the two outputs: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
	}
}

// oddSizeFixture makes qcow2 images whose header sizes are not multiples
// of 512: odd.qcow2 inside its last cluster, odd2.qcow2 a few bytes into
// a cluster that the rounded size no longer has.
func oddSizeFixture(t *testing.T, dir string) {
	img(t, dir, "create", "-q", "-f", "qcow2", "odd.qcow2", "1M")
	qio(t, dir, "qcow2", "odd.qcow2", "write -P 5 0 1M")
	img(t, dir, "create", "-q", "-f", "qcow2", "odd2.qcow2", "2M")
	qio(t, dir, "qcow2", "odd2.qcow2", "write -P 6 0 1M", "write -P 7 1048576 4096")
	// The virtual size is the 64-bit field at byte 24 of the header.
	patchBE64(t, filepath.Join(dir, "odd.qcow2"), 24, 1<<20+1436)
	patchBE64(t, filepath.Join(dir, "odd2.qcow2"), 24, 1<<20+100)
	img(t, dir, "create", "-q", "-f", "raw", "sector.raw", "1049600")
	qio(t, dir, "raw", "sector.raw", "write -P 5 0 1M")
}

// TestOddVirtualSizeMatchesQemu: qemu-img counts whole sectors, so a
// header size of 1M+1436 is 1049600 bytes (1M+1024) in info, map, check's
// cluster count, measure, compare and convert, and 1M+100 is 1M.
func TestOddVirtualSizeMatchesQemu(t *testing.T) {
	dq, di := parityDirs(t, func(dir string) { oddSizeFixture(t, dir) })
	for _, f := range []string{"odd.qcow2", "odd2.qcow2"} {
		for _, args := range [][]string{
			{"info", f},
			{"info", "--output=json", f},
			{"map", f},
			{"map", "--output=json", f},
			{"check", f},
			{"check", "--output=json", f},
			{"measure", "-O", "qcow2", f},
			{"measure", "-O", "raw", "--output=json", f},
			{"compare", f, "sector.raw"},
			{"compare", "-s", f, "sector.raw"},
		} {
			same(t, dq, dq, args...)
		}
	}
	for _, c := range []struct {
		out, format string
		args        []string
	}{
		{"o.raw", "raw", []string{"convert", "-O", "raw", "odd.qcow2", "o.raw"}},
		{"o2.raw", "raw", []string{"convert", "-O", "raw", "odd2.qcow2", "o2.raw"}},
		{"o.qcow2", "qcow2", []string{"convert", "-O", "qcow2", "odd.qcow2", "o.qcow2"}},
		{"oc.qcow2", "qcow2", []string{"convert", "-c", "-O", "qcow2", "odd.qcow2", "oc.qcow2"}},
		{"odd.qcow2", "qcow2", []string{"resize", "odd.qcow2", "2M"}},
	} {
		sameOutput(t, dq, di, c.out, c.format, c.args...)
	}
	// The converted raw files are byte for byte the same.
	for _, f := range []string{"o.raw", "o2.raw"} {
		a, errA := os.ReadFile(filepath.Join(dq, f))
		b, errB := os.ReadFile(filepath.Join(di, f))
		if errA != nil || errB != nil || string(a) != string(b) {
			t.Errorf("%s: qimg wrote %d bytes (%v), qemu-img %d (%v), or they differ", f, len(b), errB, len(a), errA)
		}
	}
}

// extendedL2Fixture makes images whose allocated clusters hold zero and
// unallocated subclusters (or, without extended L2, zero clusters that keep
// their host cluster): x.qcow2 alone, xb.qcow2 over a shorter backing
// file, xd.qcow2 with an external data file, z.qcow2 standard L2.
func extendedL2Fixture(t *testing.T, dir string) {
	ext := "extended_l2=on,cluster_size=64k"
	img(t, dir, "create", "-q", "-f", "qcow2", "-o", ext, "x.qcow2", "4M")
	pieces := []string{
		"write -P 1 0 4k", "write -P 2 12k 4k", "write -z 20k 4k", // cluster 0
		"write -P 3 64k 4k", "write -P 4 124k 4k", // cluster 1, first and last subcluster
		"write -z 200k 8k",                        // a cluster with only zero subclusters
		"write -P 5 1M 4k", "write -z 1056768 4k", // data, then zero, one gap apart
		"write -P 6 2M 64k", "write -z 2162688 4k", // a full cluster, then zero in the next
		"write -P 7 3145728 4k", "write -P 8 3211264 4k", // two clusters, contiguous on the host
		"write -z 3149824 60k", "write -P 9 4190208 4k", // zeroes after data; the last subcluster
	}
	qio(t, dir, "qcow2", "x.qcow2", pieces...)
	img(t, dir, "create", "-q", "-f", "qcow2", "base.qcow2", "1M")
	qio(t, dir, "qcow2", "base.qcow2", "write -P 10 0 1M")
	img(t, dir, "create", "-q", "-f", "qcow2", "-o", ext, "-b", "base.qcow2", "-F", "qcow2", "xb.qcow2", "4M")
	qio(t, dir, "qcow2", "xb.qcow2", "write -P 1 4k 4k", "write -z 20k 4k", "write -P 3 960k 4k",
		"write -P 2 1052672 4k", "write -z 1069056 8k")
	img(t, dir, "create", "-q", "-f", "qcow2", "-o", ext+",data_file=xd.data", "xd.qcow2", "1M")
	qio(t, dir, "qcow2", "xd.qcow2", "write -P 1 4k 4k", "write -z 20k 4k", "write -P 2 512k 4k")
	img(t, dir, "create", "-q", "-f", "qcow2", "z.qcow2", "4M")
	qio(t, dir, "qcow2", "z.qcow2", "write -P 1 0 256k", "write -z 0 64k", "write -z 128k 64k")
}

// TestMapExtendedL2MatchesQemu: qemu-img map lists the unallocated and zero
// subclusters of an allocated cluster as zero runs of their own with the
// cluster's host offset (QEMU's UNALLOCATED_ALLOC and ZERO_ALLOC), and a
// zero cluster that keeps its host cluster likewise; over a backing file
// the unallocated ones show the backing file's data instead. Converting
// and comparing the images gives qemu-img's results.
func TestMapExtendedL2MatchesQemu(t *testing.T) {
	dq, di := parityDirs(t, func(dir string) { extendedL2Fixture(t, dir) })
	for _, f := range []string{"x.qcow2", "xb.qcow2", "xd.qcow2", "z.qcow2"} {
		for _, args := range [][]string{
			{"map", f},
			{"map", "--output=json", f},
			{"map", "--output=json", "--start-offset=6k", "--max-length=100k", f},
			{"check", "--output=json", f},
		} {
			same(t, dq, dq, args...)
		}
		sameOutput(t, dq, di, "out.raw", "raw", "convert", "-O", "raw", f, "out.raw")
		sameOutput(t, dq, di, "out.qcow2", "qcow2", "convert", "-O", "qcow2", "-o", "extended_l2=on", f, "out.qcow2")
		same(t, dq, dq, "compare", f, filepath.Join(di, "out.raw"))
		same(t, dq, dq, "compare", "-s", f, filepath.Join(di, "out.qcow2"))
		os.Remove(filepath.Join(dq, "out.raw"))
		os.Remove(filepath.Join(di, "out.raw"))
		os.Remove(filepath.Join(dq, "out.qcow2"))
		os.Remove(filepath.Join(di, "out.qcow2"))
	}
	same(t, dq, dq, "compare", "x.qcow2", "xb.qcow2")
}

// pastEndFixture makes images whose L1 table (header offset 40) or
// snapshot table (offset 64) lies past the end of the file, near it and
// 1 TiB away. Each has a snapshot, so that the tables left behind still
// hold references.
func pastEndFixture(t *testing.T, dir string) {
	img(t, dir, "create", "-q", "-f", "qcow2", "snap.qcow2", "1M")
	qio(t, dir, "qcow2", "snap.qcow2", "write -P 1 0 128k")
	img(t, dir, "snapshot", "-c", "s1", "snap.qcow2")
	src, err := os.ReadFile(filepath.Join(dir, "snap.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		field int64
		off   uint64
	}{
		{"l1near.qcow2", 40, 1 << 20},
		{"l1far.qcow2", 40, 1 << 40},
		{"snapnear.qcow2", 64, 1 << 20},
		{"snapfar.qcow2", 64, 1 << 40},
	} {
		p := filepath.Join(dir, c.name)
		if err := os.WriteFile(p, src, 0o644); err != nil {
			t.Fatal(err)
		}
		patchBE64(t, p, c.field, c.off)
	}
}

// TestCheckTablesPastEndMatchQemu: qemu-img check opens an image whose L1
// or snapshot table lies past the end of the file (the missing bytes read
// as zeros), reports the table as a region exceeding the end of the file,
// the clusters the real tables still hold as leaks, and a snapshot entry
// read as zeros as incomplete, and exits 2; qimg check prints the same,
// human and JSON. Other commands keep refusing such an image. -r leaks
// (and -r all for the L1 table) repairs exactly what qemu-img repairs;
// the results hold the same guest data and check the same. -r all on the
// snapshot table, which qemu-img rewrites, is not compared: qimg does not
// rewrite it, and must still leave an image that checks no worse than
// after -r leaks.
func TestCheckTablesPastEndMatchQemu(t *testing.T) {
	dq, di := parityDirs(t, func(dir string) { pastEndFixture(t, dir) })
	files := []string{"l1near.qcow2", "l1far.qcow2", "snapnear.qcow2", "snapfar.qcow2"}
	for _, f := range files {
		for _, args := range [][]string{
			{"check", f},
			{"check", "--output=json", f},
			{"check", "-q", f},
		} {
			if r := same(t, dq, dq, args...); r.code != 2 {
				t.Errorf("%v: exit %d, want 2 (corruptions)", args, r.code)
			}
		}
		if r := qimgIn(t, dq, "info", f); r.code != 1 {
			t.Errorf("info %s: exit %d, want 1: only check opens such an image", f, r.code)
		}
	}
	repairs := [][]string{
		{"check", "-r", "leaks", "l1near.qcow2"},
		{"check", "-r", "leaks", "l1far.qcow2"},
		{"check", "-r", "all", "l1near.qcow2"},
		{"check", "-r", "all", "--output=json", "l1far.qcow2"},
		{"check", "-r", "leaks", "snapnear.qcow2"},
		{"check", "-r", "leaks", "--output=json", "snapfar.qcow2"},
	}
	for _, args := range repairs {
		dq, di := parityDirs(t, func(dir string) { pastEndFixture(t, dir) })
		same(t, dq, di, args...)
		f := args[len(args)-1]
		same(t, dq, di, "check", f)
		sameGuestData(t, filepath.Join(dq, f), filepath.Join(di, f))
	}
	for _, f := range []string{"snapnear.qcow2", "snapfar.qcow2"} {
		r := qimgIn(t, di, "check", "-r", "all", f)
		if r.code != 2 {
			t.Errorf("check -r all %s: exit %d, want 2 (the snapshot table is not rewritten)\n%s%s", f, r.code, r.stdout, r.stderr)
		}
		leaks := parityCopy(t, dq, f)
		qemuIn(t, filepath.Dir(leaks), "qemu-img", "check", "-r", "leaks", filepath.Base(leaks))
		want := qemuCheckCounts(t, leaks)
		got := qemuCheckCounts(t, filepath.Join(di, f))
		if got.code != want.code || got.errors != 0 || got.corruptions > want.corruptions || got.leaks > want.leaks {
			t.Errorf("qemu-img check after qimg check -r all %s: %+v; after qemu-img check -r leaks: %+v", f, got, want)
		}
		sameGuestData(t, leaks, filepath.Join(di, f))
	}
}

// sameGuestData fails unless qemu-img compare finds the same guest data in
// two qcow2 images (qimg compare refuses images this broken).
func sameGuestData(t *testing.T, a, b string) {
	t.Helper()
	r := qemuIn(t, filepath.Dir(a), "qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", a, b)
	if r.code != 0 {
		t.Errorf("qemu-img compare %s %s: exit %d\n%s%s", a, b, r.code, r.stdout, r.stderr)
	}
}

// checkCounts is what qemu-img check --output=json counts.
type checkCounts struct {
	code                       int
	errors, corruptions, leaks int64
}

func qemuCheckCounts(t *testing.T, path string) checkCounts {
	t.Helper()
	r := qemuIn(t, filepath.Dir(path), "qemu-img", "check", "--output=json", filepath.Base(path))
	var v struct {
		Errors      int64 `json:"check-errors"`
		Corruptions int64 `json:"corruptions"`
		Leaks       int64 `json:"leaks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("qemu-img check --output=json %s: %v\n%s%s", path, err, r.stdout, r.stderr)
	}
	return checkCounts{r.code, v.Errors, v.Corruptions, v.Leaks}
}

// parityCopy copies dir/f into a new directory under the same name.
func parityCopy(t *testing.T, dir, f string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, f))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), f)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
