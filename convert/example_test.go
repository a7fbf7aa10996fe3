package convert_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/qimg/qimg/convert"
	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/format/raw"
)

// Convert a raw disk to compressed qcow2, as qemu-img convert -c -O qcow2
// does, then compare the two images.
func ExampleConvert() {
	dir, err := os.MkdirTemp("", "convert-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "disk.raw")
	if err := raw.Create(src, 8<<20); err != nil {
		log.Fatal(err)
	}
	f, err := os.OpenFile(src, os.O_WRONLY, 0)
	if err != nil {
		log.Fatal(err)
	}
	f.WriteAt([]byte("a file system would be here"), 1<<20)
	f.Close()

	in, inFormat, err := format.Open(src, format.OpenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(dir, "disk.qcow2")
	err = convert.Convert(context.Background(), in, dst, convert.Options{Format: "qcow2", Compress: true})
	if err != nil {
		log.Fatal(err)
	}

	out, outFormat, err := format.Open(dst, format.OpenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer out.Close()
	r, err := convert.Compare(context.Background(), in, out, convert.CompareOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(inFormat, "->", outFormat, "identical:", r.Identical)
	// Output: raw -> qcow2 identical: true
}
