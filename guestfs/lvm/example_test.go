package lvm_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/qimg/qimg/internal/imagetest"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/guestfs/lvm"
)

// Scan a disk image that is an LVM2 physical volume and read a logical
// volume, here one grown by lvextend into two segments. The image,
// testdata/pv.img.gz, was made by the lvm2 tools (see TestGenerate).
func ExampleScan() {
	dir, err := os.MkdirTemp("", "lvm-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "pv.img")
	if err := imagetest.Gunzip("testdata/pv.img.gz", p); err != nil {
		log.Fatal(err)
	}
	disk, _, err := format.Open(p, format.OpenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer disk.Close()

	vgs, err := lvm.Scan(lvm.Device{Name: p, Image: disk})
	if err != nil {
		log.Fatal(err)
	}
	vg := vgs[0]
	fmt.Printf("VG %s, extents of %d bytes\n", vg.Name, vg.ExtentSize)
	for _, lv := range vg.LVs {
		fmt.Printf("%s: %d bytes in %d segment(s)\n", lvm.DeviceName(vg.Name, lv.Name), lv.Size, len(lv.Segments))
	}
	root, err := vg.Open(vg.LV("root"))
	if err != nil {
		log.Fatal(err)
	}
	defer root.Close()
	buf := make([]byte, 15)
	for _, off := range []int64{0, 8192} { // 8192: where the second segment starts
		if _, err := root.ReadAt(buf, off); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("at %d: %q\n", off, buf)
	}
	// Output:
	// VG qimgexample, extents of 4096 bytes
	// /dev/qimgexample/root: 16384 bytes in 2 segment(s)
	// /dev/qimgexample/swap: 4096 bytes in 1 segment(s)
	// at 0: "root sector 0\n\x00"
	// at 8192: "root sector 16\n"
}

// ParseVG reads metadata text alone, as LVM keeps it in /etc/lvm/backup.
func ExampleParseVG() {
	text := []byte(`vg0 {
	id = "ZVo8Kq-Ap5B-kpRD-xvqB-2HFL-Wb3S-2Q3dKc"
	seqno = 3
	extent_size = 8192	# sectors: 4 MiB
	physical_volumes {
		pv0 {
			id = "bKpV5x-0z3A-5Qke-b1Xw-UjK2-4Q0n-vO6Hjs"
			pe_start = 2048
			pe_count = 255
		}
	}
	logical_volumes {
		pool {
			id = "1cRmqf-aNbT-3ZMa-QkJx-sUUx-xlUP-MkRcPa"
			status = ["READ", "WRITE", "VISIBLE"]
			segment1 {
				start_extent = 0
				extent_count = 10
				type = "thin-pool"
			}
		}
	}
}
contents = "Text Format Volume Group"
version = 1
`)
	vg, err := lvm.ParseVG(text, "vg0.backup")
	if err != nil {
		log.Fatal(err)
	}
	pool := vg.LV("pool")
	fmt.Println(pool.Name, pool.Size, pool.Segments[0].Type)
	_, err = vg.Open(pool)
	fmt.Println(err)
	// Output:
	// pool 41943040 thin-pool
	// vg0.backup: logical volume vg0/pool: segment 1 is of type thin-pool; qimg reads only linear volumes: unsupported image feature
}
