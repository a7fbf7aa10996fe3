package vmdk_test

import (
	"bytes"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/qimg/qimg/format/vmdk"
	"github.com/qimg/qimg/image"
)

// Write a streamOptimized VMDK in order, then open it and list its data.
func Example() {
	dir, err := os.MkdirTemp("", "vmdk-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "disk.vmdk")
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	w, err := vmdk.CreateStream(f, path, 4<<20, vmdk.StreamOptions{}) // 4 MiB disk
	if err != nil {
		log.Fatal(err)
	}
	if _, err := w.WriteAt(bytes.Repeat([]byte("boot"), 1024), 0); err != nil {
		log.Fatal(err)
	}
	if err := w.WriteZeroes(4096, 2<<20); err != nil { // zeros are not stored
		log.Fatal(err)
	}
	if _, err := w.WriteAt([]byte("data"), 3<<20); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}

	img, err := vmdk.Open(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	fmt.Println(img.Subformat(), img.Size())
	for e, err := range image.Extents(img, 0, img.Size()) {
		if err != nil {
			log.Fatal(err)
		}
		if e.Data {
			fmt.Printf("data at %d KiB, %d KiB, compressed %v\n", e.Start>>10, e.Length>>10, e.Compressed)
		}
	}
	buf := make([]byte, 4)
	img.ReadAt(buf, 3<<20)
	fmt.Printf("%s\n", buf)
	// Output:
	// streamOptimized 4194304
	// data at 0 KiB, 64 KiB, compressed true
	// data at 3072 KiB, 64 KiB, compressed true
	// data
}
