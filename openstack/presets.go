package openstack

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/qimg/qimg/guestfs"
	"github.com/qimg/qimg/guestfs/inspect"
	"github.com/qimg/qimg/guestfs/partition"
	"github.com/qimg/qimg/image"
)

// GPT partition types that tell how a disk boots.
const (
	gptESP      = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" // EFI system partition
	gptBIOSBoot = "21686148-6449-6E6F-744E-656564454649" // GRUB's BIOS boot partition
)

// glanceDistros maps libguestfs's distribution names to the os_distro
// values Glance documents where they differ.
var glanceDistros = map[string]string{
	"archlinux":   "arch",
	"alpinelinux": "alpine",
	"sles":        "sles",
	"msdos":       "msdos",
}

// Presets are the Glance properties guest inspection suggests for an
// image: os_type, os_distro, os_version, hw_disk_bus, hw_vif_model,
// hw_qemu_guest_agent (when the agent is installed) and hw_firmware_type
// (uefi for a GPT disk with an EFI system partition and no BIOS boot
// partition). An image with no operating system qimg recognises gets
// none; inspection errors are not upload errors, so they give none too.
func Presets(img image.Image, name string) map[string]string {
	disk, err := guestfs.Open(img, name)
	if err != nil {
		return nil
	}
	props := map[string]string{}
	if uefiOnly(disk) {
		props["hw_firmware_type"] = "uefi"
	}
	oses, _ := inspect.Inspect(disk)
	if len(oses) == 0 {
		return props
	}
	osi := oses[0]
	props["os_type"] = osi.Type
	if osi.Distro != "" && osi.Distro != "unknown" {
		props["os_distro"] = firstNonEmpty(glanceDistros[osi.Distro], osi.Distro)
	}
	if v := osVersion(osi); v != "" {
		props["os_version"] = v
	}
	if osi.Arch != "" {
		props["architecture"] = osi.Arch
	}
	switch osi.Type {
	case "linux":
		props["hw_disk_bus"] = "virtio"
		props["hw_vif_model"] = "virtio"
	case "windows":
		// Without viostor/vioscsi Windows stops with
		// INACCESSIBLE_BOOT_DEVICE on a virtio disk; SATA (AHCI) and
		// e1000 have in-box drivers.
		if osi.VirtioStorage != nil && *osi.VirtioStorage {
			props["hw_disk_bus"] = "virtio"
		} else {
			props["hw_disk_bus"] = "sata"
		}
		props["hw_vif_model"] = "e1000"
	}
	if hasGuestAgent(disk, osi) {
		props["hw_qemu_guest_agent"] = "yes"
	}
	return props
}

// osVersion is "12" (Debian names releases by their major version; point
// releases are updates), "22.04" (Ubuntu's minor has two digits) or "9.3".
func osVersion(o inspect.OS) string {
	switch {
	case o.MajorVersion == 0 && o.MinorVersion == 0:
		return ""
	case o.Distro == "ubuntu":
		return fmt.Sprintf("%d.%02d", o.MajorVersion, o.MinorVersion)
	case o.Distro == "debian":
		return fmt.Sprint(o.MajorVersion)
	}
	return fmt.Sprintf("%d.%d", o.MajorVersion, o.MinorVersion)
}

// legacyBIOSBootable is the GPT attribute bit that BIOS boot code in the
// protective MBR (SYSLINUX's gptmbr.bin) looks for.
const legacyBIOSBootable = 1 << 2

// uefiOnly reports a GPT disk with an EFI system partition and no way for
// a BIOS to boot it (no BIOS boot partition for GRUB, no partition marked
// legacy BIOS bootable): it boots only with UEFI firmware. Nova gives a
// hw_firmware_type=uefi image OVMF, so a wrong guess here makes a
// BIOS-only disk fail to boot.
func uefiOnly(d *guestfs.Disk) bool {
	if d.Table == nil || d.Table.Scheme != partition.SchemeGPT {
		return false
	}
	esp, bios := false, false
	for _, p := range d.Table.Partitions {
		switch strings.ToUpper(p.Type) {
		case gptESP:
			esp = true
		case gptBIOSBoot:
			bios = true
		}
		if p.Attributes&legacyBIOSBootable != 0 {
			bios = true
		}
	}
	return esp && !bios
}

// guestAgents are where distributions install the QEMU guest agent.
var guestAgents = []string{"usr/bin/qemu-ga", "usr/sbin/qemu-ga", "usr/local/bin/qemu-ga",
	"Program Files/Qemu-ga/qemu-ga.exe"}

// hasGuestAgent looks for the QEMU guest agent's binary in the root
// filesystem.
func hasGuestAgent(d *guestfs.Disk, o inspect.OS) bool {
	root, err := d.Mount(o.Root)
	if err != nil {
		return false
	}
	if c, ok := root.(interface{ Close() error }); ok {
		defer c.Close()
	}
	for _, p := range guestAgents {
		if _, err := fs.Stat(root, p); err == nil {
			return true
		}
	}
	return false
}
