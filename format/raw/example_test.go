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
	img, err := raw.Open(path, true)
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
