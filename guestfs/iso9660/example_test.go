package iso9660_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"log"
	"time"

	"github.com/qimg/qimg/guestfs/iso9660"
)

// Build a cloud-init NoCloud seed in memory and read it back.
func Example() {
	b := iso9660.NewBuilder()
	files := map[string]string{
		"user-data":      "#cloud-config\nhostname: vm1\n",
		"meta-data":      "instance-id: vm1\n",
		"network-config": "version: 2\n",
	}
	for name, text := range files {
		if err := b.AddFile(name, []byte(text), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	var seed bytes.Buffer
	opts := iso9660.Options{VolumeID: "cidata", Joliet: true, RockRidge: true,
		Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := iso9660.Write(&seed, b, opts); err != nil {
		log.Fatal(err)
	}

	fsys, err := iso9660.Open(bytes.NewReader(seed.Bytes()), int64(seed.Len()), "seed.iso")
	if err != nil {
		log.Fatal(err)
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("volume", fsys.VolumeID())
	for _, e := range entries {
		info, _ := e.Info()
		fmt.Println(info.Mode(), e.Name(), info.Size())
	}
	data, err := fs.ReadFile(fsys, "user-data")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", data)
	// Output:
	// volume cidata
	// -rw-r--r-- meta-data 17
	// -rw-r--r-- network-config 11
	// -rw-r--r-- user-data 28
	// "#cloud-config\nhostname: vm1\n"
}
