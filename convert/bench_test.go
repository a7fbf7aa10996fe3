package convert_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/qimg/qimg/convert"
	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/internal/qemutest"
)

// Benchmarks of the conversion pipeline on a 64 MiB disk-like input. The
// comparison with qemu-img on real-sized inputs is scripts/bench.sh.

func benchConvert(b *testing.B, src string, o convert.Options) {
	in, _, err := format.Open(src, format.OpenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(b.TempDir(), "out")
	b.SetBytes(in.Size())
	b.ResetTimer()
	for range b.N {
		if err := convert.Convert(context.Background(), in, dst, o); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawToQCOW2(b *testing.B) {
	benchConvert(b, diskLike(b, b.TempDir(), 64<<20), convert.Options{})
}

func BenchmarkRawToQCOW2Zlib(b *testing.B) {
	benchConvert(b, diskLike(b, b.TempDir(), 64<<20), convert.Options{Compress: true})
}

func BenchmarkRawToQCOW2Zstd(b *testing.B) {
	benchConvert(b, diskLike(b, b.TempDir(), 64<<20),
		convert.Options{Compress: true, Create: format.CreateOptions{QCOW2: qcow2.CreateOptions{CompressionType: "zstd"}}})
}

func benchFromQCOW2(b *testing.B, args ...string) {
	dir := b.TempDir()
	src := diskLike(b, dir, 64<<20)
	q := filepath.Join(dir, "src.qcow2")
	qemutest.Img(b, append(append([]string{"convert", "-f", "raw", "-O", "qcow2"}, args...), src, q)...)
	benchConvert(b, q, convert.Options{Format: "raw"})
}

func BenchmarkQCOW2ToRaw(b *testing.B)     { benchFromQCOW2(b) }
func BenchmarkQCOW2ZlibToRaw(b *testing.B) { benchFromQCOW2(b, "-c") }
func BenchmarkQCOW2ZstdToRaw(b *testing.B) {
	benchFromQCOW2(b, "-c", "-o", "compression_type=zstd")
}
