package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/internal/qemutest"
)

var readOnlyImages = []string{"a.qcow2", "v2.qcow2", "c.qcow2", "m.qcow2", "r.raw", "mp.qcow2", "d.qcow2",
	"e.qcow2", "f.qcow2", "s.qcow2", "odd.raw", "sub/l.qcow2", "leak.qcow2", "bm.qcow2", "bmu.qcow2"}

// Read-only commands run on the same files: their output, which includes
// the file name and its disk usage, must be byte-identical to qemu-img's.
func TestReadOnlyCommandsMatchQemu(t *testing.T) {
	dir := t.TempDir()
	fixtures(t, dir)
	for _, f := range readOnlyImages {
		same(t, dir, dir, "info", f)
		same(t, dir, dir, "info", "--output=json", f)
		same(t, dir, dir, "map", "--output=json", f)
		same(t, dir, dir, "measure", "-O", "qcow2", f)
		same(t, dir, dir, "measure", "-O", "qcow2", "--output=json", f)
		same(t, dir, dir, "measure", "-O", "raw", f)
		same(t, dir, dir, "snapshot", "-l", f)
	}
	for _, args := range [][]string{
		{"info", "--backing-chain", "m.qcow2"},
		{"info", "--backing-chain", "--output=json", "m.qcow2"},
		{"info", "--backing-chain", "mp.qcow2"},
		{"info", "-f", "qcow2", "s.qcow2"},
		{"info", "-f", "raw", "a.qcow2"},
		{"info", "-U", "a.qcow2"},
		{"info", filepath.Join(dir, "c.qcow2")},
		{"info", "--output=json", filepath.Join(dir, "sub/l.qcow2")},
		{"info", "nonexistent.qcow2"},
		{"info", "-f", "qcow2", "r.raw"},
		{"info", "--output=xml", "a.qcow2"},
		{"info"},
		{"map", "a.qcow2"},
		{"map", "r.raw"},
		{"map", "c.qcow2"},
		{"map", "d.qcow2"},
		{"map", "e.qcow2"},
		{"map", "--output=json", "-f", "raw", "a.qcow2"},
		{"map", "--output=json", "--start-offset=1M", "--max-length=1M", "mp.qcow2"},
		{"measure", "--size", "1G", "-O", "qcow2"},
		{"measure", "--size", "1G", "-O", "qcow2", "--output=json"},
		{"measure", "--size", "1G"},
		{"measure", "--size", "1000", "-O", "raw"},
		{"measure", "--size", "10G", "-O", "qcow2", "-o", "cluster_size=4k,refcount_bits=1"},
		{"measure", "--size", "10G", "-O", "qcow2", "-o", "preallocation=full"},
		{"measure", "--size", "10G", "-O", "qcow2", "-o", "extended_l2=on"},
		{"measure", "--size", "1P", "-O", "qcow2", "-o", "cluster_size=2M,refcount_bits=64"},
		{"measure", "--size", "1P", "-O", "qcow2", "-o", "cluster_size=512"},
		{"measure", "--size", "1G", "-O", "qcow2", "-o", "compat=0.10"},
		{"measure", "-O", "qcow2", "-o", "cluster_size=4k", "mp.qcow2"},
		{"measure", "-O", "qcow2", "-o", "backing_file=a.qcow2", "mp.qcow2"},
		{"measure", "-O", "qcow2", "-o", "compat=0.10", "s.qcow2"},
		{"measure", "--size", "1G", "-O", "qcow2", "a.qcow2"},
		{"measure", "-O", "qcow2"},
		{"measure", "-O", "qcow2", "-o", "cluster_size=1000", "--size", "1G"},
		{"measure", "-O", "qcow2", "-o", "preallocation=bogus", "--size", "1G"},
		{"measure", "-O", "vmdk2", "--size", "1G"},
		{"check", "a.qcow2"},
		{"check", "--output=json", "a.qcow2"},
		{"check", "mp.qcow2"},
		{"check", "--output=json", "mp.qcow2"},
		{"check", "s.qcow2"},
		{"check", "d.qcow2"},
		{"check", "e.qcow2"},
		{"check", "v2.qcow2"},
		{"check", "leak.qcow2"},
		{"check", "--output=json", "leak.qcow2"},
		{"check", "corrupt.qcow2"},
		{"check", "--output=json", "corrupt.qcow2"},
		{"check", "-q", "leak.qcow2"},
		{"check", "r.raw"},
		{"check", "--output=json", "r.raw"},
		{"check", "nonexistent.qcow2"},
		{"check", "-r", "bogus", "a.qcow2"},
		{"compare", "a.qcow2", "v2.qcow2"},
		{"compare", "-s", "a.qcow2", "v2.qcow2"},
		{"compare", "a.qcow2", "a.qcow2"},
		{"compare", "mp.qcow2", "r.raw"},
		{"compare", "-s", "mp.qcow2", "r.raw"},
		{"compare", "-q", "mp.qcow2", "r.raw"},
		{"compare", "a.qcow2", "nonexistent"},
		{"compare", "-f", "raw", "-F", "raw", "r.raw", "r.raw"},
		{"compare", "z1", "z2"},
		{"compare", "-s", "z1", "z2"},
		{"compare", "z2", "z1"},
		{"compare", "-s", "q1", "z1"},
		{"compare", "q1", "z1"},
		{"compare", "c.qcow2", "a.qcow2"},
		{"compare", "odd.raw", "odd.raw"},
		{"snapshot", "-l", "-U", "s.qcow2"},
		{"bogus-command"},
	} {
		same(t, dir, dir, args...)
	}
}

