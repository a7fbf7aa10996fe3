package qcow2_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/image"
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

// Check verifies the refcounts and metadata like qemu-img check. The
// result has the fields of qemu-img check --output=json, WriteHuman prints
// what qemu-img prints, and ExitCode is its exit status (0: clean).
func ExampleImage_Check() {
	dir, err := os.MkdirTemp("", "qcow2-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := exampleImage(dir)

	img, err := qcow2.Open(path, nil) // checking alone needs no write access
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	r, err := img.Check(context.Background(), image.RepairNone)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("exit code", r.ExitCode(), "leaks", r.Leaks, "corruptions", r.Corruptions)
	if err := r.WriteHuman(os.Stdout); err != nil {
		log.Fatal(err)
	}
	// Output:
	// exit code 0 leaks 0 corruptions 0
	// No errors were found on the image.
	// 1/16 = 6.25% allocated, 0.00% fragmented, 0.00% compressed clusters
	// Image end offset: 393216
}

// A leaked cluster is one whose refcount is higher than the references to
// it, as when a writer allocated a cluster and was killed before linking
// it in. Here one is made by hand: the file grows by a cluster and the
// refcount block marks it used. Check reports it (exit code 3: leaks
// only, no harm to data) and RepairLeaks, on an image opened for
// writing with ForCheck, frees it like qemu-img check -r leaks.
func ExampleImage_Check_leakedCluster() {
	dir, err := os.MkdirTemp("", "qcow2-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := exampleImage(dir)

	// Find the first refcount block through the header's refcount table.
	img, err := qcow2.Open(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	h := img.Header()
	img.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		log.Fatal(err)
	}
	entry := make([]byte, 8)
	if _, err := f.ReadAt(entry, int64(h.RefcountTableOffset)); err != nil {
		log.Fatal(err)
	}
	refblock := int64(binary.BigEndian.Uint64(entry))
	// Add one cluster at the end of the file with a 16-bit refcount of 1.
	st, err := f.Stat()
	if err != nil {
		log.Fatal(err)
	}
	leaked := st.Size() / h.ClusterSize()
	if err := f.Truncate((leaked + 1) * h.ClusterSize()); err != nil {
		log.Fatal(err)
	}
	if _, err := f.WriteAt(binary.BigEndian.AppendUint16(nil, 1), refblock+2*leaked); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}

	img, err = qcow2.Open(path, &qcow2.OpenOptions{Writable: true, ForCheck: true})
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	r, err := img.Check(context.Background(), image.RepairNone)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("exit code", r.ExitCode(), "leaks", r.Leaks)
	fmt.Println(r.Messages[0])

	r, err = img.Check(context.Background(), image.RepairLeaks)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("repaired", r.Repaired, "leaks fixed", r.LeaksFixed, "exit code", r.ExitCode())
	// Output:
	// exit code 3 leaks 1
	// Leaked cluster 6 refcount=1 reference=0
	// repaired true leaks fixed 1 exit code 0
}

// Resize changes the virtual size like qemu-img resize: growing adds
// space that reads as zeros, and shrinking, which discards data, must be
// asked for.
func ExampleImage_Resize() {
	dir, err := os.MkdirTemp("", "qcow2-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := exampleImage(dir) // 1 MiB, "hello, qcow2" at 64 KiB

	img, err := qcow2.Open(path, &qcow2.OpenOptions{Writable: true})
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	if err := img.Resize(4<<20, false); err != nil {
		log.Fatal(err)
	}
	fmt.Println("grown to", img.Size()>>20, "MiB")

	err = img.Resize(64<<10, false)
	fmt.Println("shrink without asking:", err != nil)
	if err := img.Resize(64<<10, true); err != nil {
		log.Fatal(err)
	}
	fmt.Println("shrunk to", img.Size()>>10, "KiB")
	if err := img.Resize(1<<20, false); err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 12)
	if _, err := img.ReadAt(buf, 64<<10); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("grown back, reads %q at 64 KiB\n", buf) // the data was discarded
	// Output:
	// grown to 4 MiB
	// shrink without asking: true
	// shrunk to 64 KiB
	// grown back, reads "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" at 64 KiB
}

// Amend changes an existing image's options like qemu-img amend: here a
// narrower refcount width, then a downgrade to version 2 (compat=0.10),
// which qemu-img refuses (and so does Amend, before changing anything)
// while the refcounts are not 16 bits wide.
func ExampleImage_Amend() {
	dir, err := os.MkdirTemp("", "qcow2-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := exampleImage(dir) // 1 MiB, "hello, qcow2" at 64 KiB

	img, err := qcow2.Open(path, &qcow2.OpenOptions{Writable: true})
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	ctx := context.Background()
	if err := img.Amend(ctx, qcow2.AmendOptions{RefcountBits: 4}); err != nil {
		log.Fatal(err)
	}
	h := img.Header()
	fmt.Println("compat", h.Compat(), "refcount bits", h.RefcountBits())
	err = img.Amend(ctx, qcow2.AmendOptions{Compat: "0.10"})
	fmt.Println("downgrade refused:", err != nil)
	if err := img.Amend(ctx, qcow2.AmendOptions{Compat: "0.10", RefcountBits: 16}); err != nil {
		log.Fatal(err)
	}
	h = img.Header()
	fmt.Println("compat", h.Compat(), "refcount bits", h.RefcountBits())
	buf := make([]byte, 12)
	if _, err := img.ReadAt(buf, 64<<10); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("reads %q at 64 KiB\n", buf)
	// Output:
	// compat 1.1 refcount bits 4
	// downgrade refused: true
	// compat 0.10 refcount bits 16
	// reads "hello, qcow2" at 64 KiB
}

// Rebase moves an overlay onto another backing file without changing what
// it reads, like qemu-img rebase -b: where the overlay does not hold the
// data itself and the old and new backing files differ, the current
// content is copied into the overlay first. Here the new base is an
// empty raw file, so the overlay takes in the old base's data.
func ExampleImage_Rebase() {
	dir, err := os.MkdirTemp("", "qcow2-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	exampleImage(dir) // disk.qcow2, "hello, qcow2" at 64 KiB
	overlay := filepath.Join(dir, "overlay.qcow2")
	err = qcow2.Create(overlay, qcow2.CreateOptions{BackingFile: "disk.qcow2", BackingFormat: "qcow2",
		OpenBacking: format.BackingOpener(overlay)})
	if err != nil {
		log.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.raw")
	if err := os.WriteFile(empty, make([]byte, 1<<20), 0o644); err != nil {
		log.Fatal(err)
	}

	// The overlay must be opened with its current chain, to read what
	// it must keep; the new base is opened read-only like any image.
	top, err := qcow2.Open(overlay, &qcow2.OpenOptions{Writable: true, OpenBacking: format.BackingOpener(overlay)})
	if err != nil {
		log.Fatal(err)
	}
	newBase, _, err := format.Open(empty, format.OpenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer newBase.Close()
	// The name is stored as given: relative to the overlay's directory.
	if err := top.Rebase(context.Background(), newBase, "empty.raw", "raw", nil); err != nil {
		log.Fatal(err)
	}
	if err := top.Close(); err != nil {
		log.Fatal(err)
	}

	img, _, err := format.Open(overlay, format.OpenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	name, fmtName := img.(image.BackingNamer).BackingFile()
	buf := make([]byte, 12)
	if _, err := img.ReadAt(buf, 64<<10); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("backing %s (%s), reads %q\n", name, fmtName, buf)
	// Output: backing empty.raw (raw), reads "hello, qcow2"
}

// SetBacking only rewrites the backing file's name, like qemu-img rebase
// -u: the way to fix an overlay after its base was moved or renamed. The
// overlay cannot open with a missing backing file, so it is opened with
// IgnoreBacking.
func ExampleImage_SetBacking() {
	dir, err := os.MkdirTemp("", "qcow2-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	base := exampleImage(dir) // disk.qcow2, "hello, qcow2" at 64 KiB
	overlay := filepath.Join(dir, "overlay.qcow2")
	err = qcow2.Create(overlay, qcow2.CreateOptions{BackingFile: "disk.qcow2", BackingFormat: "qcow2",
		OpenBacking: format.BackingOpener(overlay)})
	if err != nil {
		log.Fatal(err)
	}
	if err := os.Rename(base, filepath.Join(dir, "moved.qcow2")); err != nil {
		log.Fatal(err)
	}

	top, err := qcow2.Open(overlay, &qcow2.OpenOptions{Writable: true, Backing: image.IgnoreBacking})
	if err != nil {
		log.Fatal(err)
	}
	if err := top.SetBacking("moved.qcow2", "qcow2"); err != nil {
		log.Fatal(err)
	}
	if err := top.Close(); err != nil {
		log.Fatal(err)
	}

	img, _, err := format.Open(overlay, format.OpenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	buf := make([]byte, 12)
	if _, err := img.ReadAt(buf, 64<<10); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", buf)
	// Output: "hello, qcow2"
}

// Measure computes the sizes qemu-img measure -O qcow2 prints: for a new
// empty image from its virtual size alone, and for a conversion from the
// data bytes of the source, counted by CountRequired over its extents
// (zero runs cost nothing, data is counted in whole clusters).
func ExampleMeasure() {
	required, full, err := qcow2.Measure(10<<30, qcow2.CreateOptions{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("empty 10 GiB: required", required, "fully allocated", full)

	dir, err := os.MkdirTemp("", "qcow2-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	src, _, err := format.Open(exampleImage(dir), format.OpenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	opts := qcow2.CreateOptions{ClusterSize: 64 << 10} // of the image to be made
	var data int64
	for off := int64(0); off < src.Size(); {
		e, err := src.Extent(off, src.Size()-off)
		if err != nil {
			log.Fatal(err)
		}
		add, next := qcow2.CountRequired(e, opts.ClusterSize)
		data += add
		off = next
	}
	required, full, err = qcow2.Measure(src.Size(), opts, data)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("data", data, "required", required, "fully allocated", full)
	// Output:
	// empty 10 GiB: required 1900544 fully allocated 10739318784
	// data 65536 required 393216 fully allocated 1376256
}

// An internal snapshot keeps the active layer as it was: writes after it
// go to new clusters, and applying it brings the old data back.
func ExampleImage_CreateSnapshot() {
	dir, err := os.MkdirTemp("", "qcow2-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	img, err := qcow2.Open(exampleImage(dir), &qcow2.OpenOptions{Writable: true})
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	ctx := context.Background()
	if err := img.CreateSnapshot(ctx, "golden", time.Now()); err != nil {
		log.Fatal(err)
	}
	if _, err := img.WriteAt([]byte("HELLO"), 64<<10); err != nil {
		log.Fatal(err)
	}
	if err := img.ApplySnapshot(ctx, "golden"); err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 12)
	if _, err := img.ReadAt(buf, 64<<10); err != nil {
		log.Fatal(err)
	}
	snaps, err := img.Snapshots()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(buf), len(snaps), snaps[0].Name)
	// Output: hello, qcow2 1 golden
}

// ExampleImage_EditBitmaps adds two persistent dirty bitmaps, as
// `qemu-img bitmap --add` would, then merges one into the other and stops
// it recording writes, in one call: the changes run in order.
func ExampleImage_EditBitmaps() {
	dir, err := os.MkdirTemp("", "qcow2-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "disk.qcow2")
	if err := qcow2.Create(path, qcow2.CreateOptions{Size: 1 << 30}); err != nil {
		log.Fatal(err)
	}
	img, err := qcow2.Open(path, &qcow2.OpenOptions{Writable: true})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	add := []qcow2.BitmapChange{{Action: qcow2.BitmapAdd}}
	if err := img.EditBitmaps(ctx, "daily", add, nil); err != nil {
		log.Fatal(err)
	}
	full := []qcow2.BitmapChange{
		{Action: qcow2.BitmapAdd, Granularity: 1 << 20},
		{Action: qcow2.BitmapMerge, Source: "daily"},
		{Action: qcow2.BitmapDisable},
	}
	if err := img.EditBitmaps(ctx, "full", full, nil); err != nil {
		log.Fatal(err)
	}
	err = img.EditBitmaps(ctx, "full", add, nil)
	fmt.Println(err.(*qcow2.BitmapError).Reason)
	bitmaps, err := img.Bitmaps()
	if err != nil {
		log.Fatal(err)
	}
	for _, b := range bitmaps {
		fmt.Printf("%s: %d bytes per bit, recording %v\n", b.Name, b.Granularity, b.Auto)
	}
	if err := img.Close(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// Bitmap already exists: full
	// daily: 65536 bytes per bit, recording true
	// full: 1048576 bytes per bit, recording false
}
