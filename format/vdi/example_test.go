package vdi_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/qimg/qimg/internal/imagetest"

	"github.com/qimg/qimg/format/vdi"
	"github.com/qimg/qimg/image"
)

// Reading a VDI image made by qemu-img: Detect recognises it from its
// first bytes, Extent skips the blocks that hold no data, and ReadAt reads
// guest bytes.
//
// qimg does not write VDI, so the image is testdata/disk.vdi.gz, made once
// with qemu-img 7.2 from a 4 MiB raw file holding "hello, vdi!" at 1 MiB:
//
//	qemu-img convert -f raw -O vdi disk.raw disk.vdi && gzip -9n disk.vdi
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "vdi-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "disk.vdi")
	if err := imagetest.Gunzip(filepath.Join("testdata", "disk.vdi.gz"), path); err != nil {
		log.Fatal(err)
	}

	head := make([]byte, 4096)
	f, err := os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	f.ReadAt(head, 0)
	f.Close()
	fmt.Println("VDI:", vdi.Detect(head))

	img, err := vdi.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	var data int64
	for e, err := range image.Extents(img, 0, img.Size()) {
		if err != nil {
			log.Fatal(err)
		}
		if e.Data {
			data += e.Length
		}
	}
	buf := make([]byte, 11)
	if _, err := img.ReadAt(buf, 1<<20); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, %d MiB, %d MiB stored\n", img.Subformat(), img.Size()>>20, data>>20)
	fmt.Printf("%q\n", buf)
	// Output:
	// VDI: true
	// dynamic, 4 MiB, 1 MiB stored
	// "hello, vdi!"
}
