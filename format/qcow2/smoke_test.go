package qcow2_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/internal/qemutest"
)

func readAll(t *testing.T, img *qcow2.Image) []byte {
	t.Helper()
	b := make([]byte, img.Size())
	if _, err := img.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b
}

func TestSmokeWriteCheck(t *testing.T) {
	for _, opts := range []qcow2.CreateOptions{
		{},
		{Compat: "0.10"},
		{ClusterSize: 512, RefcountBits: 1},
		{ClusterSize: 4096, RefcountBits: 64},
		{ExtendedL2: true, ClusterSize: 65536},
		{CompressionType: "zstd"},
		{ClusterSize: 2 << 20, RefcountBits: 8},
	} {
		dir := t.TempDir()
		p := filepath.Join(dir, "a.qcow2")
		opts.Size = 8<<20 + 12345
		if err := qcow2.Create(p, opts); err != nil {
			t.Fatal(err)
		}
		qemutest.Check(t, p)
		img, err := qcow2.Open(p, &qcow2.OpenOptions{Writable: true})
		if err != nil {
			t.Fatal(err)
		}
		opts.Size = img.Size()
		want := make([]byte, opts.Size)
		rng := rand.New(rand.NewPCG(1, 2))
		for range 200 {
			off := rng.Int64N(opts.Size)
			n := rng.Int64N(min(opts.Size-off, 200000)) + 1
			buf := make([]byte, n)
			for i := range buf {
				buf[i] = byte(rng.Uint32())
			}
			switch rng.IntN(4) {
			case 0:
				if err := img.WriteZeroes(off, n); err != nil {
					t.Fatal(err)
				}
				clear(want[off : off+n])
			case 1:
				h := img.Header()
				cs := h.ClusterSize()
				c := off &^ (cs - 1)
				m := min(cs, opts.Size-c)
				if err := img.WriteCompressed(bytes.Repeat([]byte{byte(off)}, int(m)), c); err != nil {
					t.Fatal(err)
				}
				copy(want[c:c+m], bytes.Repeat([]byte{byte(off)}, int(m)))
			default:
				if _, err := img.WriteAt(buf, off); err != nil {
					t.Fatal(err)
				}
				copy(want[off:], buf)
			}
		}
		if got := readAll(t, img); !bytes.Equal(got, want) {
			t.Fatalf("%+v: read back differs", opts)
		}
		if err := img.Close(); err != nil {
			t.Fatal(err)
		}
		qemutest.Check(t, p)
		if got := qemutest.ToRaw(t, p); !bytes.Equal(got, want) {
			i := 0
			for i < len(got) && got[i] == want[i] {
				i++
			}
			t.Log(qemutest.Img(t, "map", "--output=json", p))
			t.Fatalf("%+v: qemu-img reads different data from offset %#x (len %d vs %d)", opts, i, len(got), len(want))
		}
	}
}
