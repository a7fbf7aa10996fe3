package partition_test

import (
	"encoding/binary"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/guestfs/partition"
)

// Read the table of a disk image and open a partition as an image of its
// own. The disk here is built byte by byte: an MBR with a bootable Linux
// partition and a swap partition.
func ExampleRead() {
	dir, err := os.MkdirTemp("", "partition-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	disk := make([]byte, 1<<20) // 2048 sectors of 512 bytes
	binary.LittleEndian.PutUint32(disk[440:], 0x1234abcd)
	slot := func(i int, status, typ byte, start, sectors uint32) {
		e := disk[446+16*i:]
		e[0], e[4] = status, typ
		binary.LittleEndian.PutUint32(e[8:], start)
		binary.LittleEndian.PutUint32(e[12:], sectors)
	}
	slot(0, 0x80, 0x83, 64, 1024)
	slot(1, 0, 0x82, 1088, 960)
	disk[510], disk[511] = 0x55, 0xaa
	copy(disk[64*512:], "data of the first partition")
	p := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(p, disk, 0o644); err != nil {
		log.Fatal(err)
	}

	img, _, err := format.Open(p, format.OpenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	tab, err := partition.Read(img, p)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tab.Scheme)
	for _, part := range tab.Partitions {
		fmt.Println(part.Device(), part.Start, part.Size, part.Type, part.UUID, part.Bootable)
	}
	sda1, err := tab.Partitions[0].Open(img)
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 27)
	if _, err := sda1.ReadAt(buf, 0); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s reads %q\n", partition.DeviceName(1), buf)
	// Output:
	// mbr
	// /dev/sda1 32768 524288 83 1234abcd-01 true
	// /dev/sda2 557056 491520 82 1234abcd-02 false
	// /dev/sda1 reads "data of the first partition"
}

// A disk without a partition table is one device, as libguestfs shows it.
func ExampleTable_Devices() {
	dir, err := os.MkdirTemp("", "partition-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "blank.img")
	if err := os.WriteFile(p, make([]byte, 1<<20), 0o644); err != nil {
		log.Fatal(err)
	}
	img, _, err := format.Open(p, format.OpenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	tab, err := partition.Read(img, p)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tab.Scheme, tab.Devices())
	// Output: none [/dev/sda]
}