// Writing commands run on twin copies; output and the resulting images
// must agree.
func TestCreateMatchesQemu(t *testing.T) {
	for _, args := range [][]string{
		{"create", "-f", "qcow2", "x.qcow2", "1G"},
		{"create", "-f", "qcow2", "-o", "compat=0.10", "x.qcow2", "100M"},
		{"create", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", "x.qcow2"},
		{"create", "-f", "raw", "x.raw", "10M"},
		{"create", "x.raw", "1M"},
		{"create", "-f", "qcow2", "-o", "preallocation=metadata,cluster_size=4096,lazy_refcounts=on,refcount_bits=8", "x.qcow2", "5M"},
		{"create", "-f", "qcow2", "-o", "extended_l2=on,compression_type=zstd", "x.qcow2", "1000"},
		{"create", "-f", "qcow2", "-o", "data_file=x.data,data_file_raw=on", "x.qcow2", "1M"},
		{"create", "-f", "qcow2", "-b", "r.raw", "-F", "raw", "x.qcow2", "20M"},
		{"create", "-f", "qcow2", "-b", "odd.raw", "-F", "raw", "x.qcow2"},
		{"create", "-f", "raw", "-o", "preallocation=full", "x.raw", "1M"},
		{"create", "-f", "qcow2", "-u", "-b", "nonexistent", "-F", "qcow2", "x.qcow2", "1M"},
		{"create", "-f", "qcow2", "-o", "cluster_size=4k,preallocation=off,lazy_refcounts=off,refcount_bits=16,compression_type=zlib,extended_l2=off", "x.qcow2", "1k"},
		{"create", "-f", "qcow2", "-o", "cluster_size=2M,refcount_bits=64,lazy_refcounts=true", "x.qcow2", "3G"},
		{"create", "-f", "qcow2", "-o", "size=2M", "x.qcow2"},
		{"create", "-f", "qcow2", "-o", "backing_file=a.qcow2,backing_fmt=qcow2", "x.qcow2"},
		{"create", "-f", "qcow2", "-o", "preallocation=falloc", "x.qcow2", "1M"},
		{"create", "-f", "qcow2", "-o", "preallocation=full", "x.qcow2", "1M"},
		{"create", "-f", "qcow2", "-o", "compat=v3", "x.qcow2", "1.5M"},
		{"create", "-f", "qcow2", "x.qcow2", "1M", "-o", "lazy_refcounts=on", "-o", "refcount_bits=1"},
		{"create", "-q", "-f", "qcow2", "x.qcow2", "0x100000"},
		{"create", "-f", "qcow2", "x.qcow2", "1b"},
		{"create", "-f", "raw", "-o", "help"},
		// errors
		{"create", "-f", "qcow2", "-o", "cluster_size=3000", "x.qcow2", "1M"},
		{"create", "-f", "qcow2", "-o", "foo=bar", "x.qcow2", "1M"},
		{"create", "-f", "qcow2", "x.qcow2", "1Q"},
		{"create", "-f", "qcow2", "x.qcow2", "1.5"},
		{"create", "-f", "qcow2", "x.qcow2", "16E"},
		{"create", "-f", "qcow2", "x.qcow2"},
		{"create", "-f", "vmdk2", "x.qcow2", "1M"},
		{"create", "-f", "qcow2", "/nonexistent/x.qcow2", "1M"},
		{"create", "-f", "qcow2", "-b", "nonexistent", "-F", "qcow2", "x.qcow2"},
		{"create", "-f", "qcow2", "-b", "r.raw", "-F", "qcow2", "x.qcow2"},
		{"create", "-f", "qcow2", "-o", "lazy_refcounts=maybe", "x.qcow2", "1M"},
		{"create", "-f", "qcow2", "-o", "refcount_bits=3", "x.qcow2", "1M"},
		{"create", "-f", "qcow2", "-o", "compat=1.0", "x.qcow2", "1M"},
		{"create", "-f", "qcow2", "-o", "compression_type=lz4", "x.qcow2", "1M"},
		{"create", "-f", "qcow2", "-o", "preallocation=foo", "x.qcow2", "1M"},
		{"create", "-f", "qcow2", "-o", "compat=0.10,refcount_bits=8", "x.qcow2", "1M"},
		{"create", "-f", "qcow2", "-o", "compat=0.10,lazy_refcounts=on", "x.qcow2", "1M"},
		{"create", "-f", "qcow2", "-o", "compat=0.10,extended_l2=on", "x.qcow2", "1M"},
		{"create", "-f", "qcow2", "-o", "cluster_size=4k,extended_l2=on", "x.qcow2", "1M"},
		{"create", "-f", "qcow2", "-o", "data_file_raw=on", "x.qcow2", "1M"},
		{"create", "-f", "qcow2", "-o", "backing_file=a.qcow2,backing_fmt=qcow2,preallocation=metadata", "x.qcow2", "1M"},
		{"create", "-f", "raw", "-b", "a.qcow2", "-F", "qcow2", "x.raw"},
		{"create", "-f", "qcow2", "-b", "x.qcow2", "-F", "qcow2", "x.qcow2"},
		{"create", "-f", "qcow2", "-F", "qcow2", "x.qcow2", "1M"},
		{"create", "-f", "qcow2", "x.qcow2", "1", "2"},
	} {
		dq, di := twin(t)
		r := same(t, dq, di, args...)
		out := args[len(args)-1]
		for _, a := range args {
			if strings.HasPrefix(a, "x.") {
				out = a
			}
		}
		_, errQ := os.Stat(filepath.Join(dq, out))
		_, errI := os.Stat(filepath.Join(di, out))
		if (errQ == nil) != (errI == nil) {
			t.Errorf("%v: qemu-img made %s: %v, qimg: %v", args, out, errQ == nil, errI == nil)
		}
		if r.code != 0 || errI != nil || strings.Contains(strings.Join(args, " "), "help") {
			continue
		}
		// The new images must describe themselves identically (modulo
		// disk usage, which depends on how the files were written).
		want := infoJSON(t, dq, out)
		got := infoJSON(t, di, out)
		delete(want, "actual-size")
		delete(got, "actual-size")
		if a, b := mustJSON(t, got), mustJSON(t, want); a != b {
			t.Errorf("%v: qemu-img info of qimg's image:\n%s\nof qemu-img's:\n%s", args, a, b)
		}
		if strings.HasSuffix(out, ".qcow2") && !strings.Contains(strings.Join(args, " "), "nonexistent") {
			qemutest.Check(t, filepath.Join(di, out))
		}
	}
}

func infoJSON(t *testing.T, dir, file string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(img(t, dir, "info", "--output=json", file)), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestResizeMatchesQemu(t *testing.T) {
	for _, args := range [][]string{
		{"resize", "a.qcow2", "2G"},
		{"resize", "a.qcow2", "1G"},
		{"resize", "a.qcow2", "+512M"},
		{"resize", "-q", "a.qcow2", "+1k"},
		{"resize", "--shrink", "a.qcow2", "512M"},
		{"resize", "--shrink", "mp.qcow2", "1M"},
		{"resize", "a.qcow2", "512M"},
		{"resize", "a.qcow2", "--", "-1G"},
		{"resize", "a.qcow2", "--", "-5G"},
		{"resize", "--shrink", "a.qcow2", "--", "-100"},
		{"resize", "a.qcow2", "xx"},
		{"resize", "a.qcow2"},
		{"resize", "-f", "raw", "r.raw", "20M"},
		{"resize", "-f", "raw", "r.raw", "5M"},
		{"resize", "--shrink", "-f", "raw", "r.raw", "5M"},
		{"resize", "r.raw", "+1M"},
		{"resize", "c.qcow2", "+1M"},
	} {
		dq, di := twin(t)
		r := same(t, dq, di, args...)
		if r.code != 0 {
			continue
		}
		for _, f := range []string{"a.qcow2", "mp.qcow2", "r.raw", "c.qcow2"} {
			want, got := infoJSON(t, dq, f), infoJSON(t, di, f)
			if want["virtual-size"] != got["virtual-size"] {
				t.Errorf("%v: %s virtual size %v, qemu-img makes %v", args, f, got["virtual-size"], want["virtual-size"])
			}
			if strings.HasSuffix(f, ".qcow2") {
				qemutest.Check(t, filepath.Join(di, f))
			}
			same(t, dq, di, "compare", "-f", want["format"].(string), "-F", want["format"].(string), filepath.Join(dq, f), filepath.Join(di, f))
		}
	}
}

func TestCheckRepairMatchesQemu(t *testing.T) {
	for _, args := range [][]string{
		{"check", "-r", "leaks", "leak.qcow2"},
		{"check", "-r", "all", "leak.qcow2"},
		{"check", "-r", "all", "corrupt.qcow2"},
		{"check", "-r", "all", "--output=json", "corrupt.qcow2"},
	} {
		dq, di := twin(t)
		same(t, dq, di, args...)
		f := args[len(args)-1]
		same(t, dq, di, "check", f)
	}
}

// convert is checked by its result: qemu-img must find the output clean
// and identical in content to the source.
func TestConvertResultVerifiedByQemu(t *testing.T) {
	dir := t.TempDir()
	fixtures(t, dir)
	for _, c := range []struct {
		args []string
		src  string
	}{
		{[]string{"-O", "qcow2"}, "mp.qcow2"},
		{[]string{"-O", "qcow2", "-c"}, "mp.qcow2"},
		{[]string{"-O", "qcow2", "-c", "-o", "compression_type=zstd,cluster_size=4k"}, "s.qcow2"},
		{[]string{"-O", "raw"}, "mp.qcow2"},
		{[]string{"-f", "raw", "-O", "qcow2", "-o", "compat=0.10"}, "r.raw"},
		{[]string{"-O", "qcow2", "-S", "0", "-m", "2"}, "e.qcow2"},
		{[]string{"-O", "qcow2", "-B", "r.raw", "-F", "raw"}, "mp.qcow2"},
		{[]string{"-p", "-q", "-O", "qcow2"}, "odd.raw"},
		{[]string{"-C", "-O", "raw"}, "mp.qcow2"},
		{[]string{"-C", "-m", "8", "-W", "-f", "raw", "-O", "qcow2"}, "r.raw"},
	} {
		out := "out." + c.args[len(c.args)-1]
		if !strings.HasPrefix(out, "out.q") && !strings.HasPrefix(out, "out.r") {
			out = "out.img"
		}
		args := append(append([]string{"convert"}, c.args...), c.src, out)
		r := qimgIn(t, dir, args...)
		if r.code != 0 || r.stdout != "" || r.stderr != "" {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
		f := infoJSON(t, dir, out)["format"].(string)
		if f == "qcow2" {
			qemutest.Check(t, filepath.Join(dir, out))
		}
		if got := qemuIn(t, dir, "qemu-img", "compare", c.src, out); got.code != 0 {
			t.Errorf("%v: qemu-img compare: %s%s", args, got.stdout, got.stderr)
		}
		os.Remove(filepath.Join(dir, out))
	}
	dq, di := twin(t)
	for _, args := range [][]string{
		{"convert", "r.raw"},
		{"convert", "-O", "vmdk2", "r.raw", "x"},
		{"convert", "-O", "qcow2", "nonexistent", "x"},
		{"convert", "-O", "raw", "-c", "r.raw", "x"},
		{"convert", "-O", "qcow2", "-o", "cluster_size=3000", "r.raw", "x.qcow2"},
		{"convert", "-O", "qcow2", "-S", "100", "r.raw", "x.qcow2"},
		{"convert", "-n", "-O", "qcow2", "r.raw", "nonexistent.qcow2"},
		{"convert", "-O", "qcow2", "--target-is-zero", "r.raw", "x.qcow2"},
		{"convert", "-O", "qcow2", "-m", "17", "r.raw", "x.qcow2"},
		{"convert", "-C", "-c", "-O", "qcow2", "r.raw", "x.qcow2"},
		{"convert", "-C", "-S", "4k", "-O", "raw", "r.raw", "x.raw"},
		{"convert", "-C", "-S", "0", "-O", "raw", "r.raw", "x.raw"},
	} {
		same(t, dq, di, args...)
	}
}

// info, map, check, compare, measure and snapshot -l must leave their
// input exactly as it was, content and modification time.
func TestReadOnlyCommandsDoNotModify(t *testing.T) {
	dir := t.TempDir()
	fixtures(t, dir)
	type state struct {
		sum   [32]byte
		mtime int64
		size  int64
	}
	snapshot := func() map[string]state {
		m := map[string]state{}
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			m[p] = state{sha256.Sum256(b), fi.ModTime().UnixNano(), fi.Size()}
			return nil
		})
		return m
	}
	before := snapshot()
	for _, f := range readOnlyImages {
		for _, args := range [][]string{
			{"info", f}, {"info", "--backing-chain", "--output=json", f}, {"map", f}, {"map", "--output=json", f},
			{"check", f}, {"compare", f, f}, {"measure", "-O", "qcow2", f}, {"snapshot", "-l", f},
		} {
			qimgIn(t, dir, args...)
		}
	}
	after := snapshot()
	for p, s := range before {
		if after[p] != s {
			t.Errorf("%s changed", p)
		}
	}
}

// The built binary: version, help for every command, exit codes and no
// progress output when standard error is not a terminal.
func TestBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "qimg")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	fixtures(t, dir)
	runBin := func(args ...string) result {
		t.Helper()
		return qemuIn(t, dir, bin, args...)
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		if r := runBin(args...); r.code != 0 || !strings.HasPrefix(r.stdout, "qimg version ") || !strings.Contains(r.stdout, "qemu-img 7.2") {
			t.Errorf("%v: %+v", args, r)
		}
	}
	r := runBin("--help")
	for _, c := range []string{"info", "check", "create", "convert", "resize", "compare", "map", "measure", "snapshot", "version"} {
		if !strings.Contains(r.stdout, "\n  "+c+" ") {
			t.Errorf("--help does not list %s:\n%s", c, r.stdout)
		}
		h := runBin("help", c)
		if h.code != 0 || !strings.Contains(h.stdout, "Usage:") {
			t.Errorf("help %s: %+v", c, h)
		}
		// Every flag is explained.
		for _, line := range strings.Split(h.stdout, "\n") {
			if l := strings.TrimSpace(line); strings.HasPrefix(l, "-") && !strings.Contains(l, "  ") {
				t.Errorf("help %s: flag without explanation: %q", c, l)
			}
		}
	}
	if r := runBin("convert", "-p", "-O", "qcow2", "r.raw", "p.qcow2"); r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Errorf("convert -p without a terminal printed %+v", r)
	}
	if r := runBin("check", "r.raw"); r.code != 63 {
		t.Errorf("check of raw: exit %d, want 63", r.code)
	}
	if r := runBin("compare", "z1", "z2"); r.code != 1 {
		t.Errorf("compare of different images: exit %d, want 1", r.code)
	}
	if r := runBin("compare", "z1", "nonexistent"); r.code != 2 || !strings.HasPrefix(r.stderr, "qimg: ") {
		t.Errorf("compare with a missing file: %+v, want exit 2 and a qimg: message", r)
	}
	if r := runBin("check", "corrupt.qcow2"); r.code != 2 {
		t.Errorf("check of a corrupt image: exit %d, want 2", r.code)
	}
	if r := runBin("check", "leak.qcow2"); r.code != 3 {
		t.Errorf("check of a leaking image: exit %d, want 3", r.code)
	}
}

