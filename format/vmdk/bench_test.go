package vmdk

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/qimg/qimg/internal/qemutest"
)

// Benchmarks on a 64 MiB disk-like input (run with -bench .): reading
// every subformat in 1 MiB units from 4 goroutines, as a conversion does,
// and writing a stream; each logs qemu-img convert's time on the same
// input for comparison.

const benchSize = 64 << 20

func benchSource(b *testing.B) (string, []byte) {
	b.Helper()
	return diskLike(b, b.TempDir(), benchSize, 64)
}

func BenchmarkRead(b *testing.B) {
	src, _ := benchSource(b)
	dir := filepath.Dir(src)
	for _, sf := range []string{"streamOptimized", "monolithicSparse", "monolithicFlat"} {
		p := filepath.Join(dir, sf+".vmdk")
		qemutest.Img(b, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat="+sf, src, p)
		start := time.Now()
		qemutest.Img(b, "convert", "-O", "raw", p, filepath.Join(dir, "q.raw"))
		b.Logf("%s: qemu-img convert -O raw took %v", sf, time.Since(start))
		b.Run(sf, func(b *testing.B) {
			b.SetBytes(benchSize)
			for b.Loop() {
				img, err := Open(p, nil)
				if err != nil {
					b.Fatal(err)
				}
				parallelRead(b, img)
				img.Close()
			}
		})
	}
}

func parallelRead(b *testing.B, img *Image) {
	units := make(chan int64)
	done := make(chan error)
	for range 4 {
		go func() {
			buf := make([]byte, 1<<20)
			var err error
			for off := range units {
				if err == nil {
					_, err = img.ReadAt(buf[:min(1<<20, img.Size()-off)], off)
				}
			}
			done <- err
		}()
	}
	for off := int64(0); off < img.Size(); off += 1 << 20 {
		units <- off
	}
	close(units)
	for range 4 {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStreamWrite(b *testing.B) {
	src, content := benchSource(b)
	dir := filepath.Dir(src)
	start := time.Now()
	cmd := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", src, filepath.Join(dir, "q.vmdk"))
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	b.Logf("qemu-img convert -O vmdk streamOptimized took %v", time.Since(start))
	p := filepath.Join(dir, "w.vmdk")
	b.SetBytes(benchSize)
	for b.Loop() {
		writeStream(b, p, content)
	}
	st, _ := os.Stat(p)
	qt, _ := os.Stat(filepath.Join(dir, "q.vmdk"))
	b.Logf("ours %d bytes, qemu-img %d bytes", st.Size(), qt.Size())
}

// BenchmarkRead4K reads a streamOptimized image in sequential 4 KiB
// reads, which the grain cache serves.
func BenchmarkRead4K(b *testing.B) {
	src, _ := benchSource(b)
	p := filepath.Join(filepath.Dir(src), "s.vmdk")
	qemutest.Img(b, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", src, p)
	img, err := Open(p, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer img.Close()
	buf := make([]byte, 4096)
	b.SetBytes(benchSize)
	for b.Loop() {
		for off := int64(0); off < img.Size(); off += 4096 {
			if _, err := img.ReadAt(buf, off); err != nil {
				b.Fatal(err)
			}
		}
	}
}
