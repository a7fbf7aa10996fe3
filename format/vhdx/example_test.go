package vhdx_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/qimg/qimg/internal/imagetest"

	"github.com/qimg/qimg/format/vhdx"
	"github.com/qimg/qimg/image"
)

// Reading a VHDX image made by qemu-img: Detect recognises it from its
// first bytes, Extent skips the blocks that hold no data, and ReadAt reads
// guest bytes.
//
// qimg does not write VHDX, so the image is testdata/disk.vhdx.gz, made
// once with qemu-img 7.2 from a 4 MiB raw file holding "hello, vhdx" at
// 1 MiB (gzip takes the 9 MiB file, mostly zeros, to 10 KiB):
//
//	qemu-img convert -f raw -O vhdx -o block_size=1M disk.raw disk.vhdx
//	gzip -9n disk.vhdx
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "vhdx-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "disk.vhdx")
	if err := imagetest.Gunzip(filepath.Join("testdata", "disk.vhdx.gz"), path); err != nil {
		log.Fatal(err)
	}

	head := make([]byte, 4096)
	f, err := os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	f.ReadAt(head, 0)
	f.Close()
	fmt.Println("VHDX:", vhdx.Detect(head))

	img, err := vhdx.Open(path)
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
	fmt.Printf("%s, %d MiB, %d MiB stored, blocks of %d MiB\n", img.Subformat(), img.Size()>>20, data>>20, img.Params().BlockSize>>20)
	fmt.Printf("%q\n", buf)
	// Output:
	// VHDX: true
	// dynamic, 4 MiB, 1 MiB stored, blocks of 1 MiB
	// "hello, vhdx"
}
