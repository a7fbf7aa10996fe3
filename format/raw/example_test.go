package raw_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/qimg/qimg/format/raw"
)

// A raw image is its file: Extent tells data from holes with
// SEEK_DATA/SEEK_HOLE.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "raw-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "disk.img")
	if err := raw.Create(path, 1<<20); err != nil {
		log.Fatal(err)
	}
	img, err := raw.Open(path, &raw.OpenOptions{Writable: true})
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	if _, err := img.WriteAt([]byte("boot sector"), 0); err != nil {
		log.Fatal(err)
	}
	e, err := img.Extent(0, img.Size())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("first extent holds data:", e.Data)
	// Output: first extent holds data: true
}

// Resize sets a raw image's size by truncating or extending its file, so
// growing adds a hole that reads as zeros; shrinking discards the end of
// the disk and must be asked for, as with qemu-img resize --shrink.
func ExampleImage_Resize() {
	dir, err := os.MkdirTemp("", "raw-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "disk.img")
	if err := raw.Create(path, 1<<20); err != nil {
		log.Fatal(err)
	}
	img, err := raw.Open(path, &raw.OpenOptions{Writable: true})
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()

	if err := img.Resize(4<<20, false); err != nil {
		log.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("grown: image", img.Size()>>20, "MiB, file", st.Size()>>20, "MiB")
	fmt.Println("shrink without asking:", img.Resize(2<<20, false) != nil)
	if err := img.Resize(2<<20, true); err != nil {
		log.Fatal(err)
	}
	fmt.Println("shrunk:", img.Size()>>20, "MiB")
	// Output:
	// grown: image 4 MiB, file 4 MiB
	// shrink without asking: true
	// shrunk: 2 MiB
}
