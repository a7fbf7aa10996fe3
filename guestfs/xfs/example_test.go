package xfs_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"

	"github.com/qimg/qimg/guestfs/xfs"
	"github.com/qimg/qimg/internal/imagetest"
)

// exampleImage unpacks testdata/example.img.gz, a 32 MiB v5 file system
// (two allocation groups) made once with
//
//	mkfs.xfs -q -f -d agcount=2 -L example \
//		-m crc=1,uuid=5d2a6f1c-2f6b-4c1e-9b2e-0c1d2e3f4a5b -p PROTO example.img
//	xfs_db -x -c 'path /home/guest/hello.txt' -c 'attr_set -u -v 5 comment' example.img
//
// (TestMakeTestdata remakes it) from a prototype holding etc/os-release,
// home/guest/hello.txt and two symbolic links: home/guest/release ->
// /etc/os-release and home/guest/escape -> ../../../../../etc/os-release.
func exampleImage() *os.File {
	dir, err := os.MkdirTemp("", "xfs-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir) // the open file stays readable
	p := filepath.Join(dir, "example.img")
	if err := imagetest.Gunzip("testdata/example.img.gz", p); err != nil {
		log.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		log.Fatal(err)
	}
	return f
}

// Open a file system held in any io.ReaderAt (a raw file, or an
// image.Image from format.Open), walk it and read files through
// symbolic links, which resolve inside the guest: the absolute link
// reaches the guest's /etc, and ".." stops at the guest's root.
func Example() {
	img := exampleImage()
	defer img.Close()
	st, err := img.Stat()
	if err != nil {
		log.Fatal(err)
	}
	fsys, err := xfs.Open(img, st.Size(), "example.img")
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
	in := fi.Sys().(*xfs.Inode)
	fmt.Printf("hello.txt: %v, %d bytes, owner %d:%d, %d link\n", fi.Mode(), fi.Size(), in.UID, in.GID, in.Nlink)
	xattrs, _ := fsys.Xattrs("home/guest/hello.txt")
	for _, x := range xattrs {
		fmt.Printf("%s=%q\n", x.Name, x.Value)
	}
	info := fsys.Info()
	fmt.Println(info.Label, info.Version, info.BlockSize, info.AGCount, info.Features)
	// Output:
	// d--------- .
	// d--------- etc
	// ---------- etc/os-release
	// d--------- home
	// d--------- home/guest
	// L--------- home/guest/escape
	// ---------- home/guest/hello.txt
	// L--------- home/guest/release
	// home/guest/hello.txt: "Hello from inside the guest."
	// home/guest/release: "NAME=\"Example Linux\""
	// home/guest/escape: "NAME=\"Example Linux\""
	// release -> /etc/os-release
	// hello.txt: -rw-r--r--, 29 bytes, owner 1000:1000, 1 link
	// user.comment="vvvvv"
	// example 5 4096 2 [crc ftype sparse bigtime finobt reflink inobtcount]
}
