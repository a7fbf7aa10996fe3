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

// A copy between two images whose bytes are plain file ranges lets the
// kernel move the data (copy_file_range); the bytes read are still
// needed, to write them where the kernel cannot copy.
func ExampleFileRangeWriter() {
	dir, err := os.MkdirTemp("", "image-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	from, to := filepath.Join(dir, "from.raw"), filepath.Join(dir, "to.raw")
	if err := os.WriteFile(from, []byte("guest data"), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := raw.Create(to, 512); err != nil {
		log.Fatal(err)
	}
	src, err := raw.Open(from, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	dst, err := raw.Open(to, &raw.OpenOptions{Writable: true})
	if err != nil {
		log.Fatal(err)
	}
	defer dst.Close()

	buf := make([]byte, 10)
	if _, err := src.ReadAt(buf, 0); err != nil {
		log.Fatal(err)
	}
	var w image.FileRangeWriter = dst
	if f := image.HostFiler(src).HostFile(); f != nil {
		_, err = w.WriteAtFrom(buf, 100, f, 0) // raw: guest offset = file offset
	} else {
		_, err = dst.WriteAt(buf, 100)
	}
	if err != nil {
		log.Fatal(err)
	}
	got := make([]byte, 10)
	dst.ReadAt(got, 100)
	fmt.Printf("%s\n", got)
	// Output: guest data
}
