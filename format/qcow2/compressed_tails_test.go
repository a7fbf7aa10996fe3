package qcow2_test

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/qimg/qimg/format/qcow2"
)

// squeezable returns a cluster that compresses to about k bytes: k random
// bytes, then zeros.
func squeezable(rng *rand.Rand, k int) []byte {
	b := make([]byte, 65536)
	for i := range k {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestCompressedFillsTails writes compressed clusters of about 40, 50 and
// 20 KiB with a plain cluster after the first: the 50 KiB one does not fit
// after the first and starts a new host cluster, and the 20 KiB one must
// go into the room left after the first instead of spilling past the
// second, so the file ends inside the third cluster after the first one.
func TestCompressedFillsTails(t *testing.T) {
	for _, typ := range []string{"zlib", "zstd"} {
		p := filepath.Join(t.TempDir(), typ+".qcow2")
		if err := qcow2.Create(p, qcow2.CreateOptions{Size: 8 << 20, CompressionType: typ}); err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		want := make([]byte, 8<<20)
		img := openRW(t, p)
		write := func(data []byte, off int64, compressed bool) {
			t.Helper()
			copy(want[off:], data)
			if !compressed {
				mustWrite(t, img, data, off)
			} else if err := img.WriteCompressed(data, off); err != nil {
				t.Fatal(err)
			}
		}
		write(squeezable(rng, 40<<10), 0, true)
		first := fileSize(t, p) / 65536 // the host cluster holding it
		write(pattern(7, 65536), 1<<20, false)
		write(squeezable(rng, 50<<10), 64<<10, true)
		write(squeezable(rng, 20<<10), 128<<10, true)
		if end := fileSize(t, p); end > (first+3)*65536 {
			t.Errorf("%s: the file ends at %#x, past host cluster %#x: the room after the first compressed cluster was not used", typ, end, (first+3)*65536)
		}
		if err := img.Close(); err != nil {
			t.Fatal(err)
		}
		checkWritten(t, p, want)
	}
}

// TestCompressedTailFreed frees the host cluster whose room is remembered
// for packing and lets plain data take it: compressed data written after
// must go elsewhere, or it would overwrite that data.
func TestCompressedTailFreed(t *testing.T) {
	p := filepath.Join(t.TempDir(), "freed.qcow2")
	if err := qcow2.Create(p, qcow2.CreateOptions{Size: 8 << 20, CompressionType: "zstd"}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	want := make([]byte, 8<<20)
	img := openRW(t, p)
	compressed := func(data []byte, off int64) {
		t.Helper()
		copy(want[off:], data)
		if err := img.WriteCompressed(data, off); err != nil {
			t.Fatal(err)
		}
	}
	compressed(squeezable(rng, 40<<10), 0)
	mustWrite(t, img, pattern(7, 65536), 1<<20)
	copy(want[1<<20:], pattern(7, 65536))
	compressed(squeezable(rng, 50<<10), 64<<10)   // the first host cluster's room is remembered
	if err := img.Discard(0, 65536); err != nil { // and the cluster freed
		t.Fatal(err)
	}
	clear(want[:65536])
	mustWrite(t, img, pattern(9, 65536), 2<<20) // plain data reuses it
	copy(want[2<<20:], pattern(9, 65536))
	compressed(squeezable(rng, 20<<10), 128<<10)
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	checkWritten(t, p, want)
}
