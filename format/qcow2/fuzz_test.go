package qcow2

// Fuzz targets for everything qimg parses from an image file. Every image
// may come from an attacker: parsing must never panic, hang or allocate
// more than a small multiple of the input, and every error must name the
// file and wrap one of the image.Err* classes.
//
// The seed corpus lives in testdata/fuzz/<FuzzName>/. Files named qemu-*
// are small images made by qemu-img and qemu-io (regenerate them with
// `go test -run TestFuzzSeeds -genseeds ./qcow2/`); every other file is a
// crasher found by fuzzing, kept as a regression test.

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/imagetest"
	"github.com/qimg/qimg/internal/qemutest"
)

var genSeeds = flag.Bool("genseeds", false, "regenerate the qemu-made fuzz seed corpus in testdata/fuzz")

// fzCheckErr fails unless err is classified and names the image.
func fzCheckErr(t testing.TB, what, name string, err error) {
	t.Helper()
	imagetest.CheckError(t, what, name, err)
}

// fzAllocLimit bounds what one fuzz input may make the engine allocate.
const fzAllocLimit = 256 << 20

// fzSeedImage is a small image made by qemu-img: name and the commands.
type fzSeedImage struct {
	name string
	// create makes the image at p inside dir.
	create func(t testing.TB, dir, p string)
	// big images (16 KiB clusters and more) are added at run time only,
	// to keep the committed corpus small.
	big bool
}

func fzQemuIO(t testing.TB, p string, cmds ...string) { t.Helper(); qemutest.IO(t, p, cmds...) }

