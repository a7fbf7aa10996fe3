package qcow2

// Hostile images: each case patches bytes of an image made by qemu-img and
// checks that opening and reading it fails cleanly (a classified error that
// names the file and the problem), quickly, within bounded memory, and
// without touching the file.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

// hsMemLimit bounds what opening and reading one hostile image may
// allocate in total.
const hsMemLimit = 64 << 20

// hsBase is a qemu-made image with its layout.
type hsBase struct {
	data     []byte
	l1, l2   int64 // L1 table and first L2 table offsets
	clusters int64
}

func hsMakeBase(t *testing.T, dir, name string, mk func(p string)) hsBase {
	t.Helper()
	p := filepath.Join(dir, name)
	mk(p)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	l1 := int64(be.Uint64(b[40:]))
	return hsBase{data: b, l1: l1, l2: int64(be.Uint64(b[l1:]) & offsetMask), clusters: 1 << be.Uint32(b[20:])}
}

// hsBases builds the images the cases patch: plain (512-byte clusters,
// data in the first clusters), compressed (zlib) and with one snapshot.
func hsBases(t *testing.T) (plain, comp, snap, compZstd hsBase) {
	dir := t.TempDir()
	plain = hsMakeBase(t, dir, "plain.qcow2", func(p string) {
		qemutest.Img(t, "create", "-f", "qcow2", "-o", "cluster_size=512", p, "64k")
		qemutest.IO(t, p, "write -P 0x11 0 1024", "write -P 0x22 4096 512")
	})
	comp = hsMakeBase(t, dir, "comp.qcow2", func(p string) {
		raw := filepath.Join(dir, "c.raw")
		if err := os.WriteFile(raw, bytes.Repeat([]byte("compress me "), 700), 0o644); err != nil {
			t.Fatal(err)
		}
		qemutest.Img(t, "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=512", raw, p)
	})
	compZstd = hsMakeBase(t, dir, "compzstd.qcow2", func(p string) {
		raw := filepath.Join(dir, "c.raw")
		qemutest.Img(t, "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=512,compression_type=zstd", raw, p)
	})
	snap = hsMakeBase(t, dir, "snap.qcow2", func(p string) {
		qemutest.Img(t, "create", "-f", "qcow2", "-o", "cluster_size=512", p, "64k")
		qemutest.IO(t, p, "write -P 0x33 0 512")
		qemutest.Img(t, "snapshot", "-c", "s1", p)
	})
	return
}

func put32(b []byte, off int, v uint32) []byte {
	b = bytes.Clone(b)
	binary.BigEndian.PutUint32(b[off:], v)
	return b
}

func put64(b []byte, off int64, v uint64) []byte {
	b = bytes.Clone(b)
	binary.BigEndian.PutUint64(b[off:], v)
	return b
}

// hsCase is one hostile image.
type hsCase struct {
	name  string
	data  []byte
	class error  // the class the error must wrap
	msg   string // a word of the problem the message must name
	// readOK means the image is valid enough to read without error (a
	// compression bomb that must be cut); want is then the guest data
	// expected at offset 0.
	readOK bool
	want   []byte
}

// hsOpenAndRead opens the image at p (or, with r, the bytes r) and reads
// all of it: every read path a converter uses. It returns the first error.
func hsOpenAndRead(p string, r []byte, opts *OpenOptions) (first []byte, err error) {
	var img *Image
	if r != nil {
		img, err = NewReader(bytes.NewReader(r), int64(len(r)), p, opts)
	} else {
		img, err = Open(p, opts)
	}
	if err != nil {
		return nil, err
	}
	defer img.Close()
	size := min(img.Size(), 64<<20)
	buf := make([]byte, min(size, 1<<20))
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := min(int64(len(buf)), size-off)
		if _, err := img.ReadAt(buf[:n], off); err != nil && err != io.EOF {
			return nil, err
		}
		if off == 0 {
			first = bytes.Clone(buf[:n])
		}
	}
	for pos := int64(0); pos < img.Size(); {
		e, err := img.Extent(pos, img.Size()-pos)
		if err != nil {
			return nil, err
		}
		pos = e.End()
	}
	snaps, err := img.Snapshots()
	if err != nil {
		return nil, err
	}
	for _, s := range snaps {
		if _, err := img.snapshotL1(s); err != nil {
			return nil, err
		}
	}
	return first, nil
}

