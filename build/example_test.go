package build_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/qimg/qimg/build"
	"github.com/qimg/qimg/guestfs/iso9660"
)

// FindLayout tells an installer by where its ISO keeps the kernel and
// initrd (here a stand-in for a Rocky Linux DVD, made in memory).
func ExampleFindLayout() {
	b := iso9660.NewBuilder()
	b.AddFile("images/pxeboot/vmlinuz", []byte("kernel"), 0o644)
	b.AddFile("images/pxeboot/initrd.img", []byte("initrd"), 0o644)
	var buf bytes.Buffer
	if err := iso9660.Write(&buf, b, iso9660.Options{VolumeID: "Rocky-9-4-x86_64-dvd", RockRidge: true, Time: time.Unix(0, 0)}); err != nil {
		log.Fatal(err)
	}
	iso, err := iso9660.Open(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "rocky.iso")
	if err != nil {
		log.Fatal(err)
	}
	l, err := build.FindLayout(iso, "rocky.iso", iso.VolumeID())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(l.Name, l.Kernel, l.Initrd, "/"+l.Answers)
	fmt.Println(l.Args)
	// Output:
	// anaconda images/pxeboot/vmlinuz images/pxeboot/initrd.img /ks.cfg
	// inst.stage2=hd:LABEL=Rocky-9-4-x86_64-dvd inst.ks=file:/ks.cfg
}

// Build installs Debian from its netinst ISO with a preseed file that
// ends with "d-i debian-installer/exit/poweroff boolean true".
func ExampleBuild() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	res, err := build.Build(ctx, build.Options{
		ISO: "debian-12-amd64-netinst.iso", Answers: "preseed.cfg", Output: "debian12.qcow2",
		Size: 10 << 30, Compress: true, Progress: os.Stdout,
	})
	if err != nil {
		if res != nil && res.Install != nil {
			for _, l := range res.Install.Tail {
				fmt.Println("|", l)
			}
		}
		log.Fatal(err)
	}
}
