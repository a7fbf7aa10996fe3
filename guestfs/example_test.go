package guestfs_test

import (
	"compress/gzip"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/guestfs"
)

// List the devices of a disk image: here a disk that is one LVM2 physical
// volume (made by the lvm2 tools for package lvm's tests) with two
// logical volumes.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "guestfs-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "disk.img")
	if err := unzip("lvm/testdata/pv.img.gz", p); err != nil {
		log.Fatal(err)
	}
	img, _, err := format.Open(p, format.OpenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()

	disk, err := guestfs.Open(img, p)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range disk.Entries() {
		fmt.Println(e.Name, e.Type, e.Size)
	}
	// Output:
	// /dev/qimgexample/root lv 16384
	// /dev/qimgexample/swap lv 4096
	// /dev/qimgexample vg 2060288
	// /dev/sda pv 2097152
	// /dev/sda device 2097152
}

func unzip(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	z, err := gzip.NewReader(in)
	if err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, z); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