// hsRun runs f in a goroutine with a deadline and measures what it
// allocates.
func hsRun(t *testing.T, what string, f func()) {
	t.Helper()
	before := fzAllocated()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still running after 10 s", what)
	}
	if a := fzAllocated() - before; a > hsMemLimit {
		t.Fatalf("%s: allocated %d MiB (limit %d MiB)", what, a>>20, hsMemLimit>>20)
	}
}

// hsCheck writes c.data to a file, opens and reads it with Open and with
// NewReader, and checks the outcome and that the file is untouched.
func hsCheck(t *testing.T, c hsCase, opts OpenOptions) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "hostile.qcow2")
	if err := os.WriteFile(p, c.data, 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	for _, viaReader := range []bool{false, true} {
		var first []byte
		var err error
		what := fmt.Sprintf("%s (NewReader %v)", c.name, viaReader)
		hsRun(t, what, func() {
			var r []byte
			if viaReader {
				r = c.data
			}
			o := opts
			first, err = hsOpenAndRead(p, r, &o)
		})
		if c.readOK {
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if c.want != nil && !bytes.Equal(first[:len(c.want)], c.want) {
				t.Fatalf("%s: reads %q..., want %q...", what, first[:min(16, len(first))], c.want[:min(16, len(c.want))])
			}
			continue
		}
		if err == nil {
			t.Fatalf("%s: opened and read without error", what)
		}
		if !errors.Is(err, c.class) {
			t.Fatalf("%s: error does not wrap %q: %v", what, c.class, err)
		}
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("%s: error does not name the file: %v", what, err)
		}
		if !strings.Contains(err.Error(), c.msg) {
			t.Fatalf("%s: error does not mention %q: %v", what, c.msg, err)
		}
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, c.data) {
		t.Fatalf("%s: the file changed", c.name)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if !st.ModTime().Equal(mtime) {
		t.Fatalf("%s: mtime changed to %v", c.name, st.ModTime())
	}
}

func TestHostileTruncatedHeader(t *testing.T) {
	plain, _, _, _ := hsBases(t)
	for n := 0; n <= headerV3Length; n++ {
		c := hsCase{name: fmt.Sprintf("header cut to %d bytes", n), data: plain.data[:n], class: image.ErrCorrupt, msg: "header"}
		switch {
		case n < 4:
			c.class, c.msg = image.ErrWrongFormat, "too short"
		case n < headerV2Length:
			c.msg = "truncated"
		case n < headerV3Length:
			c.msg = "version 3 header truncated"
		default:
			c.msg = "header_length"
		}
		hsCheck(t, c, OpenOptions{Backing: image.IgnoreBacking})
	}
}

