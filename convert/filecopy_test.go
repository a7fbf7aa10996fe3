package convert_test

// Conversions between host files on one file system let the kernel copy
// the data (copy_file_range); across file systems the data is written
// from memory. Either way the output must be the same file, byte for byte
// and hole for hole, as the copy through memory writes.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/qimg/qimg/convert"
	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

// throughMemory hides the source's host file: the conversion reads and
// writes every byte itself, as it did before kernel copies.
type throughMemory struct{ image.Image }

// namesOtherFile is a source that names another host file than the one
// it reads: where the conversion copies in the kernel, the output takes
// that file's bytes, so a test sees which path each byte took.
type namesOtherFile struct {
	image.Image
	f *os.File
}

func (s namesOtherFile) HostFile() *os.File { return s.f }

// otherFileSystem returns a directory on another file system than
// t.TempDir(): /dev/shm, a tmpfs on Linux.
func otherFileSystem(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "qimg-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var a, b syscall.Stat_t
	if err := syscall.Stat(dir, &a); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(t.TempDir(), &b); err != nil {
		t.Fatal(err)
	}
	if a.Dev == b.Dev {
		t.Fatalf("%s and the test's temporary directory are on one file system: set TMPDIR to a disk", dir)
	}
	return dir
}

func convertFile(t *testing.T, in image.Image, dst string, o convert.Options) {
	t.Helper()
	if err := convert.Convert(context.Background(), in, dst, o); err != nil {
		t.Fatal(err)
	}
}

func TestConvertFileCopySameOutput(t *testing.T) {
	for where, srcDir := range map[string]string{"same-fs": t.TempDir(), "other-fs": otherFileSystem(t)} {
		raw := diskLike(t, srcDir, 24<<20+4096)
		inputs := map[string]string{"raw": raw}
		for name, opts := range map[string]string{"qcow2": "cluster_size=65536", "qcow2-4k": "cluster_size=4096", "qcow2-l2": "extended_l2=on"} {
			inputs[name] = filepath.Join(srcDir, name)
			qemutest.Img(t, "convert", "-f", "raw", "-O", "qcow2", "-o", opts, raw, inputs[name])
		}
		for in, path := range inputs {
			for _, out := range []string{format.Raw, format.QCOW2} {
				t.Run(where+"/"+in+"-to-"+out, func(t *testing.T) {
					src, _, err := format.Open(path, format.OpenOptions{})
					if err != nil {
						t.Fatal(err)
					}
					defer src.Close()
					dir := t.TempDir()
					got, want := filepath.Join(dir, "got"), filepath.Join(dir, "want")
					convertFile(t, src, got, convert.Options{Format: out})
					convertFile(t, throughMemory{src}, want, convert.Options{Format: out})
					sameFile(t, got, want)
					if out == format.QCOW2 {
						qemutest.Check(t, got)
					}
					qemutest.Img(t, "compare", "-f", "raw", "-F", out, raw, got)
				})
			}
		}
	}
}

// sameFile fails unless got and want hold the same bytes and the same
// holes.
func sameFile(t *testing.T, got, want string) {
	t.Helper()
	a, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("output (%d bytes) differs from the copy through memory (%d bytes)", len(a), len(b))
	}
	if du, want := diskUsage(t, got), diskUsage(t, want); du != want {
		t.Fatalf("output uses %d bytes of disk, the copy through memory %d", du, want)
	}
}

