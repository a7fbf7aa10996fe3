package inspect

import (
	"testing"

	"github.com/qimg/qimg/guestfs"
	"github.com/qimg/qimg/guestfs/detect"
	"github.com/qimg/qimg/guestfs/partition"
)

// FuzzConfigFiles feeds arbitrary text to the parsers of guest
// configuration files (fstab, os-release and the other KEY=value files,
// release lines): none may panic, and mount points stay absolute paths.
func FuzzConfigFiles(f *testing.F) {
	f.Add("UUID=abc / ext4 defaults 0 1\n/dev/mapper/vg--x-lv--y /srv xfs\nPARTLABEL=\"EFI\\040x\" /boot/efi vfat\n/dev/xvda3 /home ext4\n", "ID=\"debian\"\nPRETTY_NAME='x'\nVERSION_ID=\"\n")
	f.Add("LABEL=\" /\n/dev/disk/by-label/a\\x2fb /a\\0 b c\n", "ID=\"\nA='\n")
	d := &guestfs.Disk{Devices: []guestfs.Device{
		{Name: "/dev/sda1", Content: detect.Content{Type: "ext4", UUID: "abc", Label: "root"}, Partition: &partition.Partition{Number: 1, UUID: "P1", Name: "EFI x"}},
		{Name: "/dev/vg-x/lv-y", Content: detect.Content{Type: "xfs"}},
	}}
	f.Fuzz(func(t *testing.T, fstab, release string) {
		for _, m := range fstabMountpoints(d, "/dev/sda1", fstab) {
			if len(m.Path) == 0 || m.Path[0] != '/' || m.Device == "" {
				t.Fatalf("mount point %+v", m)
			}
		}
		var os OS
		parseOSRelease(release, &os)
		parseLSB(release, &os)
		suseRelease(release, &os)
		versionFrom(release, &os)
		keyValues(release)
	})
}