func TestHostileImages(t *testing.T) {
	plain, comp, snap, compZstd := hsBases(t)
	p := plain.data
	cs := plain.clusters
	end := int64(len(p))
	be := binary.BigEndian

	// Compressed cluster 0 of comp: its L2 slot and a replacement stream
	// appended at the end of the file.
	compDescIn := func(base hsBase, stream []byte) []byte {
		b := bytes.Clone(base.data)
		host := (int64(len(b)) + 511) &^ 511
		b = append(b, make([]byte, host-int64(len(b)))...)
		b = append(b, stream...)
		h := &Header{ClusterBits: 9}
		binary.BigEndian.PutUint64(b[base.l2:], h.encodeCompressed(host, int64(len(stream))))
		return b
	}
	compDesc := func(stream []byte) []byte { return compDescIn(comp, stream) }
	bomb := bytes.Repeat([]byte{'A'}, 256<<10)
	var zbuf bytes.Buffer
	zw, _ := flate.NewWriter(&zbuf, flate.BestCompression)
	zw.Write(bomb)
	zw.Close()
	zenc, err := zstd.NewWriter(nil, zstd.WithWindowSize(1<<20), zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	if err != nil {
		t.Fatal(err)
	}
	zbomb := zenc.EncodeAll(bomb, nil)
	zstdImage := func(stream []byte) []byte { return compDescIn(compZstd, stream) }
	bigZstdWindow := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xf8} // window 2^(10+31): far too big
	bigZstdWindow = append(bigZstdWindow, make([]byte, 32)...)

	// Snapshot table: the image has one snapshot.
	snapOff := int64(be.Uint64(snap.data[64:]))

	// Two header extensions of one type, right after the 112-byte header.
	dup := bytes.Clone(p)
	for _, off := range []int{112, 128} {
		be.PutUint32(dup[off:], extBackingFormat)
		be.PutUint32(dup[off+4:], 3)
		copy(dup[off+8:], "raw")
	}

	cases := []hsCase{
		{name: "cluster_bits 0", data: put32(p, 20, 0), class: image.ErrCorrupt, msg: "cluster_bits"},
		{name: "cluster_bits 8", data: put32(p, 20, 8), class: image.ErrCorrupt, msg: "cluster_bits"},
		{name: "cluster_bits 22", data: put32(p, 20, 22), class: image.ErrCorrupt, msg: "cluster_bits"},
		{name: "cluster_bits 63", data: put32(p, 20, 63), class: image.ErrCorrupt, msg: "cluster_bits"},
		{name: "version 1", data: put32(p, 4, 1), class: image.ErrUnsupported, msg: "version"},
		{name: "version 4", data: put32(p, 4, 4), class: image.ErrUnsupported, msg: "version"},
		{name: "l1_size 0xffffffff", data: put32(p, 36, 0xffffffff), class: image.ErrLimit, msg: "L1"},
		{name: "l1_size too small for the size", data: put32(p, 36, 0), class: image.ErrCorrupt, msg: "L1"},
		{name: "L1 past EOF", data: put64(p, 40, uint64(end+cs)), class: image.ErrCorrupt, msg: "L1 table"},
		{name: "L1 far past EOF", data: put64(p, 40, 1<<60), class: image.ErrCorrupt, msg: "L1 table"},
		{name: "L1 misaligned", data: put64(p, 40, uint64(plain.l1+8)), class: image.ErrCorrupt, msg: "aligned"},
		{name: "L1 at 0", data: put64(p, 40, 0), class: image.ErrCorrupt, msg: "L1 table"},
		{name: "refcount table huge", data: put32(p, 56, 0xffffffff), class: image.ErrLimit, msg: "refcount table"},
		{name: "refcount table empty", data: put32(p, 56, 0), class: image.ErrCorrupt, msg: "refcount table"},
		{name: "refcount table misaligned", data: put64(p, 48, uint64(cs+16)), class: image.ErrCorrupt, msg: "refcount table"},
		{name: "refcount table past EOF", data: put64(p, 48, uint64(end)), class: image.ErrCorrupt, msg: "refcount table"},
		{name: "refcount table too long for the file", data: put32(p, 56, uint32(end/cs)), class: image.ErrCorrupt, msg: "refcount table"},
		{name: "refcount_order 7", data: put32(p, 96, 7), class: image.ErrCorrupt, msg: "refcount_order"},
		{name: "nb_snapshots huge", data: put32(p, 60, 0xffffffff), class: image.ErrLimit, msg: "snapshots"},
		{name: "nb_snapshots past the table", data: put32(snap.data, 60, 1000), class: image.ErrCorrupt, msg: "snapshot"},
		{name: "snapshot table past EOF", data: put64(snap.data, 64, uint64(int64(len(snap.data))+512)), class: image.ErrCorrupt, msg: "snapshot table"},
		{name: "snapshot table misaligned", data: put64(snap.data, 64, uint64(snapOff+8)), class: image.ErrCorrupt, msg: "snapshot table"},
		{name: "snapshot entry longer than the file", data: put32(snap.data, int(snapOff+36), 1000), class: image.ErrCorrupt, msg: "snapshot"},
		{name: "snapshot L1 past EOF", data: put64(snap.data, snapOff, 1<<40), class: image.ErrCorrupt, msg: "L1 table"},
		{name: "snapshot L1 huge", data: put32(snap.data, int(snapOff+8), 0xffffffff), class: image.ErrLimit, msg: "L1 table"},
		{name: "backing_file_size 0xffffffff", data: put32(put64(p, 8, 200), 16, 0xffffffff), class: image.ErrCorrupt, msg: "backing file name"},
		{name: "backing_file_size without offset", data: put32(p, 16, 4), class: image.ErrCorrupt, msg: "backing_file_size"},
		{name: "backing file offset past the cluster", data: put32(put64(p, 8, uint64(cs+8)), 16, 4), class: image.ErrCorrupt, msg: "backing file name"},
		{name: "backing file name ends past the cluster", data: put32(put64(p, 8, uint64(cs-2)), 16, 4), class: image.ErrCorrupt, msg: "backing file name"},
		{name: "backing file offset wraps", data: put32(put64(p, 8, ^uint64(0)), 16, 2), class: image.ErrCorrupt, msg: "backing file name"},
		{name: "backing file name too long", data: put32(put64(p, 8, 200), 16, 1024), class: image.ErrCorrupt, msg: "backing file name"},
		{name: "header_length odd", data: put32(p, 100, 113), class: image.ErrCorrupt, msg: "header_length"},
		{name: "header_length short", data: put32(p, 100, 96), class: image.ErrCorrupt, msg: "header_length"},
		{name: "header_length huge", data: put32(p, 100, 0xfffffff8), class: image.ErrCorrupt, msg: "header_length"},
		{name: "header_length of one whole cluster is valid", data: put32(p, 100, 512), readOK: true, want: bytes.Repeat([]byte{0x11}, 1024)},
		{name: "extension length past the cluster", data: put32(put32(p, 112, 0x12345678), 116, 0x1000), class: image.ErrCorrupt, msg: "extension"},
		{name: "extension length huge", data: put32(put32(p, 112, 0x12345678), 116, 0xffffffff), class: image.ErrCorrupt, msg: "extension"},
		{name: "duplicate extensions", data: dup, class: image.ErrCorrupt, msg: "twice"},
		{name: "bitmaps extension short", data: put32(put32(p, 112, extBitmaps), 116, 8), class: image.ErrCorrupt, msg: "bitmaps"},
		{name: "unknown incompatible bit", data: put64(p, 72, 1<<5), class: image.ErrUnsupported, msg: "incompatible"},
		{name: "incompatible bit 63", data: put64(p, 72, 1<<63), class: image.ErrUnsupported, msg: "incompatible"},
		{name: "compression type without the bit", data: func() []byte { b := bytes.Clone(p); b[104] = 1; return b }(), class: image.ErrCorrupt, msg: "compression type"},
		{name: "unknown compression type", data: put64(func() []byte { b := bytes.Clone(p); b[104] = 7; return b }(), 72, IncompatCompressionType), class: image.ErrUnsupported, msg: "compression type"},
		{name: "unknown encryption", data: put32(p, 32, 3), class: image.ErrUnsupported, msg: "encryption"},
		{name: "AES encrypted", data: put32(p, 32, CryptAES), class: image.ErrEncrypted, msg: "encrypted"},
		{name: "virtual size 2^62", data: put64(p, 24, 1<<62), class: image.ErrLimit, msg: "virtual size"},
		{name: "virtual size 2^64-1", data: put64(p, 24, ^uint64(0)), class: image.ErrLimit, msg: "virtual size"},
		{name: "virtual size 2^40 with a small L1", data: put64(p, 24, 1<<40), class: image.ErrCorrupt, msg: "L1"},
		{name: "external data file bit without a name", data: put64(p, 72, IncompatDataFile), class: image.ErrCorrupt, msg: "data file"},
		{name: "L2 table past EOF", data: put64(p, plain.l1, flagCopied|uint64(end+4*cs)), class: image.ErrCorrupt, msg: "L2 table"},
		{name: "L2 table far past EOF", data: put64(p, plain.l1, flagCopied|0x00fffffffffffe00), class: image.ErrCorrupt, msg: "L2 table"},
		{name: "L2 entry past EOF", data: put64(p, plain.l2, flagCopied|uint64(end+cs)), class: image.ErrCorrupt, msg: "past the end of the file"},
		{name: "L2 entry far past EOF", data: put64(p, plain.l2, flagCopied|0x00fffffffffffe00), class: image.ErrCorrupt, msg: "past the end of the file"},
		{name: "compressed descriptor past EOF", data: put64(comp.data, comp.l2, (&Header{ClusterBits: 9}).encodeCompressed(int64(len(comp.data))+4096, 100)), class: image.ErrCorrupt, msg: "compressed cluster"},
		{name: "compressed descriptor far past EOF", data: put64(comp.data, comp.l2, flagCompressed|(1<<61-1)), class: image.ErrCorrupt, msg: "compressed cluster"},
		{name: "garbage deflate data", data: compDesc(bytes.Repeat([]byte{0xff, 0x13, 0x00}, 100)), class: image.ErrCorrupt, msg: "compressed"},
		{name: "deflate stream ends early", data: compDesc(zbuf.Bytes()[:10]), class: image.ErrCorrupt, msg: "compressed"},
		{name: "empty deflate stream", data: compDesc([]byte{0x03, 0x00}), class: image.ErrCorrupt, msg: "compressed"},
		{name: "deflate bomb is cut at one cluster", data: compDesc(zbuf.Bytes()), readOK: true, want: bomb[:512]},
		{name: "zstd bomb is cut at one cluster", data: zstdImage(zbomb), readOK: true, want: bomb[:512]},
		{name: "garbage zstd data", data: zstdImage(bytes.Repeat([]byte{0xde, 0xad}, 100)), class: image.ErrCorrupt, msg: "compressed"},
		{name: "zstd frame with a huge window", data: zstdImage(bigZstdWindow), class: image.ErrCorrupt, msg: "compressed"},
	}
	if len(zbuf.Bytes()) > 1024 || len(zbomb) > 1024 {
		t.Fatalf("bombs too big for a 512-byte cluster descriptor: %d, %d", zbuf.Len(), len(zbomb))
	}
	for _, c := range cases {
		hsCheck(t, c, OpenOptions{Backing: image.IgnoreBacking})
	}
}

