package guestfs_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/qimg/qimg/internal/imagetest"

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
	if err := imagetest.Gunzip("lvm/testdata/pv.img.gz", p); err != nil {
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
