package convert_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/qimg/qimg/convert"
	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/format/qcow2"
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

// Compare two images of different formats and sizes by guest content, as
// qemu-img compare does: the extra part of the larger image counts only
// if it holds data (unless Strict), and the first differing byte is
// reported.
func ExampleCompare() {
	dir, err := os.MkdirTemp("", "convert-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	a := filepath.Join(dir, "a.raw")
	disk := make([]byte, 2<<20)
	copy(disk[1<<20:], "a file system would be here")
	if err := os.WriteFile(a, disk, 0o644); err != nil {
		log.Fatal(err)
	}
	b := filepath.Join(dir, "b.qcow2")
	if err := qcow2.Create(b, qcow2.CreateOptions{Size: 4 << 20}); err != nil {
		log.Fatal(err)
	}
	img, err := qcow2.Open(b, &qcow2.OpenOptions{Writable: true})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := img.WriteAt([]byte("a file system would be HERE"), 1<<20); err != nil {
		log.Fatal(err)
	}
	if err := img.Close(); err != nil {
		log.Fatal(err)
	}

	imgA, _, err := format.Open(a, format.OpenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer imgA.Close()
	imgB, _, err := format.Open(b, format.OpenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer imgB.Close()
	ctx := context.Background()
	r, err := convert.Compare(ctx, imgA, imgB, convert.CompareOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("identical:", r.Identical, "first difference at", r.Offset-1<<20, "bytes past 1 MiB")
	fmt.Println(r.Reason)

	r, err = convert.Compare(ctx, imgA, imgB, convert.CompareOptions{Strict: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Reason)
	// Output:
	// identical: false first difference at 23 bytes past 1 MiB
	// Content mismatch at offset 1048599!
	// Strict mode: Image size mismatch!
}

// Measure how large a qcow2 image holding a sparse raw disk would be, and
// an empty 10 GiB one: the same numbers as qemu-img measure -O qcow2.
func ExampleMeasure() {
	dir, err := os.MkdirTemp("", "measure-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "disk.raw")
	if err := raw.Create(src, 64<<20); err != nil {
		log.Fatal(err)
	}
	// 1 MiB of data in a 64 MiB disk; the rest is a hole and costs nothing.
	f, err := os.OpenFile(src, os.O_WRONLY, 0)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{1}, 1<<20), 8<<20); err != nil {
		log.Fatal(err)
	}
	f.Close()

	in, _, err := format.Open(src, format.OpenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer in.Close()
	m, err := convert.Measure(in, convert.MeasureOptions{Format: "qcow2"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("required:", m.Required, "fully allocated:", m.FullyAllocated)
	empty, err := convert.MeasureSize(10<<30, convert.MeasureOptions{Format: "qcow2"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("empty 10 GiB:", empty.Required)
	// Output:
	// required: 1376256 fully allocated: 67436544
	// empty 10 GiB: 1900544
}

// qemu-img dd's count bounds the end of the input, counted from its
// start: bs=1M count=3 skip=2 copies the third MiB only.
func ExampleDDOptions_Range() {
	o := convert.DDOptions{BlockSize: 1 << 20, Count: 3, Skip: 2}
	r := o.Range(10 << 20)
	fmt.Println(r.Start>>20, r.End>>20, r.SkippedPast)
	o.Skip = 20
	fmt.Println(o.Range(10 << 20).SkippedPast)
	// Output:
	// 2 3 false
	// true
}