// TestHostileL2Misaligned needs 4 KiB clusters: with 512-byte clusters
// every offset the entry can hold is aligned.
func TestHostileL2Misaligned(t *testing.T) {
	dir := t.TempDir()
	b := hsMakeBase(t, dir, "a.qcow2", func(p string) {
		qemutest.Img(t, "create", "-f", "qcow2", "-o", "cluster_size=4096", p, "1M")
		qemutest.IO(t, p, "write -P 0x11 0 4096")
	})
	data := b.data
	e := be64(data[b.l2:])
	hsCheck(t, hsCase{name: "L2 entry misaligned", data: put64(data, b.l2, e+512), class: image.ErrCorrupt, msg: "aligned"}, OpenOptions{Backing: image.IgnoreBacking})
	l1e := be64(data[b.l1:])
	hsCheck(t, hsCase{name: "L1 entry misaligned", data: put64(data, b.l1, l1e+512), class: image.ErrCorrupt, msg: "aligned"}, OpenOptions{Backing: image.IgnoreBacking})
}

func be64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

// TestBackingPolicy checks the three policies for names stored in images.
func TestBackingPolicy(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(sub, "base.qcow2")
	top := filepath.Join(sub, "top.qcow2")
	qemutest.Img(t, "create", "-f", "qcow2", base, "1M")
	qemutest.IO(t, base, "write -P 0x5a 0 1M")
	qemutest.Img(t, "create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top, "1M")
	qemutest.IO(t, top, "write -P 0x77 65536 4096")
	// A decoy with the same relative name in the working directory.
	if err := os.WriteFile(filepath.Join(dir, "base.qcow2"), bytes.Repeat([]byte{0xd0}, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)

	want := bytes.Repeat([]byte{0x5a}, 1<<20)
	copy(want[65536:], bytes.Repeat([]byte{0x77}, 4096))
	for _, p := range []string{top, filepath.Join("sub", "top.qcow2")} {
		img, err := Open(p, withChain(p, &OpenOptions{Backing: image.FollowBacking}))
		if err != nil {
			t.Fatalf("image.FollowBacking %s: %v", p, err)
		}
		got := make([]byte, img.Size())
		if _, err := img.ReadAt(got, 0); err != nil {
			t.Fatal(err)
		}
		img.Close()
		if !bytes.Equal(got, want) {
			t.Fatalf("image.FollowBacking %s: backing not resolved against the image directory (byte 0 = %#x)", p, got[0])
		}
	}
	if oracle := qemutest.ToRaw(t, top); !bytes.Equal(oracle, want) {
		t.Fatal("qemu-img reads something else: the test is wrong")
	}

	_, err := Open(top, &OpenOptions{Backing: image.RefuseBacking})
	if !errors.Is(err, image.ErrBackingRefused) || !strings.Contains(err.Error(), top) || !strings.Contains(err.Error(), "base.qcow2") {
		t.Fatalf("image.RefuseBacking: %v", err)
	}

	img, err := Open(top, &OpenOptions{Backing: image.IgnoreBacking})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, img.Size())
	if _, err := img.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	img.Close()
	// Only the cluster the write allocated (copied from the backing file
	// around the write) is this layer's.
	wantIgnore := make([]byte, 1<<20)
	copy(wantIgnore[65536:131072], want[65536:131072])
	if !bytes.Equal(got, wantIgnore) {
		t.Fatal("image.IgnoreBacking does not read zeros where the image is unallocated")
	}
	e, err := func() (image.Extent, error) {
		img, err := Open(top, &OpenOptions{Backing: image.IgnoreBacking})
		if err != nil {
			return image.Extent{}, err
		}
		defer img.Close()
		return img.Extent(0, 65536)
	}()
	if err != nil || e.Data || !e.Zero {
		t.Fatalf("image.IgnoreBacking extent at 0: %+v, %v", e, err)
	}
}

// TestBackingPolicyHostFiles covers images that name sensitive host files
// as backing or data file.
func TestBackingPolicyHostFiles(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd-backing.qcow2")
	qemutest.Img(t, "create", "-f", "qcow2", "-u", "-b", "/etc/passwd", "-F", "raw", passwd, "1M")

	// A data file name of the same length as /etc/passwd, patched in.
	dataImg := filepath.Join(dir, "passwd-data.qcow2")
	stand := "/tmp/zzzzzz"
	if len(stand) != len("/etc/passwd") {
		t.Fatal("bad stand-in name")
	}
	standIn := filepath.Join(dir, "d")
	qemutest.Img(t, "create", "-f", "qcow2", "-o", "data_file="+standIn, dataImg, "1M")
	b, err := os.ReadFile(dataImg)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(standIn))
	if i < 0 {
		t.Fatal("data file name not found in the header")
	}
	// Shorten the extension to the new name.
	binary.BigEndian.PutUint32(b[i-4:], uint32(len("/etc/passwd")))
	copy(b[i:], append([]byte("/etc/passwd"), make([]byte, len(standIn))...))
	if err := os.WriteFile(dataImg, b, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, p := range []string{passwd, dataImg} {
		_, err := Open(p, &OpenOptions{Backing: image.RefuseBacking})
		if !errors.Is(err, image.ErrBackingRefused) || !strings.Contains(err.Error(), "/etc/passwd") || !strings.Contains(err.Error(), p) {
			t.Fatalf("image.RefuseBacking %s: %v", p, err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		// NewReader never opens host files named by the image, whatever
		// the policy, unless the caller supplies OpenBacking.
		for _, pol := range []image.BackingPolicy{image.FollowBacking, image.RefuseBacking} {
			_, err := NewReader(bytes.NewReader(data), int64(len(data)), p, &OpenOptions{Backing: pol})
			if !errors.Is(err, image.ErrBackingRefused) {
				t.Fatalf("NewReader policy %d on %s: %v", pol, p, err)
			}
		}
	}
	// image.IgnoreBacking skips the backing file but a data file is this
	// layer's data: NewReader must still refuse it.
	data, _ := os.ReadFile(dataImg)
	if _, err := NewReader(bytes.NewReader(data), int64(len(data)), dataImg, &OpenOptions{Backing: image.IgnoreBacking}); !errors.Is(err, image.ErrBackingRefused) {
		t.Fatalf("NewReader image.IgnoreBacking on a data file image: %v", err)
	}
	data, _ = os.ReadFile(passwd)
	img, err := NewReader(bytes.NewReader(data), int64(len(data)), passwd, &OpenOptions{Backing: image.IgnoreBacking})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if _, err := img.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, make([]byte, 4096)) {
		t.Fatalf("image.IgnoreBacking over /etc/passwd: %v", err)
	}
	img.Close()
}

// TestHostileWritableOpen opens for writing an image whose refcount table
// has a million entries naming one zeroed cluster: the writer's scan for
// the end of allocated space must not read that cluster a million times.
func TestHostileWritableOpen(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "rt.qcow2")
	qemutest.Img(t, "create", "-f", "qcow2", p, "64M")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	const cs = 65536
	b = append(b, make([]byte, (cs-len(b)%cs)%cs)...)
	zeroCluster := int64(len(b)) // an all-zero cluster appended
	b = append(b, make([]byte, cs)...)
	tableOff := int64(len(b))
	table := make([]byte, maxRefTableSize)
	for i := 0; i < len(table); i += 8 {
		binary.BigEndian.PutUint64(table[i:], uint64(zeroCluster))
	}
	b = append(b, table...)
	b = put64(b, 48, uint64(tableOff))
	b = put32(b, 56, maxRefTableSize/cs)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var openErr error
	hsRun(t, "writable open", func() {
		img, err := Open(p, &OpenOptions{Writable: true})
		if err == nil {
			img.Close()
		}
		openErr = err
	})
	if !errors.Is(openErr, image.ErrCorrupt) || !strings.Contains(openErr.Error(), p) {
		t.Fatalf("want ErrCorrupt naming the file, got %v", openErr)
	}
}
