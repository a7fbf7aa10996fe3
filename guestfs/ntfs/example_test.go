package ntfs_test

import (
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"

	"github.com/qimg/qimg/guestfs/ntfs"
	"github.com/qimg/qimg/internal/imagetest"
)

// Open an NTFS volume (here testdata/tree.img.gz, made by
// testdata/mkimage.sh with mkntfs and ntfs-3g) and read a file by a path
// in any case, as Windows matches names.
func Example() {
	dir, err := os.MkdirTemp("", "ntfs-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "tree.img")
	if err := imagetest.Gunzip("testdata/tree.img.gz", p); err != nil {
		log.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		log.Fatal(err)
	}
	fsys, err := ntfs.Open(f, fi.Size(), "tree.img")
	if err != nil {
		log.Fatal(err)
	}
	b, err := fs.ReadFile(fsys, "windows/SYSTEM32/Drv42.DLL")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", b)
	entries, err := fsys.ReadDir(".")
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range entries {
		fmt.Println(e.Name(), e.IsDir())
	}
	// Output:
	// "driver 42\n"
	// Windows true
	// big.bin false
	// empty false
	// links true
	// small.txt false
	// sparse.bin false
	// Ünïcödé ☃ true
}
