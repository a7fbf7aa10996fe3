package inspect_test

import (
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/guestfs"
	"github.com/qimg/qimg/guestfs/inspect"
	"github.com/qimg/qimg/internal/imagetest"
)

// Inspect a guest image: testdata/alpine.img.gz is an ext4 root made once
// with
//
//	mkfs.ext4 -q -F -b 1024 -N 32 -O ^has_journal,^resize_inode \
//		-U 5d2a6f1c-2f6b-4c1e-9b2e-0c1d2e3f4a5b -d SRC alpine.img 512K
//
// from a tree holding an Alpine etc/os-release, etc/hostname and
// etc/fstab, bin/busybox (a copy of an x86_64 /bin/true) and bin/sh, a
// link to /bin/busybox.
func Example() {
	dir, err := os.MkdirTemp("", "inspect-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "alpine.img")
	if err := imagetest.Gunzip("testdata/alpine.img.gz", path); err != nil {
		log.Fatal(err)
	}
	img, _, err := format.Open(path, format.OpenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	disk, err := guestfs.Open(img, path)
	if err != nil {
		log.Fatal(err)
	}
	oses, err := inspect.Inspect(disk)
	if err != nil {
		log.Fatal(err)
	}
	b, err := json.MarshalIndent(oses, "", "  ")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(b))
	// Output:
	// [
	//   {
	//     "root": "/dev/sda",
	//     "type": "linux",
	//     "distro": "alpinelinux",
	//     "product_name": "Alpine Linux v3.19",
	//     "major_version": 3,
	//     "minor_version": 19,
	//     "arch": "x86_64",
	//     "hostname": "example",
	//     "package_format": "apk",
	//     "package_management": "apk",
	//     "mountpoints": [
	//       {
	//         "mountpoint": "/",
	//         "device": "/dev/sda"
	//       }
	//     ]
	//   }
	// ]
}
