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

// A Windows install through libvirtd: qimg writes autounattend.xml onto a
// small ISO medium, attaches it and the virtio-win drivers beside the
// installer's ISO, and says which Glance properties the image needs.
func ExampleBuild_windows() {
	res, err := build.Build(context.Background(), build.Options{
		ISO: "Win10_22H2_English_x64.iso", Answers: "autounattend.xml", Output: "windows10.qcow2",
		OS: "windows", Drivers: "virtio-win.iso", Firmware: build.UEFI, Size: 40 << 30, Memory: 4096,
		Backend: build.LibvirtBackend{}, Timeout: 3 * time.Hour, Progress: os.Stdout,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Properties) // map[hw_disk_bus:virtio hw_firmware_type:uefi hw_vif_model:virtio os_type:windows]
}
