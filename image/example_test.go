package image_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/qimg/qimg/format/raw"
	"github.com/qimg/qimg/image"
)

// Walking an image's extents visits data and holes without reading the
// holes: the loop every copy, checksum or upload in qimg is built on.
func ExampleImage_extents() {
	dir, err := os.MkdirTemp("", "image-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "disk.raw")
	if err := raw.Create(path, 4<<20); err != nil { // 4 MiB of holes
		log.Fatal(err)
	}
	img, err := raw.Open(path, &raw.OpenOptions{Writable: true})
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	if _, err := img.WriteAt(make([]byte, 1<<20), 1<<20); err != nil { // 1 MiB of written zeros
		log.Fatal(err)
	}

	var data, zero int64
	for e, err := range image.Extents(img, 0, img.Size()) {
		if err != nil {
			log.Fatal(err)
		}
		if e.Data {
			data += e.Length
		} else {
			zero += e.Length
		}
	}
	fmt.Printf("data %d MiB, holes %d MiB\n", data>>20, zero>>20)
	// Output: data 1 MiB, holes 3 MiB
}