func fzPatternRaw(t testing.TB, dir string, size int) string {
	t.Helper()
	b := make([]byte, size)
	for i := range b {
		switch (i / 512) % 4 {
		case 0:
			b[i] = byte(i / 512)
		case 1:
			b[i] = byte(i*7) ^ byte(i>>5)
		case 2:
			b[i] = 0
		case 3:
			b[i] = "qimg fuzz seed "[i%15]
		}
	}
	p := filepath.Join(dir, "pattern.raw")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

var fzSeedImages = []fzSeedImage{
	{name: "v3-512", create: func(t testing.TB, dir, p string) {
		qemutest.Img(t, "create", "-f", "qcow2", "-o", "cluster_size=512", p, "64k")
		fzQemuIO(t, p, "write -P 0x11 0 1536", "write -z 4096 1024", "write -P 0x22 8000 700", "discard 1024 512")
	}},
	{name: "v2-512", create: func(t testing.TB, dir, p string) {
		qemutest.Img(t, "create", "-f", "qcow2", "-o", "cluster_size=512,compat=0.10", p, "64k")
		fzQemuIO(t, p, "write -P 0x33 512 1024", "write -P 0x44 40000 600")
	}},
	{name: "v3-refcount1", create: func(t testing.TB, dir, p string) {
		qemutest.Img(t, "create", "-f", "qcow2", "-o", "cluster_size=512,refcount_bits=1", p, "100000")
		fzQemuIO(t, p, "write -P 0x55 0 2048")
	}},
	{name: "v3-refcount64", create: func(t testing.TB, dir, p string) {
		qemutest.Img(t, "create", "-f", "qcow2", "-o", "cluster_size=512,refcount_bits=64", p, "32k")
		fzQemuIO(t, p, "write -P 0x66 2048 1024")
	}},
	{name: "zlib-512", create: func(t testing.TB, dir, p string) {
		raw := fzPatternRaw(t, dir, 8192)
		qemutest.Img(t, "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=512", raw, p)
	}},
	{name: "zstd-512", create: func(t testing.TB, dir, p string) {
		raw := fzPatternRaw(t, dir, 8192)
		qemutest.Img(t, "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=512,compression_type=zstd", raw, p)
	}},
	{name: "snapshots", create: func(t testing.TB, dir, p string) {
		qemutest.Img(t, "create", "-f", "qcow2", "-o", "cluster_size=512", p, "16k")
		fzQemuIO(t, p, "write -P 0x77 0 1024")
		qemutest.Img(t, "snapshot", "-c", "first", p)
		fzQemuIO(t, p, "write -P 0x88 512 1024")
		qemutest.Img(t, "snapshot", "-c", "second", p)
	}},
	{name: "backing", create: func(t testing.TB, dir, p string) {
		qemutest.Img(t, "create", "-f", "qcow2", "-o", "cluster_size=512", filepath.Join(dir, "base.qcow2"), "16k")
		qemutest.Img(t, "create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "-o", "cluster_size=512", p, "16k")
		fzQemuIO(t, p, "write -P 0x99 1024 512")
	}},
	{name: "bitmap", create: func(t testing.TB, dir, p string) {
		qemutest.Img(t, "create", "-f", "qcow2", "-o", "cluster_size=512", p, "16k")
		qemutest.Img(t, "bitmap", "--add", p, "b0")
		fzQemuIO(t, p, "write -P 0xaa 0 512")
	}},
	{name: "v3-4k", big: true, create: func(t testing.TB, dir, p string) {
		qemutest.Img(t, "create", "-f", "qcow2", "-o", "cluster_size=4096", p, "1M")
		fzQemuIO(t, p, "write -P 0xbb 4000 200")
	}},
	{name: "extl2-16k", big: true, create: func(t testing.TB, dir, p string) {
		qemutest.Img(t, "create", "-f", "qcow2", "-o", "cluster_size=16384,extended_l2=on", p, "1M")
		fzQemuIO(t, p, "write -P 0xcc 1024 2048", "write -z 8192 512", "write -P 0xdd 20000 100")
	}},
	{name: "extl2-zstd-16k", big: true, create: func(t testing.TB, dir, p string) {
		raw := fzPatternRaw(t, dir, 65536)
		qemutest.Img(t, "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=16384,extended_l2=on,compression_type=zstd", raw, p)
	}},
}

// fzMake creates a seed image in a fresh directory and returns its bytes.
func fzMake(t testing.TB, s fzSeedImage) []byte {
	t.Helper()
	dir, err := os.MkdirTemp("", "qimg-seed-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, s.name+".qcow2")
	s.create(t, dir, p)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fzCorpusFile renders one []byte input in Go's corpus file format.
func fzCorpusFile(vals ...any) []byte {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, v := range vals {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case uint64:
			fmt.Fprintf(&b, "uint64(%d)\n", v)
		case uint8:
			fmt.Fprintf(&b, "byte(%q)\n", v)
		default:
			panic(fmt.Sprintf("fzCorpusFile: %T", v))
		}
	}
	return []byte(b.String())
}

func fzWriteSeed(t *testing.T, fuzzName, file string, vals ...any) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", fuzzName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), fzCorpusFile(vals...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fzCompressedStreams extracts the compressed cluster streams of an image.
func fzCompressedStreams(t testing.TB, b []byte) [][]byte {
	t.Helper()
	img, err := NewReader(bytes.NewReader(b), int64(len(b)), "seed", &OpenOptions{Backing: image.IgnoreBacking})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	var out [][]byte
	for i := range img.l1 {
		tb, err := img.l2At(int64(i))
		if err != nil || tb == nil {
			continue
		}
		step := img.hdr.L2EntrySize() / 8
		for j := 0; j < len(tb.entries); j += int(step) {
			e := tb.entries[j]
			if e&flagCompressed == 0 {
				continue
			}
			host, size := img.hdr.compressedDesc(e)
			end := min(host+size, int64(len(b)))
			out = append(out, bytes.Clone(b[host:end]))
		}
	}
	return out
}

// TestFuzzSeeds checks the committed qemu-made seeds: each must open and
// read exactly what qemu-img reads. With -genseeds it first rewrites them.
func TestFuzzSeeds(t *testing.T) {
	if *genSeeds {
		for _, s := range fzSeedImages {
			if s.big {
				continue
			}
			b := fzMake(t, s)
			fzWriteSeed(t, "FuzzOpenRead", "qemu-"+s.name, b)
			fzWriteSeed(t, "FuzzOpenWrite", "qemu-"+s.name, b, []byte{0, 1, 2, 3, 4, 5, 6, 7})
			cs := int64(1) << binary.BigEndian.Uint32(b[20:])
			fzWriteSeed(t, "FuzzParseHeader", "qemu-"+s.name, b[:min(cs, int64(len(b)))])
			if strings.HasPrefix(s.name, "zlib") || strings.HasPrefix(s.name, "zstd") {
				typ := CompressionZlib
				if strings.HasPrefix(s.name, "zstd") {
					typ = CompressionZstd
				}
				for i, c := range fzCompressedStreams(t, b)[:3] {
					fzWriteSeed(t, "FuzzDecompress", fmt.Sprintf("qemu-%s-%d", s.name, i), typ, uint8(9), c)
				}
			}
		}
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzOpenRead")
	ents, err := filepath.Glob(filepath.Join(dir, "qemu-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) < 8 {
		t.Fatalf("only %d qemu-made seeds in %s", len(ents), dir)
	}
	for _, p := range ents {
		b := fzReadCorpusBytes(t, p)
		tmp := filepath.Join(t.TempDir(), "seed.qcow2")
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		// qemu-img reads the image without its backing file, as
		// image.IgnoreBacking does.
		out := filepath.Join(t.TempDir(), "seed.raw")
		qemutest.Img(t, "convert", "-O", "raw",
			`json:{"driver":"qcow2","backing":null,"file":{"driver":"file","filename":"`+tmp+`"}}`, out)
		want, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		img, err := NewReader(bytes.NewReader(b), int64(len(b)), p, &OpenOptions{Backing: image.IgnoreBacking})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		got := make([]byte, img.Size())
		if _, err := img.ReadAt(got, 0); err != nil && err != io.EOF {
			t.Fatalf("%s: %v", p, err)
		}
		img.Close()
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: qimg reads different data from qemu-img", p)
		}
	}
}

// fzReadCorpusBytes decodes a one-value []byte corpus file.
func fzReadCorpusBytes(t testing.TB, p string) []byte {
	t.Helper()
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimPrefix(string(raw), "go test fuzz v1\n[]byte(")
	s = s[:strings.Index(s, ")\n")]
	var b []byte
	if _, err := fmt.Sscanf(s, "%q", &b); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return b
}

// fzAddBig adds the seeds that are too big to commit.
func fzAddBig(f *testing.F, add func(b []byte)) {
	for _, s := range fzSeedImages {
		if s.big {
			add(fzMake(f, s))
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("QFI\xfb"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHeader(data)
		if err != nil {
			fzCheckErr(t, "ParseHeader", "", err)
			return
		}
		h2 := *h
		enc, err := h2.Encode()
		if err != nil {
			fzCheckErr(t, "Encode", "", err)
			return
		}
		buf := make([]byte, max(h.ClusterSize(), int64(len(enc))))
		copy(buf, enc)
		h3, err := ParseHeader(buf)
		if err != nil {
			t.Fatalf("re-parsing an encoded header: %v\nheader: %+v", err, h)
		}
		// The layout of the extension area and the backing name may
		// change; the meaning may not.
		a, b := fzComparable(h), fzComparable(h3)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("header round trip differs:\n got %+v\nwant %+v", b, a)
		}
	})
}

func fzComparable(h *Header) Header {
	c := *h
	c.BackingFileOffset, c.BackingFileSize = 0, 0
	if c.Version < 3 {
		c.FeatureNames = nil
	}
	if len(c.ExtraFields) == 0 {
		c.ExtraFields = nil
	}
	// Encode writes an extension only when it has content.
	if len(c.FeatureNames) == 0 {
		c.FeatureNames = nil
	}
	unk := append([]RawExtension(nil), c.Unknown...)
	sort.Slice(unk, func(i, j int) bool { return unk[i].Type < unk[j].Type })
	for i := range unk {
		if len(unk[i].Data) == 0 {
			unk[i].Data = nil
		}
	}
	if len(unk) == 0 {
		unk = nil
	}
	c.Unknown = unk
	return c
}

// fzReadImage exercises every read path of an opened image and checks the
// answers are consistent: no panic, classified errors, bounded work.
func fzReadImage(t *testing.T, img *Image, name string) {
	// Reads are bounded to imagetest.MaxRead bytes of virtual disk per
	// input so the fuzzer stays fast.
	imagetest.Exercise(t, img, name, fzCheckErr)
	snaps, err := img.Snapshots()
	if err != nil {
		fzCheckErr(t, "Snapshots", name, err)
	}
	for _, s := range snaps {
		if _, err := img.snapshotL1(s); err != nil {
			fzCheckErr(t, "snapshot L1", name, err)
		}
	}
	if _, err := img.Bitmaps(); err != nil {
		fzCheckErr(t, "Bitmaps", name, err)
	}
}

func fzAllocated() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

func FuzzOpenRead(f *testing.F) {
	fzAddBig(f, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz.qcow2"
		before := fzAllocated()
		orig := bytes.Clone(data)
		img, err := NewReader(bytes.NewReader(data), int64(len(data)), name, &OpenOptions{Backing: image.IgnoreBacking})
		if err != nil {
			fzCheckErr(t, "NewReader", name, err)
			return
		}
		fzReadImage(t, img, name)
		if err := img.Close(); err != nil {
			t.Fatal(err)
		}
		if a := fzAllocated() - before; a > fzAllocLimit+8*uint64(len(data)) {
			t.Fatalf("opening and reading a %d-byte image allocated %d bytes", len(data), a)
		}
		if !bytes.Equal(orig, data) {
			t.Fatal("reading changed the input")
		}
	})
}

// FuzzOpenWrite opens a hostile image for writing (as qimg resize, commit
// or rebase would) and makes a few writes chosen by ops. Nothing may panic,
// and errors must be classified.
func FuzzOpenWrite(f *testing.F) {
	fzAddBig(f, func(b []byte) { f.Add(b, []byte{0, 1, 2, 3, 4, 5, 6, 7}) })
	f.Fuzz(func(t *testing.T, data []byte, ops []byte) {
		if len(data) > 1<<20 {
			return
		}
		before := fzAllocated()
		img, p := fzOpenWritable(t, data)
		if img == nil {
			return
		}
		defer img.Close()
		size := img.Size()
		cs := img.hdr.ClusterSize()
		for i := 0; i+1 < len(ops) && i < 16; i += 2 {
			if size == 0 {
				break
			}
			off := int64(ops[i+1]) * 347 % size
			n := min(size-off, int64(ops[i]%7)*cs/3+1)
			var err error
			switch ops[i] % 5 {
			case 0, 1:
				_, err = img.WriteAt(bytes.Repeat([]byte{ops[i+1] | 1}, int(n)), off)
			case 2:
				err = img.WriteZeroes(off, n)
			case 3:
				err = img.Discard(off, n)
			case 4:
				c := off &^ (cs - 1)
				err = img.WriteCompressed(make([]byte, min(cs, size-c)), c)
			}
			if err != nil {
				fzCheckErr(t, "write", p, err)
				return
			}
		}
		buf := make([]byte, min(size, 4<<20))
		if _, err := img.ReadAt(buf, 0); err != nil && err != io.EOF {
			fzCheckErr(t, "ReadAt", p, err)
		}
		if err := img.Close(); err != nil {
			fzCheckErr(t, "Close", p, err)
		}
		if a := fzAllocated() - before; a > fzAllocLimit+8*uint64(len(data)) {
			t.Fatalf("writing a %d-byte image allocated %d bytes", len(data), a)
		}
	})
}

// FuzzDecompress feeds hostile compressed clusters to the codec: output is
// always exactly one cluster or an error, never a panic or a big buffer.
func FuzzDecompress(f *testing.F) {
	for _, typ := range []uint8{CompressionZlib, CompressionZstd} {
		c := newCodec(typ, 4096)
		plain := bytes.Repeat([]byte("qimg decompress seed "), 4096/21+1)[:4096]
		comp, err := c.compress(plain)
		if err != nil || comp == nil {
			f.Fatalf("compressing a seed: %v", err)
		}
		f.Add(typ, uint8(12), comp)
	}
	f.Add(CompressionZlib, uint8(9), []byte{})
	f.Add(CompressionZstd, uint8(21), []byte{0x28, 0xb5, 0x2f, 0xfd})
	f.Fuzz(func(t *testing.T, typ uint8, bits uint8, src []byte) {
		bits = minClusterBits + bits%(maxClusterBits-minClusterBits+1)
		cs := int64(1) << bits
		c := newCodec(typ%3, cs)
		dst := make([]byte, cs)
		before := fzAllocated()
		err := c.decompress(dst, src)
		if err != nil {
			fzCheckErr(t, "decompress", "", err)
		}
		if a := fzAllocated() - before; a > 64<<20 {
			t.Fatalf("decompressing %d bytes into a %d-byte cluster allocated %d bytes", len(src), cs, a)
		}
		// A cluster that compresses must come back unchanged.
		if typ%3 <= CompressionZstd {
			plain := make([]byte, cs)
			copy(plain, src)
			comp, err := c.compress(plain)
			if err != nil {
				t.Fatal(err)
			}
			if comp != nil {
				got := make([]byte, cs)
				if err := c.decompress(got, comp); err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("compress/decompress round trip failed: %v", err)
				}
			}
		}
	})
}

// FuzzL2Entry puts a hostile L2 entry (and, with extended L2, bitmap) into
// a valid image and reads through it.
func FuzzL2Entry(f *testing.F) {
	f.Add(uint64(0), uint64(0), uint8(0))
	f.Add(uint64(flagCopied|0x1000), uint64(0), uint8(1))
	f.Add(uint64(flagCompressed|0x1234), uint64(0xffffffff), uint8(2))
	f.Add(uint64(flagZero), uint64(0xffff0000ffff), uint8(3))
	var bases [2][]byte
	bases[0] = fzMake(f, fzSeedImages[0])
	for _, s := range fzSeedImages {
		if s.name == "extl2-16k" {
			bases[1] = fzMake(f, s)
		}
	}
	f.Fuzz(func(t *testing.T, entry, bitmap uint64, which uint8) {
		// Property of the descriptor codec: what encodeCompressed writes,
		// compressedDesc reads back, covering at least the bytes.
		h := &Header{ClusterBits: uint32(minClusterBits + int(which)%(maxClusterBits-minClusterBits+1))}
		host := int64(entry & (1<<(62-(h.ClusterBits-8)) - 1))
		n := int64(bitmap%uint64(h.ClusterSize())) + 1
		if host+n < 1<<(62-(h.ClusterBits-8)) {
			gh, gs := h.compressedDesc(h.encodeCompressed(host, n))
			if gh != host || gs < n || (gh+gs)%512 != 0 || gs-n >= 512 {
				t.Fatalf("compressed descriptor (%#x, %d) decodes as (%#x, %d)", host, n, gh, gs)
			}
		}

		base := bases[which%2]
		data := bytes.Clone(base)
		img0, err := NewReader(bytes.NewReader(data), int64(len(data)), "base", &OpenOptions{Backing: image.IgnoreBacking})
		if err != nil {
			t.Fatal(err)
		}
		l2 := int64(img0.l1[0] & offsetMask)
		esz := img0.hdr.L2EntrySize()
		img0.Close()
		slot := l2 + int64(which/2)%(img0.hdr.L2Entries())*esz
		binary.BigEndian.PutUint64(data[slot:], entry)
		if esz == 16 {
			binary.BigEndian.PutUint64(data[slot+8:], bitmap)
		}
		const name = "l2fuzz.qcow2"
		img, err := NewReader(bytes.NewReader(data), int64(len(data)), name, &OpenOptions{Backing: image.IgnoreBacking})
		if err != nil {
			t.Fatal(err)
		}
		fzReadImage(t, img, name)
		img.Close()
	})
}

// FuzzAmend amends a hostile image with options chosen by ops (a version,
// a refcount width, lazy refcounts, a size). Nothing may panic, errors
// must be classified, and memory stays in proportion to the file.
func FuzzAmend(f *testing.F) {
	fzAddBig(f, func(b []byte) { f.Add(b, []byte{1, 3, 1, 9}) })
	f.Fuzz(func(t *testing.T, data []byte, ops []byte) {
		if len(data) > 1<<20 || len(ops) < 4 {
			return
		}
		before := fzAllocated()
		img, p := fzOpenWritable(t, data)
		if img == nil {
			return
		}
		defer img.Close()
		o := AmendOptions{
			Compat:       []string{"", "0.10", "1.1", "v3"}[ops[0]%4],
			RefcountBits: []int{0, 1, 4, 8, 16, 64, 3}[ops[1]%7],
			Size:         uint64(ops[3]) << 16,
		}
		if ops[2]%3 != 0 {
			lazy := ops[2]%3 == 1
			o.LazyRefcounts = &lazy
		}
		if err := img.Amend(context.Background(), o); err != nil {
			fzCheckErr(t, "Amend", p, err)
			return
		}
		if err := img.Close(); err != nil {
			fzCheckErr(t, "Close", p, err)
		}
		if a := fzAllocated() - before; a > fzAllocLimit+16*uint64(len(data)) {
			t.Fatalf("amending a %d-byte image allocated %d bytes", len(data), a)
		}
	})
}

// fzOpenWritable writes data to a file and opens it for writing; it
// returns nil (having checked the error) if the image does not open.
func fzOpenWritable(t *testing.T, data []byte) (*Image, string) {
	p := filepath.Join(t.TempDir(), "w.qcow2")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := Open(p, &OpenOptions{Writable: true, Backing: image.IgnoreBacking})
	if err != nil {
		fzCheckErr(t, "Open", p, err)
		return nil, p
	}
	return img, p
}
