package convert_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/qimg/qimg/convert"
	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/format/vhd"
	"github.com/qimg/qimg/internal/qemutest"
)

// diskLike writes a raw file that looks like a used disk: compressible
// text, random (incompressible) data, written zeros and holes.
func diskLike(t testing.TB, dir string, size int64) string {
	t.Helper()
	p := filepath.Join(dir, "src.raw")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	text := []byte(strings.Repeat("root:x:0:0:root:/root:/bin/bash\nqimg makes images\n", 2000))
	for off := int64(0); off < size; {
		n := min(int64(rng.IntN(512<<10)+1), size-off)
		buf := make([]byte, n)
		switch rng.IntN(4) {
		case 0: // hole
		case 1:
			for i := range buf {
				buf[i] = byte(rng.Uint32())
			}
			f.WriteAt(buf, off)
		case 2:
			copy(buf, text[rng.IntN(len(text)/2):])
			f.WriteAt(buf, off)
		case 3:
			f.WriteAt(buf, off) // written zeros
		}
		off += n
	}
	return p
}

func open(t testing.TB, path string) *qcow2.Image {
	t.Helper()
	img, err := qcow2.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

func TestConvertRawToQCOW2(t *testing.T) {
	dir := t.TempDir()
	src := diskLike(t, dir, 24<<20+4096)
	for name, o := range map[string]convert.Options{
		"default":      {},
		"zlib":         {Compress: true},
		"zstd":         {Compress: true, Create: format.CreateOptions{QCOW2: qcow2.CreateOptions{CompressionType: "zstd"}}},
		"4k-clusters":  {Create: format.CreateOptions{QCOW2: qcow2.CreateOptions{ClusterSize: 4096}}},
		"v2":           {Create: format.CreateOptions{QCOW2: qcow2.CreateOptions{Compat: "0.10"}}},
		"extended-l2":  {Create: format.CreateOptions{QCOW2: qcow2.CreateOptions{ExtendedL2: true}}},
		"dense":        {SparseSize: -1},
		"prealloc":     {Create: format.CreateOptions{QCOW2: qcow2.CreateOptions{Preallocation: "metadata"}}},
		"one-worker":   {Workers: 1, Compress: true},
		"sparse-1M":    {SparseSize: 1 << 20},
		"512-clusters": {Compress: true, Create: format.CreateOptions{QCOW2: qcow2.CreateOptions{ClusterSize: 512, RefcountBits: 1}}},
		// zstd clusters of up to 64 KiB take internal/zstdenc, larger
		// ones klauspost's encoder.
		"zstd-512":  {Compress: true, Create: format.CreateOptions{QCOW2: qcow2.CreateOptions{CompressionType: "zstd", ClusterSize: 512}}},
		"zstd-4k":   {Compress: true, Create: format.CreateOptions{QCOW2: qcow2.CreateOptions{CompressionType: "zstd", ClusterSize: 4096}}},
		"zstd-128k": {Compress: true, Create: format.CreateOptions{QCOW2: qcow2.CreateOptions{CompressionType: "zstd", ClusterSize: 128 << 10}}},
		"zstd-2m":   {Compress: true, Create: format.CreateOptions{QCOW2: qcow2.CreateOptions{CompressionType: "zstd", ClusterSize: 2 << 20}}},
	} {
		t.Run(name, func(t *testing.T) {
			in, _, err := format.Open(src, format.OpenOptions{Format: "raw"})
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			dst := filepath.Join(t.TempDir(), "out.qcow2")
			var last int64
			o.Progress = func(done, total int64) {
				if done < last || done > total {
					t.Errorf("progress went from %d to %d of %d", last, done, total)
				}
				last = done
			}
			if err := convert.Convert(context.Background(), in, dst, o); err != nil {
				t.Fatal(err)
			}
			if last != in.Size() {
				t.Errorf("progress ended at %d of %d", last, in.Size())
			}
			qemutest.Check(t, dst)
			qemutest.Img(t, "compare", "-f", "raw", "-F", "qcow2", src, dst)
		})
	}
}

// TestConvertSizeNearQemu checks the output is no larger than qemu-img's
// for the same options (1 % plus one cluster of slack).
func TestConvertSizeNearQemu(t *testing.T) {
	dir := t.TempDir()
	if d := os.Getenv("QIMG_KEEP"); d != "" {
		dir = d
	}
	src := diskLike(t, dir, 32<<20)
	for _, args := range [][]string{{}, {"-c"}, {"-c", "-o", "compression_type=zstd"}} {
		ref := filepath.Join(dir, "ref.qcow2")
		qemutest.Img(t, append(append([]string{"convert", "-f", "raw", "-O", "qcow2"}, args...), src, ref)...)
		o := convert.Options{Compress: len(args) > 0}
		if len(args) > 1 {
			o.Create.QCOW2.CompressionType = "zstd"
		}
		in, _, err := format.Open(src, format.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, "ours.qcow2")
		if err := convert.Convert(context.Background(), in, dst, o); err != nil {
			t.Fatal(err)
		}
		in.Close()
		ours, theirs := fileSize(t, dst), fileSize(t, ref)
		t.Logf("%v: qimg %d bytes, qemu-img %d bytes", args, ours, theirs)
		if ours > theirs+theirs/100+65536 {
			t.Errorf("%v: output %d bytes is over 1%% larger than qemu-img's %d", args, ours, theirs)
		}
	}
}

func fileSize(t testing.TB, p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestConvertQCOW2ToRaw converts qemu-made images (plain, zlib, zstd,
// with a backing file) to raw and compares with qemu-img's raw output.
func TestConvertQCOW2ToRaw(t *testing.T) {
	dir := t.TempDir()
	src := diskLike(t, dir, 16<<20)
	base := filepath.Join(dir, "base.qcow2")
	qemutest.Img(t, "convert", "-f", "raw", "-O", "qcow2", src, base)
	overlay := filepath.Join(dir, "overlay.qcow2")
	qemutest.Img(t, "create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", overlay)
	qemutest.IO(t, overlay, "write -P 0x5a 1M 3M", "write -z 8M 1M", "discard 12M 64k")
	inputs := map[string]string{"backing": overlay, "plain": base}
	for name, args := range map[string][]string{"zlib": {"-c"}, "zstd": {"-c", "-o", "compression_type=zstd"}} {
		p := filepath.Join(dir, name+".qcow2")
		qemutest.Img(t, append(append([]string{"convert", "-f", "raw", "-O", "qcow2"}, args...), src, p)...)
		inputs[name] = p
	}
	for name, p := range inputs {
		t.Run(name, func(t *testing.T) {
			in, probed, err := format.Open(p, format.OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			if probed != "qcow2" {
				t.Fatalf("probed %s as %s", p, probed)
			}
			dst := filepath.Join(t.TempDir(), "out.raw")
			if err := convert.Convert(context.Background(), in, dst, convert.Options{Format: "raw"}); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(dst)
			if err != nil {
				t.Fatal(err)
			}
			want := qemutest.ToRaw(t, p)
			if sha256.Sum256(got) != sha256.Sum256(want) {
				t.Fatalf("raw output differs from qemu-img's")
			}
		})
	}
}

// TestConvertRawKeepsHoles checks that zeros become holes in raw output.
func TestConvertRawKeepsHoles(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "zeros.raw")
	if err := os.WriteFile(src, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	in, _, err := format.Open(src, format.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(dir, "out.raw")
	if err := convert.Convert(context.Background(), in, dst, convert.Options{Format: "raw"}); err != nil {
		t.Fatal(err)
	}
	if used := diskUsage(t, dst); used > 64<<10 {
		t.Fatalf("8 MiB of zeros use %d bytes on disk after conversion", used)
	}
}

// TestConvertCanceledLeavesNothing checks that an interrupted conversion
// leaves neither the target nor a temporary file.
func TestConvertCanceledLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	src := diskLike(t, dir, 16<<20)
	in, _, err := format.Open(src, format.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	o := convert.Options{Compress: true, Progress: func(done, total int64) {
		if done > total/3 {
			cancel()
		}
	}}
	err = convert.Convert(ctx, in, filepath.Join(out, "x.qcow2"), o)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Fatalf("canceled conversion left %v", entries)
	}
}

// TestConvertIntoExisting covers -n, with and without --target-is-zero.
func TestConvertIntoExisting(t *testing.T) {
	dir := t.TempDir()
	src := diskLike(t, dir, 8<<20)
	dst := filepath.Join(dir, "dst.qcow2")
	qemutest.Img(t, "create", "-f", "qcow2", dst, "8M")
	qemutest.IO(t, dst, "write -P 0xff 0 8M") // must be overwritten, zeros too
	in, _, err := format.Open(src, format.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := convert.Convert(context.Background(), in, dst, convert.Options{NoCreate: true}); err != nil {
		t.Fatal(err)
	}
	qemutest.Check(t, dst)
	qemutest.Img(t, "compare", "-f", "raw", "-F", "qcow2", src, dst)
}

// TestConvertWithBackingOutput covers -B: the output holds only what
// differs from its backing file.
func TestConvertWithBackingOutput(t *testing.T) {
	dir := t.TempDir()
	src := diskLike(t, dir, 8<<20)
	base := filepath.Join(dir, "base.qcow2")
	qemutest.Img(t, "convert", "-f", "raw", "-O", "qcow2", src, base)
	qemutest.IO(t, base, "write -P 0x11 2M 1M")
	in, _, err := format.Open(src, format.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(dir, "top.qcow2")
	o := convert.Options{Create: format.CreateOptions{QCOW2: qcow2.CreateOptions{BackingFile: "base.qcow2", BackingFormat: "qcow2"}}}
	if err := convert.Convert(context.Background(), in, dst, o); err != nil {
		t.Fatal(err)
	}
	qemutest.Check(t, dst)
	qemutest.Img(t, "compare", "-f", "raw", "-F", "qcow2", src, dst)
	if got := fileSize(t, dst); got > 2<<20 {
		t.Fatalf("overlay is %d bytes; only 1 MiB differs from its base", got)
	}
}

func TestCompare(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.raw")
	b := filepath.Join(dir, "b.qcow2")
	data := bytes.Repeat([]byte("qimg"), 1<<20)
	os.WriteFile(a, data, 0o644)
	qemutest.Img(t, "convert", "-f", "raw", "-O", "qcow2", a, b)
	qemutest.IO(t, b, "write -P 7 1000000 1")
	ia, _, _ := format.Open(a, format.OpenOptions{})
	ib, _, _ := format.Open(b, format.OpenOptions{})
	defer ia.Close()
	defer ib.Close()
	r, err := convert.Compare(context.Background(), ia, ib, convert.CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Identical || r.Offset != 1000000 || r.Reason != "Content mismatch at offset 1000000!" {
		t.Fatalf("got %+v", r)
	}
	r, err = convert.Compare(context.Background(), ia, ia, convert.CompareOptions{Strict: true})
	if err != nil || !r.Identical {
		t.Fatalf("image differs from itself: %+v %v", r, err)
	}
}

func diskUsage(t testing.TB, p string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// TestConvertForeignFormats converts images qemu-img wrote in other
// formats: probing must name the format, and the qcow2 and raw outputs
// must hold what qemu-img reads from the input.
func TestConvertForeignFormats(t *testing.T) {
	dir := t.TempDir()
	src := diskLike(t, dir, 12<<20+512)
	for _, c := range []struct{ format, opts, probed string }{
		{"vhdx", "subformat=dynamic", "vhdx"},
		{"vhdx", "subformat=fixed", "vhdx"},
		{"vdi", "static=off", "vdi"},
		{"vdi", "static=on", "vdi"},
		{"vpc", "subformat=dynamic", "vpc"},
		{"vpc", "subformat=fixed", "raw"}, // footer only at the end: qemu-img probes raw too
		{"vmdk", "subformat=monolithicSparse", "vmdk"},
		{"vmdk", "subformat=streamOptimized", "vmdk"},
		{"vmdk", "subformat=monolithicFlat", "vmdk"},
		{"vmdk", "subformat=twoGbMaxExtentSparse", "vmdk"},
	} {
		t.Run(c.format+"-"+c.opts, func(t *testing.T) {
			in := filepath.Join(t.TempDir(), "in."+c.format)
			qemutest.Img(t, "convert", "-f", "raw", "-O", c.format, "-o", c.opts, src, in)
			if probed, err := format.Probe(in); err != nil || probed != c.probed {
				t.Fatalf("probed as %s (%v), want %s", probed, err, c.probed)
			}
			img, _, err := format.Open(in, format.OpenOptions{Format: c.format})
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			want := qemutest.ToRawAs(t, c.format, in)
			out := filepath.Join(t.TempDir(), "out.qcow2")
			if err := convert.Convert(context.Background(), img, out, convert.Options{Compress: true}); err != nil {
				t.Fatal(err)
			}
			qemutest.Check(t, out)
			if got := qemutest.ToRaw(t, out); !bytes.Equal(got, want) {
				t.Fatal("qcow2 output differs from what qemu-img reads from the input")
			}
			rawOut := filepath.Join(t.TempDir(), "out.raw")
			if err := convert.Convert(context.Background(), img, rawOut, convert.Options{Format: "raw"}); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(rawOut); sha256.Sum256(got) != sha256.Sum256(want) {
				t.Fatal("raw output differs from qemu-img's")
			}
		})
	}
}

// TestConvertToVHD writes VHD (qemu-img's vpc) outputs, dynamic and fixed:
// qemu-img must read the source's data from them, with the size qemu-img
// itself would give the disk.
func TestConvertToVHD(t *testing.T) {
	dir := t.TempDir()
	src := diskLike(t, dir, 10<<20+4096)
	for _, opts := range []vhd.CreateOptions{{}, {Subformat: "fixed"}, {ForceSize: true}} {
		in, _, err := format.Open(src, format.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "out.vhd")
		if err := convert.Convert(context.Background(), in, out, convert.Options{Format: "vpc", Create: format.CreateOptions{VPC: opts}}); err != nil {
			t.Fatal(err)
		}
		in.Close()
		ref := filepath.Join(t.TempDir(), "ref.vhd")
		args := []string{"convert", "-f", "raw", "-O", "vpc"}
		if opts.Subformat != "" {
			args = append(args, "-o", "subformat="+opts.Subformat)
		}
		if opts.ForceSize {
			args = append(args, "-o", "force_size=on")
		}
		qemutest.Img(t, append(args, src, ref)...)
		got, want := qemutest.ToRawAs(t, "vpc", out), qemutest.ToRawAs(t, "vpc", ref)
		if !bytes.Equal(got, want) {
			t.Fatalf("%+v: qemu-img reads our VHD (%d bytes) differently from its own (%d bytes)", opts, len(got), len(want))
		}
		if ours, theirs := fileSize(t, out), fileSize(t, ref); ours > theirs+theirs/100+2<<20 {
			t.Errorf("%+v: %d bytes, qemu-img's VHD %d", opts, ours, theirs)
		}
	}
}

// TestConvertToVMDK writes streamOptimized VMDK (what OVA imports want):
// qemu-img checks it, reads the source's data from it, and it is no larger
// than qemu-img's own streamOptimized output by more than 1 %.
func TestConvertToVMDK(t *testing.T) {
	dir := t.TempDir()
	src := diskLike(t, dir, 16<<20+1024)
	in, _, err := format.Open(src, format.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out := filepath.Join(dir, "out.vmdk")
	if err := convert.Convert(context.Background(), in, out, convert.Options{Format: "vmdk", Compress: true}); err != nil {
		t.Fatal(err)
	}
	qemutest.Check(t, out)
	qemutest.Img(t, "compare", "-f", "raw", "-F", "vmdk", src, out)
	if info := qemutest.Img(t, "info", out); !strings.Contains(info, "create type: streamOptimized") {
		t.Fatalf("not a streamOptimized VMDK:\n%s", info)
	}
	ref := filepath.Join(dir, "ref.vmdk")
	qemutest.Img(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", src, ref)
	if ours, theirs := fileSize(t, out), fileSize(t, ref); ours > theirs+theirs/100+65536 {
		t.Errorf("streamOptimized output %d bytes, qemu-img's %d", ours, theirs)
	}
}
