package ext4_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"

	"github.com/qimg/qimg/guestfs/ext4"
)

// exampleImage reads testdata/example.img.gz, a 128 KiB file system made
// once with
//
//	mkfs.ext4 -q -F -b 1024 -N 32 -O ^has_journal,^resize_inode \
//		-U 5d2a6f1c-2f6b-4c1e-9b2e-0c1d2e3f4a5b -L example -d SRC example.img 128K
//
// from a tree holding etc/os-release, home/guest/hello.txt and two
// symbolic links: home/guest/release -> /etc/os-release and
// home/guest/escape -> ../../../../../etc/os-release.
func exampleImage() *bytes.Reader {
	f, err := os.Open("testdata/example.img.gz")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		log.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		log.Fatal(err)
	}
	return bytes.NewReader(raw)
}

// Open a file system held in any io.ReaderAt (a raw file, or an
// image.Image from format.Open), walk it and read files through
// symbolic links, which resolve inside the guest: the absolute link
// reaches the guest's /etc, and ".." stops at the guest's root.
func Example() {
	img := exampleImage()
	fsys, err := ext4.Open(img, img.Size(), "example.img")
	if err != nil {
		log.Fatal(err)
	}
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fmt.Println(d.Type(), p)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range []string{"home/guest/hello.txt", "home/guest/release", "home/guest/escape"} {
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %q\n", p, bytes.SplitN(data, []byte("\n"), 2)[0])
	}
	target, _ := fsys.ReadLink("home/guest/release")
	fmt.Println("release ->", target)
	fi, _ := fsys.Lstat("home/guest/hello.txt")
	in := fi.Sys().(*ext4.Inode)
	fmt.Printf("hello.txt: inode %d, %v, %d bytes\n", in.Ino, fi.Mode(), fi.Size())
	// Output:
	// d--------- .
	// d--------- etc
	// ---------- etc/os-release
	// d--------- home
	// d--------- home/guest
	// L--------- home/guest/escape
	// ---------- home/guest/hello.txt
	// L--------- home/guest/release
	// d--------- lost+found
	// home/guest/hello.txt: "Hello from inside the guest."
	// home/guest/release: "NAME=\"Example Linux\""
	// home/guest/escape: "NAME=\"Example Linux\""
	// release -> /etc/os-release
	// hello.txt: inode 17, -rw-r--r--, 29 bytes
}

// Info describes the file system as dumpe2fs -h would.
func ExampleFS_Info() {
	img := exampleImage()
	fsys, err := ext4.Open(img, img.Size(), "example.img")
	if err != nil {
		log.Fatal(err)
	}
	info := fsys.Info()
	fmt.Println(info.Label, info.BlockSize, info.Blocks, info.Inodes)
	fmt.Println(info.Features)
	// Output:
	// example 1024 128 32
	// [ext_attr dir_index filetype extent 64bit flex_bg sparse_super large_file huge_file dir_nlink extra_isize metadata_csum]
}

// memDevice is a Device in memory, for the example.
type memDevice struct{ b []byte }

func (m *memDevice) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memDevice) WriteAt(p []byte, off int64) (int, error) {
	return copy(m.b[off:], p), nil
}

func (m *memDevice) Flush() error { return nil }

// Edit a file system: every change is staged, visible to reads at once,
// and reaches the device only at Commit, all or nothing.
func ExampleOpenWritable() {
	img := exampleImage()
	dev := &memDevice{b: make([]byte, img.Size())}
	img.ReadAt(dev.b, 0)
	fsys, err := ext4.OpenWritable(dev, img.Size(), "example.img")
	if err != nil {
		log.Fatal(err)
	}
	msg := "written by qimg\n"
	if err := fsys.Mkdir("srv", 0o755); err != nil {
		log.Fatal(err)
	}
	if err := fsys.WriteFile("srv/motd", bytes.NewReader([]byte(msg)), int64(len(msg)), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := fsys.Rename("home/guest/hello.txt", "srv/hello.txt"); err != nil {
		log.Fatal(err)
	}
	if err := fsys.Commit(context.Background()); err != nil {
		log.Fatal(err)
	}
	// A fresh read-only open of the device sees the committed tree.
	again, err := ext4.Open(dev, img.Size(), "example.img")
	if err != nil {
		log.Fatal(err)
	}
	ents, _ := again.ReadDir("srv")
	for _, e := range ents {
		fmt.Println(e.Name())
	}
	b, _ := fs.ReadFile(again, "srv/motd")
	fmt.Print(string(b))
	// Output:
	// hello.txt
	// motd
	// written by qimg
}
