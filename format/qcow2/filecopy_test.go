package qcow2_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/qimg/qimg/format/luks"
	"github.com/qimg/qimg/format/qcow2"
)

// kernelSource is a host file whose first 2 MiB hold 0xab and the next
// 2 MiB 0xcd. WriteAtFrom is told it holds the bytes of p (which are
// other), so what the image reads back shows where each byte came from:
// copied by the kernel from the file, or written from p.
func kernelSource(t *testing.T) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "source")
	if err := os.WriteFile(p, append(pattern(0xab, 2<<20), pattern(0xcd, 2<<20)...), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestWriteAtFromCopiesWholeClusters: clusters written whole or in place
// come from the file; a partial new cluster, a partial subcluster write
// and every encrypted write go through memory, as they must be merged or
// encrypted there.
func TestWriteAtFromCopiesWholeClusters(t *testing.T) {
	src := kernelSource(t)
	for _, c := range []struct {
		name string
		opts qcow2.CreateOptions
		key  []byte
		// what each write below reads as: from the file, or from p
		whole, newPartial, inPlace byte
	}{
		{"plain", qcow2.CreateOptions{}, nil, 0xab, 0x22, 0xcd},
		{"extended-l2", qcow2.CreateOptions{ExtendedL2: true}, nil, 0xab, 0x22, 0x33},
		{"data-file", qcow2.CreateOptions{DataFile: "d.data"}, nil, 0xab, 0x22, 0xcd},
		{"luks", qcow2.CreateOptions{Encrypt: &qcow2.Encryption{Format: qcow2.EncryptLUKS, Key: []byte(cryptPassword), LUKS: luks.Options{IterTime: 1}}},
			[]byte(cryptPassword), 0x11, 0x22, 0x33},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "w.qcow2")
			c.opts.Size = 4 << 20
			if c.opts.DataFile != "" {
				c.opts.DataFile = filepath.Join(filepath.Dir(p), c.opts.DataFile)
			}
			if err := qcow2.Create(p, c.opts); err != nil {
				t.Fatal(err)
			}
			img, err := qcow2.Open(p, &qcow2.OpenOptions{Writable: true, Key: c.key})
			if err != nil {
				t.Fatal(err)
			}
			want := make([]byte, 4<<20)
			write := func(b byte, n int, off, srcOff int64, reads byte) {
				t.Helper()
				if _, err := img.WriteAtFrom(pattern(b, n), off, src, srcOff); err != nil {
					t.Fatal(err)
				}
				copy(want[off:], pattern(reads, n))
			}
			write(0x11, 1<<20, 0, 0, c.whole)
			write(0x22, 1000, 2<<20+100, 0, c.newPartial)
			write(0x33, 1024, 4096, 3<<20, c.inPlace)
			if got := readAll(t, img); !bytes.Equal(got, want) {
				t.Fatal("qimg reads back other bytes than expected")
			}
			if err := img.Close(); err != nil {
				t.Fatal(err)
			}
			if c.key == nil {
				checkWritten(t, p, want)
			} else if got := qemuRaw(t, p); !bytes.Equal(got, want) {
				t.Fatal("qemu-img decrypts other bytes than qimg wrote")
			}
		})
	}
}

// TestHostFile: guest bytes are verbatim in the image file, or in the
// external data file, and never in an encrypted image's.
func TestHostFile(t *testing.T) {
	dir := t.TempDir()
	plain, withData := filepath.Join(dir, "p.qcow2"), filepath.Join(dir, "d.qcow2")
	data := filepath.Join(dir, "d.data")
	for p, o := range map[string]qcow2.CreateOptions{plain: {Size: 1 << 20}, withData: {Size: 1 << 20, DataFile: data}} {
		if err := qcow2.Create(p, o); err != nil {
			t.Fatal(err)
		}
	}
	for p, want := range map[string]string{plain: plain, withData: data, newLUKS(t): ""} {
		img, err := qcow2.Open(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if f := img.HostFile(); f != nil {
			got = f.Name()
		}
		img.Close()
		if got != want {
			t.Errorf("%s: host file %q, want %q", p, got, want)
		}
	}
}