// TestRebaseMatchesQemu rebases fixture overlays both ways: output and exit
// code as qemu-img's, then the same content (qemu-img compare), the same
// header (info), the same clusters copied into the image, and a clean
// check.
func TestRebaseMatchesQemu(t *testing.T) {
	for _, args := range [][]string{
		{"rebase", "-b", "", "mp.qcow2"},
		{"rebase", "-b", "z2", "-F", "raw", "mp.qcow2"},
		{"rebase", "-q", "-b", "q1", "-F", "qcow2", "m.qcow2"},
		{"rebase", "-b", "mp.qcow2", "-F", "qcow2", "a.qcow2"},
		{"rebase", "-u", "-b", "z1", "-F", "raw", "mp.qcow2"},
		{"rebase", "-u", "-b", "", "c.qcow2"},
		{"rebase", "mp.qcow2"},
		{"rebase", "-b", "nonexistent.qcow2", "-F", "qcow2", "mp.qcow2"},
		{"rebase", "-b", "z1", "mp.qcow2"},
		{"rebase", "-b", "z1", "-F", "raw", "r.raw"},
	} {
		dq, di := twin(t)
		r := same(t, dq, di, args...)
		f := args[len(args)-1]
		want, got := infoJSON(t, dq, f), infoJSON(t, di, f)
		delete(want, "actual-size")
		delete(got, "actual-size")
		if a, b := mustJSON(t, got), mustJSON(t, want); a != b {
			t.Errorf("%v: qemu-img info after qimg:\n%s\nafter qemu-img:\n%s", args, a, b)
		}
		if r.code != 0 {
			continue
		}
		qemutest.Check(t, filepath.Join(di, f))
		same(t, dq, di, "compare", filepath.Join(dq, f), filepath.Join(di, f))
		if a, b := topAllocated(t, di, f), topAllocated(t, dq, f); a != b {
			t.Errorf("%v: ranges the image holds itself: %s, qemu-img leaves %s", args, a, b)
		}
	}
}

