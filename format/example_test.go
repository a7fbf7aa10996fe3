package format_test

import (
	"bytes"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/image"
)

// Open a qcow2 overlay whose backing file is raw: Open probes both formats
// and reads through the chain, as qemu-img does.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "format-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	base := filepath.Join(dir, "base.raw")
	if err := os.WriteFile(base, bytes.Repeat([]byte("base"), 256<<10), 0o644); err != nil {
		log.Fatal(err)
	}
	overlay := filepath.Join(dir, "overlay.qcow2")
	err = qcow2.Create(overlay, qcow2.CreateOptions{BackingFile: "base.raw", BackingFormat: "raw",
		OpenBacking: format.BackingOpener(overlay)})
	if err != nil {
		log.Fatal(err)
	}

	img, name, err := format.Open(overlay, format.OpenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	buf := make([]byte, 8)
	if _, err := img.ReadAt(buf, 0); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, %d bytes, reads %q\n", name, img.Size(), buf)
	// Output: qcow2, 1048576 bytes, reads "basebase"
}

// Probe tells a format from the file's first bytes.
func ExampleProbe() {
	dir, err := os.MkdirTemp("", "format-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "disk.qcow2")
	if err := qcow2.Create(p, qcow2.CreateOptions{Size: 1 << 20}); err != nil {
		log.Fatal(err)
	}
	name, err := format.Probe(p)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(name)
	// Output: qcow2
}

// OpenChain opens each layer of a chain on its own, top first.
func ExampleOpenChain() {
	dir, err := os.MkdirTemp("", "format-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	base := filepath.Join(dir, "base.qcow2")
	if err := qcow2.Create(base, qcow2.CreateOptions{Size: 1 << 20}); err != nil {
		log.Fatal(err)
	}
	top := filepath.Join(dir, "top.qcow2")
	err = qcow2.Create(top, qcow2.CreateOptions{BackingFile: "base.qcow2", BackingFormat: "qcow2",
		OpenBacking: format.BackingOpener(top)})
	if err != nil {
		log.Fatal(err)
	}

	chain, err := format.OpenChain(top, format.OpenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer chain.Close()
	for depth, l := range chain {
		fmt.Println(depth, filepath.Base(l.Name), l.Format)
	}
	// Output:
	// 0 top.qcow2 qcow2
	// 1 base.qcow2 qcow2
}

// Create writes a new image of any writable format; features such as
// resizing are found through the interfaces of package image.
func ExampleCreate() {
	dir, err := os.MkdirTemp("", "format-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "new.qcow2")
	f, err := os.Create(p)
	if err != nil {
		log.Fatal(err)
	}
	img, err := format.Create(f, p, format.QCOW2, 1<<20, format.CreateOptions{})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := img.WriteAt([]byte("hello"), 0); err != nil {
		log.Fatal(err)
	}
	if r, ok := img.(image.Resizer); ok {
		if err := r.Resize(2<<20, false); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(img.Size())
	if err := img.Close(); err != nil {
		log.Fatal(err)
	}
	// Output: 2097152
}

// Resizing any writable format goes through image.Resizer, found by type
// assertion on the image Open returns, as qimg resize does; here a raw
// file that Open probes.
func ExampleOpen_resize() {
	dir, err := os.MkdirTemp("", "format-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(p, make([]byte, 1<<20), 0o644); err != nil {
		log.Fatal(err)
	}

	img, name, err := format.Open(p, format.OpenOptions{Writable: true})
	if err != nil {
		log.Fatal(err)
	}
	r, ok := img.(image.Resizer)
	if !ok {
		log.Fatalf("%s images cannot be resized", name)
	}
	if err := r.Resize(3<<20, false); err != nil {
		log.Fatal(err)
	}
	if err := img.Close(); err != nil {
		log.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(name, st.Size())
	// Output: raw 3145728
}
