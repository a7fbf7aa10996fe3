package vhdx_test

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/qimg/qimg/format/vhdx"
	"github.com/qimg/qimg/image"
)

// Reading a VHDX image made by qemu-img: Detect recognises it from its
// first bytes, Extent skips the blocks that hold no data, and ReadAt reads
// guest bytes.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "vhdx-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	raw := filepath.Join(dir, "disk.raw")
	disk := make([]byte, 4<<20)
	copy(disk[1<<20:], "hello, vhdx")
	if err := os.WriteFile(raw, disk, 0o644); err != nil {
		log.Fatal(err)
	}
	path := filepath.Join(dir, "disk.vhdx")
	if out, err := exec.Command("qemu-img", "convert", "-O", "vhdx", "-o", "block_size=1M", raw, path).CombinedOutput(); err != nil {
		log.Fatalf("qemu-img: %v\n%s", err, out)
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
