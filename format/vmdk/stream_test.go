package vmdk

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

// writeStream writes content through a StreamWriter as the conversion
// pipeline does: 1 MiB units in order, all-zero 4 KiB blocks as
// WriteZeroes runs, data runs as WriteAt.
func writeStream(t testing.TB, p string, content []byte) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := CreateStream(f, p, int64(len(content)), StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(content))
	for unit := int64(0); unit < size; unit += 1 << 20 {
		end := min(unit+1<<20, size)
		for off := unit; off < end; {
			zero := isZero(content[off:min(off+4096, end)])
			run := off
			for run < end && isZero(content[run:min(run+4096, end)]) == zero {
				run = min(run+4096, end)
			}
			if zero {
				err = w.WriteZeroes(off, run-off)
			} else {
				_, err = w.WriteAt(content[off:run], off)
			}
			if err != nil {
				t.Fatal(err)
			}
			off = run
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
}

// TestStreamWriter writes disk-like inputs through StreamWriter and has
// qemu-img judge the result: check, compare, info; our reader reads it
// back; and its size is close to qemu-img's own streamOptimized output.
func TestStreamWriter(t *testing.T) {
	for _, size := range []int64{5<<20 + 1000, 4 << 20, 1000, 0, 40<<20 + 4096} {
		dir := t.TempDir()
		src, content := diskLike(t, dir, size, uint64(size)+3)
		if size == 40<<20+4096 {
			// Mostly holes, data in two distant grain tables.
			clear(content)
			copy(content[100:], "start")
			copy(content[39<<20:], bytes.Repeat([]byte("end of disk "), 5000))
			if err := os.WriteFile(src, content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		p := filepath.Join(dir, "out.vmdk")
		writeStream(t, p, content)
		if size == 0 {
			// QEMU 7.2 cannot open a VMDK of capacity 0 (it takes it
			// for a descriptor file); we read it as an empty disk.
			img, err := Open(p, nil)
			if err != nil {
				t.Fatal(err)
			}
			if img.Size() != 0 {
				t.Fatalf("empty stream has size %d", img.Size())
			}
			img.Close()
			continue
		}
		qemutest.Check(t, p)
		qemutest.Img(t, "compare", "-f", "vmdk", "-F", "raw", p, src)
		info := qemutest.Img(t, "info", p)
		if !strings.Contains(info, "create type: streamOptimized") {
			t.Fatalf("qemu-img info:\n%s", info)
		}
		img, err := Open(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, img); !bytes.Equal(got, padSector(content)) {
			t.Fatalf("size %d: our reader reads different data", size)
		}
		checkMap(t, img, p)
		img.Close()
		// NewReader reads the same stream from memory.
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		mimg, err := NewReader(bytes.NewReader(b), int64(len(b)), "mem")
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, mimg); !bytes.Equal(got, padSector(content)) {
			t.Fatalf("size %d: NewReader reads different data", size)
		}
		q := filepath.Join(dir, "qemu.vmdk")
		qemutest.Img(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", src, q)
		st, err := os.Stat(q)
		if err != nil {
			t.Fatal(err)
		}
		ours := int64(len(b))
		t.Logf("size %d: ours %d bytes, qemu-img %d bytes", size, ours, st.Size())
		if d := ours - st.Size(); d > st.Size()/100+65536 || -d > st.Size()/100+65536 {
			t.Errorf("size %d: ours %d bytes, qemu-img %d bytes", size, ours, st.Size())
		}
	}
}

// TestStreamOrder checks the in-order contract and argument errors.
func TestStreamOrder(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "o.vmdk"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := CreateStream(f, f.Name(), 1<<20, StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte("abc"), 4096); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte("x"), 4096); !errors.Is(err, image.ErrInvalidArgument) {
		t.Fatalf("overlapping write: %v", err)
	}
	if err := w.WriteZeroes(0, 512); !errors.Is(err, image.ErrInvalidArgument) {
		t.Fatalf("backward zero write: %v", err)
	}
	if _, err := w.WriteAt([]byte("x"), 1<<20); !errors.Is(err, image.ErrInvalidArgument) {
		t.Fatalf("write past the end: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte("x"), 1<<19); !errors.Is(err, image.ErrInvalidArgument) {
		t.Fatalf("write after close: %v", err)
	}
	if _, err := CreateStream(f, "x", 1, StreamOptions{AdapterType: "floppy"}); !errors.Is(err, image.ErrInvalidArgument) {
		t.Fatalf("bad adapter: %v", err)
	}
	if _, err := CreateStream(f, "x", -1, StreamOptions{}); !errors.Is(err, image.ErrInvalidArgument) {
		t.Fatalf("negative size: %v", err)
	}
	qemutest.Check(t, f.Name())
}

// TestStreamDescriptor compares our descriptor with qemu-img's for the
// same size and options, CID aside.
func TestStreamDescriptor(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		opts string
		o    StreamOptions
	}{
		{"subformat=streamOptimized", StreamOptions{}},
		{"subformat=streamOptimized,adapter_type=lsilogic,compat6=on", StreamOptions{AdapterType: "lsilogic", Compat6: true}},
		{"subformat=streamOptimized,adapter_type=legacyESX,hwversion=13,toolsversion=12345", StreamOptions{AdapterType: "legacyESX", HWVersion: "13", ToolsVersion: "12345"}},
	} {
		q := filepath.Join(dir, "d.vmdk")
		qemutest.Img(t, "create", "-f", "vmdk", "-o", c.opts, q, "3000M")
		want := embedded(t, q)
		p := filepath.Join(dir, "d.vmdk")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		w, err := CreateStream(f, p, 3000<<20, c.o)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		got := embedded(t, p)
		if got != want {
			t.Errorf("%s: descriptor differs:\n got %q\nwant %q", c.opts, got, want)
		}
		qemutest.Check(t, p)
	}
}

// embedded returns the embedded descriptor of a sparse file, CID blanked.
func embedded(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	d := b[512 : 512+20*512]
	if i := bytes.IndexByte(d, 0); i >= 0 {
		d = d[:i]
	}
	var lines []string
	for _, l := range strings.Split(string(d), "\n") {
		if strings.HasPrefix(l, "CID=") {
			l = "CID=*"
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}

// TestStreamRandomSplits writes in order but cut at random places: writes
// and zero runs that start and end inside grains, zeros passed as data,
// gaps between writes.
func TestStreamRandomSplits(t *testing.T) {
	dir := t.TempDir()
	src, content := diskLike(t, dir, 3<<20+3000, 99)
	size := int64(len(content))
	rng := rand.New(rand.NewPCG(5, 6))
	p := filepath.Join(dir, "r.vmdk")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := CreateStream(f, p, size, StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for off := int64(0); off < size; {
		n := min(size-off, 1+rng.Int64N(150000))
		switch {
		case isZero(content[off:off+n]) && rng.IntN(2) == 0:
			// a gap: nothing is written
		case isZero(content[off : off+n]):
			err = w.WriteZeroes(off, n)
		default:
			_, err = w.WriteAt(content[off:off+n], off)
		}
		if err != nil {
			t.Fatal(err)
		}
		off += n
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	qemutest.Check(t, p)
	qemutest.Img(t, "compare", "-f", "vmdk", "-F", "raw", p, src)
	img, err := Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if !bytes.Equal(readAll(t, img), padSector(content)) {
		t.Fatal("our reader reads different data")
	}
}
