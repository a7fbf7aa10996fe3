package fat_test

import (
	"context"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/qimg/qimg/guestfs/fat"
	"github.com/qimg/qimg/internal/imagetest"
)

// exampleImage unpacks testdata/example.img.gz, a 200 KiB FAT12 volume
// made once with
//
//	mkfs.vfat -F 12 -n EXAMPLE -i 1234abcd example.img
//	mcopy -s -i example.img EFI hello.txt "A long file name.txt" ::/
//
// into a temporary file, and returns its path.
func exampleImage() string {
	dir, err := os.MkdirTemp("", "fat-example")
	if err != nil {
		log.Fatal(err)
	}
	img := filepath.Join(dir, "example.img")
	if err := imagetest.Gunzip("testdata/example.img.gz", img); err != nil {
		log.Fatal(err)
	}
	return img
}

// Open a FAT volume held in any io.ReaderAt (a raw file, an
// image.Image from format.Open, or one partition of it), walk it and
// read a file. Names are found case-insensitively, by long or short
// name, as Windows and Linux do.
func Example() {
	img := exampleImage()
	defer os.RemoveAll(filepath.Dir(img))
	file, err := os.Open(img)
	if err != nil {
		log.Fatal(err)
	}
	defer file.Close()
	st, _ := file.Stat()
	fsys, err := fat.Open(file, st.Size(), "example.img")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(fsys.Type(), fsys.Label())
	fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fmt.Println(d.Type(), p)
		return nil
	})
	data, _ := fs.ReadFile(fsys, "efi/boot/GRUB.CFG")
	fmt.Printf("%q\n", data)
	fi, _ := fsys.Stat("A long file name.txt")
	fmt.Println(fi.Sys().(*fat.Attributes).ShortName)
	// Output:
	// FAT12 EXAMPLE
	// d--------- .
	// ---------- A long file name.txt
	// d--------- EFI
	// d--------- EFI/BOOT
	// ---------- EFI/BOOT/grub.cfg
	// ---------- hello.txt
	// "set timeout=5\n"
	// ALONGF~1.TXT
}

// Edit a copy of a volume: the changes are staged in memory and reach
// the file only in Commit, all of them or (if Commit is never called)
// none.
func ExampleOpenWritable() {
	img := exampleImage()
	defer os.RemoveAll(filepath.Dir(img))
	file, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer file.Close()
	st, _ := file.Stat()
	fsys, err := fat.OpenWritable(file, st.Size(), "example.img")
	if err != nil {
		log.Fatal(err)
	}
	cfg := "set timeout=0\nset default=0\n"
	if err := fsys.WriteFile("EFI/BOOT/grub.cfg", strings.NewReader(cfg), int64(len(cfg)), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := fsys.Mkdir("EFI/qimg", 0o755); err != nil {
		log.Fatal(err)
	}
	if err := fsys.Rename("hello.txt", "EFI/qimg/Hello World.txt"); err != nil {
		log.Fatal(err)
	}
	if err := fsys.Commit(context.Background()); err != nil {
		log.Fatal(err)
	}

	again, err := fat.Open(file, st.Size(), "example.img")
	if err != nil {
		log.Fatal(err)
	}
	entries, _ := again.ReadDir("EFI/qimg")
	for _, e := range entries {
		fmt.Println(e.Name())
	}
	data, _ := fs.ReadFile(again, "EFI/BOOT/grub.cfg")
	fmt.Print(string(data))
	// Output:
	// Hello World.txt
	// set timeout=0
	// set default=0
}
