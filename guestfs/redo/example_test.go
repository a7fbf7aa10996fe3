package redo_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/qimg/qimg/format/raw"
	"github.com/qimg/qimg/guestfs/redo"
)

// Edits reach the device only at Commit, all at once.
func ExampleLog() {
	dir, _ := os.MkdirTemp("", "redo-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "disk.img")
	os.WriteFile(path, make([]byte, 1<<20), 0o644)
	dev, _ := raw.Open(path, &raw.OpenOptions{Writable: true})
	defer dev.Close()

	log, _ := redo.New(dev, path+".qimg-redo", redo.Target{Device: "/dev/sda", Size: dev.Size(), ImageSize: dev.Size(), ID: "example"})
	log.WriteAt([]byte("hello"), 4096)

	b := make([]byte, 5)
	dev.ReadAt(b, 4096)
	fmt.Printf("device before Commit: %q\n", b)
	log.ReadAt(b, 4096)
	fmt.Printf("through the log: %q\n", b)

	if err := log.Commit(context.Background()); err != nil {
		fmt.Println(err)
	}
	dev.ReadAt(b, 4096)
	_, err := os.Stat(path + ".qimg-redo")
	fmt.Printf("device after Commit: %q, log removed: %v\n", b, os.IsNotExist(err))
	// Output:
	// device before Commit: "\x00\x00\x00\x00\x00"
	// through the log: "hello"
	// device after Commit: "hello", log removed: true
}
