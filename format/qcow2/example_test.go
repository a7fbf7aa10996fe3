package qcow2_test

import (
	"context"
	"fmt"
	"github.com/qimg/qimg/format"
	"log"
	"os"
	"path/filepath"

	"github.com/qimg/qimg/format/qcow2"
)

// exampleImage makes a 1 MiB image holding "hello, qcow2" at 64 KiB and
// returns its path; the caller removes dir.
func exampleImage(dir string) string {
	path := filepath.Join(dir, "disk.qcow2")
	if err := qcow2.Create(path, qcow2.CreateOptions{Size: 1 << 20}); err != nil {
		log.Fatal(err)
	}
	img, err := qcow2.Open(path, &qcow2.OpenOptions{Writable: true})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := img.WriteAt([]byte("hello, qcow2"), 64<<10); err != nil {
		log.Fatal(err)
	}
	if err := img.Close(); err != nil {
		log.Fatal(err)
	}
	return path
}

// Create makes an empty image, like qemu-img create -f qcow2; an image
// opened with Writable accepts WriteAt; Close writes pending metadata and
// Flush also syncs it to stable storage.
func ExampleCreate() {
	dir, err := os.MkdirTemp("", "qcow2-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	path := filepath.Join(dir, "disk.qcow2")
	if err := qcow2.Create(path, qcow2.CreateOptions{Size: 1 << 20, ClusterSize: 4096}); err != nil {
		log.Fatal(err)
	}
	img, err := qcow2.Open(path, &qcow2.OpenOptions{Writable: true})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := img.WriteAt([]byte("guest data"), 8192); err != nil {
		log.Fatal(err)
	}
	if err := img.Close(); err != nil {
		log.Fatal(err)
	}

	img, err = qcow2.Open(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	h := img.Header()
	buf := make([]byte, 10)
	if _, err := img.ReadAt(buf, 8192); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("size %d, compat %s, cluster size %d\n", img.Size(), h.Compat(), h.ClusterSize())
	fmt.Printf("%q\n", buf)
	// Output:
	// size 1048576, compat 1.1, cluster size 4096
	// "guest data"
}

// Open opens an image read-only (backing files are followed, as QEMU
// does); ReadAt reads guest bytes, with io.EOF past the virtual size.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "qcow2-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := exampleImage(dir)

	img, err := qcow2.Open(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	buf := make([]byte, 12)
	if _, err := img.ReadAt(buf, 64<<10); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", buf)
	n, err := img.ReadAt(buf, img.Size()-4)
	fmt.Println(n, err)
	// Output:
	// "hello, qcow2"
	// 4 EOF
}

// Extent walks the image as qemu-img map does: each call describes the
// longest run from its start that shares one status.
func ExampleImage_Extent() {
	dir, err := os.MkdirTemp("", "qcow2-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := exampleImage(dir)

	img, err := qcow2.Open(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	for off := int64(0); off < img.Size(); {
		e, err := img.Extent(off, img.Size()-off)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("start %7d length %7d data=%v zero=%v allocated=%v depth=%d\n",
			e.Start, e.Length, e.Data, e.Zero, e.Allocated, e.Depth)
		off = e.End()
	}
	// Output:
	// start       0 length   65536 data=false zero=true allocated=false depth=0
	// start   65536 length   65536 data=true zero=false allocated=true depth=0
	// start  131072 length  917504 data=false zero=true allocated=false depth=0
}

// An overlay records the writes made on top of a base image; Commit
// writes them into the base (opened for writing) and empties the overlay,
// like qemu-img commit. Rebase with no new base would instead copy the
// base's data into the overlay and make it standalone.
func ExampleImage_Commit() {
	dir, err := os.MkdirTemp("", "qcow2-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	base := exampleImage(dir) // "hello, qcow2" at 64 KiB
	overlay := filepath.Join(dir, "overlay.qcow2")
	err = qcow2.Create(overlay, qcow2.CreateOptions{BackingFile: "disk.qcow2", BackingFormat: "qcow2",
		OpenBacking: format.BackingOpener(overlay)})
	if err != nil {
		log.Fatal(err)
	}
	top, err := qcow2.Open(overlay, &qcow2.OpenOptions{Writable: true, OpenBacking: format.BackingOpener(overlay)})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := top.WriteAt([]byte("HELLO"), 64<<10); err != nil {
		log.Fatal(err)
	}
	into, err := qcow2.Open(base, &qcow2.OpenOptions{Writable: true})
	if err != nil {
		log.Fatal(err)
	}
	if err := top.Commit(context.Background(), into, false, nil); err != nil {
		log.Fatal(err)
	}
	top.Close()
	into.Close()

	img, err := qcow2.Open(base, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	buf := make([]byte, 12)
	if _, err := img.ReadAt(buf, 64<<10); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("base: %s\n", buf)
	// Output: base: HELLO, qcow2
}