// TestConvertCopiesInKernel shows which path the data takes: the source
// reads 0x11 in its first MiB, but names a host file of 0xab bytes.
// Without offload, into a raw target on a disk file system the kernel
// copies from that file; across file systems, into tmpfs (where the
// kernel copy was slower) and into qcow2 (likewise) the conversion writes
// what it read. With CopyOffload (-C) the kernel copies, unread, wherever
// it can: on one tmpfs too.
func TestConvertCopiesInKernel(t *testing.T) {
	for _, c := range []struct {
		where, out string
		offload    bool
		want       byte
	}{
		{"same-fs", format.Raw, false, 0xab},
		{"same-fs", format.QCOW2, false, 0x11},
		{"other-fs", format.Raw, false, 0x11},
		{"tmpfs", format.Raw, false, 0x11},
		{"same-fs", format.Raw, true, 0xab},
		{"same-fs", format.QCOW2, true, 0x11},
		{"other-fs", format.Raw, true, 0x11},
		{"tmpfs", format.Raw, true, 0xab},
	} {
		t.Run(fmt.Sprintf("%s/%s/offload=%v", c.where, c.out, c.offload), func(t *testing.T) {
			dir, otherDir := t.TempDir(), ""
			switch c.where {
			case "same-fs":
				otherDir = dir
			case "other-fs":
				otherDir = otherFileSystem(t)
			case "tmpfs":
				dir = otherFileSystem(t)
				otherDir = dir
			}
			src := filepath.Join(dir, "src.raw")
			if err := os.WriteFile(src, bytes.Repeat([]byte{0x11}, 1<<20), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(src, 2<<20+100); err != nil { // a hole, then a partial sector
				t.Fatal(err)
			}
			other := filepath.Join(otherDir, "other")
			if err := os.WriteFile(other, bytes.Repeat([]byte{0xab}, 2<<20), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(other)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			in, _, err := format.Open(src, format.OpenOptions{Format: format.Raw})
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			dst := filepath.Join(dir, "out")
			convertFile(t, namesOtherFile{in, f}, dst, convert.Options{Format: c.out, CopyOffload: c.offload})
			guest := qemutest.ToRawAs(t, c.out, dst)
			if !bytes.Equal(guest[:1<<20], bytes.Repeat([]byte{c.want}, 1<<20)) {
				t.Fatalf("first MiB reads %#x..., want %#x", guest[0], c.want)
			}
			if !bytes.Equal(guest[1<<20:], make([]byte, len(guest)-1<<20)) {
				t.Fatal("the hole was not left zero")
			}
		})
	}
}

// TestConvertCopyOffload is qemu-img -C: the data the source stores
// verbatim is not read but copied by the kernel, so the written zeros in
// it stay allocated as qemu-img -C leaves them, and the output reads as
// the source. Across file systems, where the kernel refuses, both read
// the data and leave its zeros unallocated.
func TestConvertCopyOffload(t *testing.T) {
	for where, srcDir := range map[string]string{"same-fs": t.TempDir(), "other-fs": otherFileSystem(t)} {
		raw := diskLike(t, srcDir, 24<<20+4096)
		inputs := map[string]string{"raw": raw, "qcow2": filepath.Join(srcDir, "qcow2"), "qcow2-4k": filepath.Join(srcDir, "qcow2-4k")}
		qemutest.Img(t, "convert", "-f", "raw", "-O", "qcow2", "-S", "0", raw, inputs["qcow2"])
		qemutest.Img(t, "convert", "-f", "raw", "-O", "qcow2", "-S", "0", "-o", "cluster_size=4096", raw, inputs["qcow2-4k"])
		for in, path := range inputs {
			t.Run(where+"/"+in, func(t *testing.T) {
				src, f, err := format.Open(path, format.OpenOptions{})
				if err != nil {
					t.Fatal(err)
				}
				defer src.Close()
				dir := t.TempDir()
				got, sparse, qemu := filepath.Join(dir, "got"), filepath.Join(dir, "sparse"), filepath.Join(dir, "qemu")
				convertFile(t, src, got, convert.Options{Format: format.Raw, CopyOffload: true})
				convertFile(t, src, sparse, convert.Options{Format: format.Raw})
				qemutest.Img(t, "compare", "-f", "raw", "-F", "raw", raw, got)
				qemutest.Img(t, "convert", "-C", "-f", f, "-O", "raw", path, qemu)
				if du, q := diskUsage(t, got), diskUsage(t, qemu); du != q {
					t.Errorf("output uses %d bytes of disk, qemu-img -C's %d", du, q)
				}
				du, s := diskUsage(t, got), diskUsage(t, sparse)
				if where == "same-fs" && du <= s {
					t.Errorf("output uses %d bytes of disk, no more than without -C (%d): zeros were not written", du, s)
				}
				if where == "other-fs" && du != s {
					t.Errorf("output uses %d bytes of disk, without -C %d: across file systems -C reads the data", du, s)
				}
			})
		}
	}
}

func TestConvertCopyOffloadRefusesCompression(t *testing.T) {
	dir := t.TempDir()
	in, _, err := format.Open(diskLike(t, dir, 1<<20), format.OpenOptions{Format: format.Raw})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(dir, "out.qcow2")
	err = convert.Convert(context.Background(), in, dst, convert.Options{Compress: true, CopyOffload: true})
	if !errors.Is(err, image.ErrInvalidArgument) {
		t.Fatalf("compressed copy offload: %v, want ErrInvalidArgument", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatalf("%s was written", dst)
	}
}
