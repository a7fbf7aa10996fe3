package sysprep_test

import (
	"context"
	"fmt"
	"io/fs"
	"log"
	"os"

	"github.com/qimg/qimg/customize"
	"github.com/qimg/qimg/customize/sysprep"
	"github.com/qimg/qimg/guestfs/inspect"
)

// Prepare a Debian guest for cloning with three operations; each change
// is logged and all are committed at once.
func Example() {
	fsys, err := openImage("testdata/debian.img.gz")
	if err != nil {
		log.Fatal(err)
	}
	ops, err := sysprep.Select("", []string{"machine-id,ssh-hostkeys,netplan"})
	if err != nil {
		log.Fatal(err)
	}
	// What inspect.Inspect finds on the guest.
	debian := inspect.OS{Type: "linux", Distro: "debian", MajorVersion: 12, PackageManagement: "apt"}
	g := &customize.Guest{FS: fsys, Log: os.Stdout}
	if err := sysprep.Run(context.Background(), g, debian, ops); err != nil {
		log.Fatal(err)
	}
	netplan, _ := fs.ReadFile(fsys, "etc/netplan/01-netcfg.yaml")
	fmt.Printf("%s", netplan)
	// Output:
	// Performing "machine-id" ...
	//   Emptying /etc/machine-id
	// Performing "netplan" ...
	//   Editing /etc/netplan/01-netcfg.yaml: ethernets.ens3: removing set-name ens3
	//   Editing /etc/netplan/01-netcfg.yaml: ethernets.ens3: matching name "en*" instead of macaddress 52:54:00:12:34:56
	// Performing "ssh-hostkeys" ...
	//   Removing /etc/ssh/ssh_host_ed25519_key
	//   Removing /etc/ssh/ssh_host_ed25519_key.pub
	//   Warning: this guest has no cloud-init and Debian's sshd does not make host keys at boot; add them back with qimg customize --firstboot-command 'dpkg-reconfigure openssh-server'
	// network:
	//   version: 2
	//   ethernets:
	//     ens3:
	//       match:
	//         name: en*
	//       dhcp4: true
}

// List the operations as virt-sysprep --list-operations does.
func ExampleList() {
	op, _ := sysprep.Lookup("machine-id")
	fmt.Println(op.Name, op.DefaultOn)
	// Output:
	// machine-id true
}
