package vmdk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zlib"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

// qemuSparse makes a small monolithicSparse (or streamOptimized) image
// with data in its first grains and returns its bytes.
func qemuSparse(t *testing.T, opts string) []byte {
	t.Helper()
	dir := t.TempDir()
	src, _ := diskLike(t, dir, 1<<20, 5)
	p := filepath.Join(dir, "h.vmdk")
	qemutest.Img(t, "convert", "-f", "raw", "-O", "vmdk", "-o", opts, src, p)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// openHostile opens b both through NewReader and from a file; it returns
// the error of whichever fails (they must agree on failing), after
// reading everything, so that errors found late count too.
func openHostile(t *testing.T, b []byte) error {
	t.Helper()
	const name = "hostile.vmdk"
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var errs [2]error
	for i := range errs {
		var img *Image
		var err error
		if i == 0 {
			img, err = NewReader(bytes.NewReader(b), int64(len(b)), name)
		} else {
			img, err = Open(p, nil)
		}
		if err == nil {
			buf := make([]byte, 1<<20)
			for off := int64(0); off < min(img.Size(), 64<<20) && err == nil; off += 1 << 20 {
				_, err = img.ReadAt(buf, off)
				if err != nil && err.Error() == "EOF" {
					err = nil
				}
			}
			for _, e := range range2(img) {
				if e != nil && err == nil {
					err = e
				}
			}
			img.Close()
		}
		errs[i] = err
	}
	if (errs[0] == nil) != (errs[1] == nil) {
		t.Fatalf("NewReader and Open disagree: %v / %v", errs[0], errs[1])
	}
	if errs[0] != nil {
		checkErr(t, "hostile", name, errs[0])
	}
	return errs[0]
}

func range2(img *Image) []error {
	var errs []error
	for _, err := range image.Extents(img, 0, min(img.Size(), 64<<20)) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func TestHostileSparse(t *testing.T) {
	sparse := qemuSparse(t, "subformat=monolithicSparse")
	stream := qemuSparse(t, "subformat=streamOptimized")
	le := binary.LittleEndian
	gdOff := func(b []byte) int { return int(le.Uint64(b[56:])) * 512 }
	firstGTE := func(b []byte) int { return int(le.Uint32(b[gdOff(b):])) * 512 }
	firstGrain := func(b []byte) int { return int(le.Uint32(b[firstGTE(b):])) * 512 }
	cases := []struct {
		name  string
		base  []byte
		patch func(b []byte) []byte
		class error
	}{
		{"gd past EOF", sparse, func(b []byte) []byte { le.PutUint64(b[56:], uint64(len(b))/512+10); return b }, image.ErrCorrupt},
		{"gd offset huge", sparse, func(b []byte) []byte { le.PutUint64(b[56:], 1<<60); return b }, image.ErrCorrupt},
		{"huge numGTEsPerGT", sparse, func(b []byte) []byte { le.PutUint32(b[44:], 0xffffffff); return b }, image.ErrLimit},
		{"zero numGTEsPerGT", sparse, func(b []byte) []byte { le.PutUint32(b[44:], 0); return b }, image.ErrCorrupt},
		{"zero grain size", sparse, func(b []byte) []byte { le.PutUint64(b[20:], 0); return b }, image.ErrCorrupt},
		{"huge grain size", sparse, func(b []byte) []byte { le.PutUint64(b[20:], 1<<40); return b }, image.ErrLimit},
		{"huge capacity", sparse, func(b []byte) []byte { le.PutUint64(b[12:], 1<<61); return b }, image.ErrLimit},
		{"capacity needs a huge directory", sparse, func(b []byte) []byte { le.PutUint64(b[12:], 1<<50); return b }, image.ErrLimit},
		{"capacity past directory", sparse, func(b []byte) []byte { le.PutUint64(b[12:], 1<<40); return b }, image.ErrCorrupt},
		{"grain table past EOF", sparse, func(b []byte) []byte { le.PutUint32(b[gdOff(b):], uint32(len(b)/512+100)); return b }, image.ErrCorrupt},
		{"grain past EOF", sparse, func(b []byte) []byte { le.PutUint32(b[firstGTE(b):], 0xfffffff0); return b }, image.ErrCorrupt},
		{"version 4", sparse, func(b []byte) []byte { le.PutUint32(b[4:], 4); return b }, image.ErrUnsupported},
		{"unknown compression", sparse, func(b []byte) []byte { le.PutUint16(b[77:], 7); return b }, image.ErrUnsupported},
		{"truncated", sparse, func(b []byte) []byte { return b[:4096] }, image.ErrCorrupt},
		{"COWD", sparse, func(b []byte) []byte { copy(b, "COWD"); return b }, image.ErrUnsupported},
		{"parent hint", sparse, func(b []byte) []byte {
			d := b[512:]
			i := bytes.Index(d, []byte("createType"))
			copy(d[i:], "parentFileNameHint=\"../../etc/passwd\"\n")
			return b
		}, image.ErrUnsupported},
		{"grain marker size huge", stream, func(b []byte) []byte { le.PutUint32(b[firstGrain(b)+8:], 0xffffffff); return b }, image.ErrCorrupt},
		{"grain marker size zero", stream, func(b []byte) []byte { le.PutUint32(b[firstGrain(b)+8:], 0); return b }, image.ErrCorrupt},
		{"compressed garbage", stream, func(b []byte) []byte {
			g := firstGrain(b)
			copy(b[g+12:g+40], bytes.Repeat([]byte{0xff}, 28))
			return b
		}, image.ErrCorrupt},
		{"gd at end without footer", stream, func(b []byte) []byte { le.PutUint64(b[56:], ^uint64(0)); return b }, image.ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.patch(bytes.Clone(c.base))
			err := openHostile(t, b)
			if !errors.Is(err, c.class) {
				t.Fatalf("got %v, want %v", err, c.class)
			}
		})
	}
}

// TestGrainBomb puts a zlib stream that inflates to 32 MiB where a 64 KiB
// grain should be: reading it must fail quickly, having inflated at most
// one grain.
func TestGrainBomb(t *testing.T) {
	b := qemuSparse(t, "subformat=streamOptimized")
	le := binary.LittleEndian
	var bomb bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&bomb, 6)
	zeros := make([]byte, 1<<20)
	for range 32 { // 32 MiB for a 64 KiB grain
		zw.Write(zeros)
	}
	zw.Close()
	if bomb.Len() > 128<<10 {
		t.Fatalf("bomb of %d bytes does not fit a marker", bomb.Len())
	}
	// Append the bomb as a new grain and point the first entry at it.
	at := (len(b) + 511) &^ 511
	b = append(b, make([]byte, at-len(b))...)
	marker := make([]byte, 12)
	le.PutUint32(marker[8:], uint32(bomb.Len()))
	b = append(b, marker...)
	b = append(b, bomb.Bytes()...)
	b = append(b, make([]byte, 512)...)
	gt := int(le.Uint32(b[int(le.Uint64(b[56:]))*512:])) * 512
	le.PutUint32(b[gt:], uint32(at/512))
	start := time.Now()
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	err := openHostile(t, b)
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	if !errors.Is(err, image.ErrCorrupt) || !strings.Contains(err.Error(), "more than the grain size") {
		t.Fatalf("bomb: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("bomb took %v", d)
	}
	if grew := after.Maxrss - before.Maxrss; grew > 64<<10 { // KiB
		t.Fatalf("bomb grew the RSS by %d KiB", grew)
	}
}

// TestGrainChecksum flips the last byte of the first grain's zlib stream,
// its Adler-32: the grain is corrupt, as zlib's uncompress (QEMU) says.
func TestGrainChecksum(t *testing.T) {
	b := qemuSparse(t, "subformat=streamOptimized")
	le := binary.LittleEndian
	gt := int(le.Uint32(b[int(le.Uint64(b[56:]))*512:])) * 512
	grain := int(le.Uint32(b[gt:])) * 512
	size := int(le.Uint32(b[grain+8:]))
	if grain == 0 || size == 0 {
		t.Fatal("the test image's first grain is not allocated")
	}
	b[grain+12+size-1] ^= 0x55
	if err := openHostile(t, b); !errors.Is(err, image.ErrCorrupt) {
		t.Fatalf("grain with a bad checksum: %v", err)
	}
}

// TestHostileDescriptors covers descriptors that name too many extents or
// files outside their directory, and the policy that allows the latter.
func TestHostileDescriptors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	head := "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n"
	data := write("data.raw", strings.Repeat("guest data ", 100))
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link.raw")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.raw"), 0o644); err != nil {
		t.Fatal(err)
	}
	million := head + strings.Repeat("RW 1 ZERO\n", 1000000)
	many := head + strings.Repeat("RW 1 ZERO\n", DefaultMaxExtents+1)
	cases := []struct {
		name, text string
		class      error
	}{
		{"a million extents", million, image.ErrLimit},
		{"too many extents", many, image.ErrLimit},
		{"dot-dot", head + "RW 2 FLAT \"../../etc/passwd\" 0\n", image.ErrBackingRefused},
		{"absolute", head + "RW 2 FLAT \"/etc/passwd\" 0\n", image.ErrBackingRefused},
		{"symlink out", head + "RW 2 FLAT \"link.raw\" 0\n", image.ErrBackingRefused},
		{"fifo", head + "RW 2 FLAT \"fifo.raw\" 0\n", image.ErrBackingRefused},
		{"missing", head + "RW 2 FLAT \"nothing.raw\" 0\n", image.ErrCorrupt},
		{"parent", head + "parentFileNameHint=\"base.vmdk\"\nRW 2 FLAT \"data.raw\" 0\n", image.ErrUnsupported},
		{"vmfsSparse", strings.Replace(head, "monolithicFlat", "vmfsSparse", 1) + "RW 2 VMFSSPARSE \"data.raw\"\n", image.ErrUnsupported},
		{"no createType", "version=1\nRW 2 FLAT \"data.raw\" 0\n", image.ErrCorrupt},
		{"no extents", head, image.ErrCorrupt},
		{"unterminated name", head + "RW 2 FLAT \"data.raw 0\n", image.ErrCorrupt},
		{"FLAT without offset", head + "RW 2 FLAT \"data.raw\"\n", image.ErrCorrupt},
		{"sparse extent is raw", head + "RW 2 SPARSE \"data.raw\"\n", image.ErrWrongFormat},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			name := fmt.Sprintf("d%d.vmdk", i)
			p := write(name, c.text)
			start := time.Now()
			img, err := Open(p, nil)
			if err == nil {
				img.Close()
			}
			if !errors.Is(err, c.class) {
				t.Fatalf("got %v, want %v", err, c.class)
			}
			if !strings.Contains(err.Error(), name) && !errors.Is(err, image.ErrWrongFormat) {
				t.Fatalf("error does not name the descriptor: %v", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
	// With AllowAnyPath the absolute name opens; by default a relative
	// name inside the directory does.
	p := write("abs.vmdk", head+"RW 1 FLAT \""+data+"\" 0\nRW 3 ZERO\n")
	img, err := Open(p, &Options{AllowAnyPath: true})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4*512)
	if _, err := img.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	img.Close()
	want := make([]byte, 4*512)
	copy(want, strings.Repeat("guest data ", 100)[:512])
	if !bytes.Equal(buf, want) {
		t.Fatal("AllowAnyPath read differs")
	}
	p = write("rel.vmdk", head+"RW 1 FLAT \"./data.raw\" 0\n")
	if img, err = Open(p, nil); err != nil {
		t.Fatal(err)
	}
	img.Close()
}

// TestParentUnsupported opens a delta disk made by qemu-img.
func TestParentUnsupported(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.vmdk")
	qemutest.Img(t, "create", "-f", "vmdk", base, "1M")
	child := filepath.Join(dir, "child.vmdk")
	qemutest.Img(t, "create", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", child)
	_, err := Open(child, nil)
	if !errors.Is(err, image.ErrUnsupported) || !strings.Contains(err.Error(), "child.vmdk") || !strings.Contains(err.Error(), "parent") {
		t.Fatalf("delta disk: %v", err)
	}
}

func TestDetect(t *testing.T) {
	for _, c := range []struct {
		head string
		want bool
	}{
		{"KDMV\x01", true},
		{"COWD", true},
		{"# Disk DescriptorFile\nversion=1\n", true},
		{"# c\n   \r\nversion=3\r\n", true},
		{"\nversion=1\n", false},
		{"version=4\n", false},
		{"QFI\xfb", false},
		{"", false},
		{"# only a comment", false},
	} {
		head := make([]byte, 4096)
		copy(head, c.head)
		if got := Detect(head); got != c.want {
			t.Errorf("Detect(%q) = %v", c.head, got)
		}
	}
}