// topAllocated lists the guest ranges an image defines itself (depth 0 in
// qemu-img map), merged. The map's other columns depend on how sparse the
// file is on disk, which copying fixtures changes.
func topAllocated(t *testing.T, dir, file string) string {
	t.Helper()
	var extents []struct {
		Start, Length int64
		Depth         int
		Present       bool
	}
	if err := json.Unmarshal([]byte(img(t, dir, "map", "--output=json", file)), &extents); err != nil {
		t.Fatal(err)
	}
	var ranges [][2]int64
	for _, e := range extents {
		if e.Depth != 0 || !e.Present {
			continue
		}
		if n := len(ranges); n > 0 && ranges[n-1][1] == e.Start {
			ranges[n-1][1] += e.Length
			continue
		}
		ranges = append(ranges, [2]int64{e.Start, e.Start + e.Length})
	}
	return fmt.Sprint(ranges)
}

// TestCommitMatchesQemu commits fixture overlays into their backing files
// (qcow2 and raw) both ways: output and exit code as qemu-img's, then the
// overlay and its backing file read the same and hold the same ranges.
func TestCommitMatchesQemu(t *testing.T) {
	for _, c := range []struct {
		args []string
		base string
	}{
		{[]string{"commit", "mp.qcow2"}, "r.raw"},
		{[]string{"commit", "-d", "mp.qcow2"}, "r.raw"},
		{[]string{"commit", "-q", "m.qcow2"}, "c.qcow2"},
		{[]string{"commit", "-f", "qcow2", "c.qcow2"}, "a.qcow2"},
		{[]string{"commit", "a.qcow2"}, ""},
		{[]string{"commit", "-f", "raw", "r.raw"}, ""},
		{[]string{"commit", "nonexistent.qcow2"}, ""},
	} {
		dq, di := twin(t)
		r := same(t, dq, di, c.args...)
		if r.code != 0 {
			continue
		}
		for _, f := range []string{c.args[len(c.args)-1], c.base} {
			same(t, dq, di, "compare", filepath.Join(dq, f), filepath.Join(di, f))
			if a, b := topAllocated(t, di, f), topAllocated(t, dq, f); a != b {
				t.Errorf("%v: ranges %s holds itself: %s, with qemu-img %s", c.args, f, a, b)
			}
			if strings.HasSuffix(f, ".qcow2") {
				qemutest.Check(t, filepath.Join(di, f))
			}
		}
	}
}
