package vhd_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/qimg/qimg/format/vhd"
)

// A dynamic VHD written sequentially, then read back: the virtual size is
// rounded up to a CHS geometry as qemu-img rounds it, and only the block
// that received data is allocated.
func ExampleCreate() {
	dir, err := os.MkdirTemp("", "vhd-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "disk.vhd")

	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	w, err := vhd.Create(f, path, 4<<20, vhd.CreateOptions{Subformat: "dynamic"})
	if err != nil {
		log.Fatal(err)
	}
	if err := w.WriteZeroes(0, 3<<20); err != nil { // no block allocated
		log.Fatal(err)
	}
	if _, err := w.WriteAt([]byte("hello, vhd"), 3<<20); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil { // writes the BAT and the footers
		log.Fatal(err)
	}

	img, err := vhd.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	buf := make([]byte, 10)
	if _, err := img.ReadAt(buf, 3<<20); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, %d bytes: %q\n", img.Subformat(), img.Size(), buf)
	for off := int64(0); off < img.Size(); {
		e, err := img.Extent(off, img.Size()-off)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%d MiB data=%v\n", e.Length>>20, e.Data)
		off = e.End()
	}
	// Output:
	// dynamic, 4212736 bytes: "hello, vhd"
	// 2 MiB data=false
	// 2 MiB data=true
	// 0 MiB data=false
}
