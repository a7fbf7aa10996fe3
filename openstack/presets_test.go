package openstack

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/devcloudtest"
	"github.com/qimg/qimg/internal/qemutest"
)

// Boot layouts of guestDisk.
const (
	bootUEFI     = "uefi"       // an EFI system partition
	bootBIOS     = "bios"       // a BIOS boot partition (GRUB's)
	bootSyslinux = "esp-legacy" // an ESP marked legacy BIOS bootable (SYSLINUX's gptmbr.bin)
)

// guestDisk builds a GPT disk with sgdisk: the first partition as boot
// says, and a Debian 12 root (mkfs.ext4 -d) with /bin/sh from the host
// and, if agent, the QEMU guest agent's binary.
func guestDisk(t *testing.T, boot string, agent bool) string {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	files := map[string]string{
		"etc/os-release":     "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
		"etc/debian_version": "12.8\n",
		"etc/hostname":       "guest\n",
	}
	if agent {
		files["usr/bin/qemu-ga"] = "agent"
	}
	for p, c := range files {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	qemutest.Run(t, "cp", "/bin/sh", filepath.Join(root, "bin/sh"))
	fsImg := filepath.Join(dir, "root.ext4")
	qemutest.Run(t, "mkfs.ext4", "-q", "-F", "-d", root, fsImg, "24M")
	disk := filepath.Join(dir, "disk.raw")
	qemutest.Run(t, "truncate", "-s", "40M", disk)
	first := []string{"-n", "1:2048:+8M", "-t", "1:ef00"}
	switch boot {
	case bootBIOS:
		first = []string{"-n", "1:2048:+1M", "-t", "1:ef02"}
	case bootSyslinux:
		first = append(first, "-A", "1:set:2")
	}
	args := append(append([]string{}, first...), "-n", "2:18432:+24M", "-t", "2:8300", disk)
	qemutest.Run(t, "sgdisk", args...)
	if boot != bootBIOS {
		esp := filepath.Join(dir, "esp.vfat")
		qemutest.Run(t, "mkfs.vfat", "-C", esp, "8192")
		qemutest.Run(t, "dd", "if="+esp, "of="+disk, "bs=512", "seek=2048", "conv=notrunc", "status=none")
	}
	qemutest.Run(t, "dd", "if="+fsImg, "of="+disk, "bs=512", "seek="+strconv.Itoa(18432), "conv=notrunc", "status=none")
	return disk
}

// TestPresets: properties from guest inspection of disks built by the
// real tools.
func TestPresets(t *testing.T) {
	for _, tc := range []struct {
		name, boot string
		agent      bool
		want       map[string]string
	}{
		{"uefi with agent", bootUEFI, true, map[string]string{"hw_firmware_type": "uefi", "hw_qemu_guest_agent": "yes"}},
		{"bios without agent", bootBIOS, false, map[string]string{}},
		// scripts/boot-image.sh's disk: SYSLINUX boots it under BIOS
		{"esp marked legacy BIOS bootable", bootSyslinux, false, map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := guestDisk(t, tc.boot, tc.agent)
			img, _, err := format.Open(path, format.OpenOptions{Backing: image.RefuseBacking})
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			want := map[string]string{"os_type": "linux", "os_distro": "debian", "os_version": "12",
				"architecture": "x86_64", "hw_disk_bus": "virtio", "hw_vif_model": "virtio"}
			for k, v := range tc.want {
				want[k] = v
			}
			if got := Presets(img, path); !reflect.DeepEqual(got, want) {
				t.Errorf("presets\n%v\nwant\n%v", got, want)
			}
		})
	}
	// A disk with no operating system gets none.
	raw := qemutest.RandomFile(t, t.TempDir(), 1<<20)
	img, _, err := format.Open(raw, format.OpenOptions{Backing: image.RefuseBacking})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if got := Presets(img, raw); len(got) != 0 {
		t.Errorf("presets of random data: %v", got)
	}
}

// TestUploadPresets: an upload of a guest disk carries the presets, and
// a given property wins over a preset; the CLI shows them.
func TestUploadPresets(t *testing.T) {
	path := guestDisk(t, bootUEFI, true)
	c := connect(t, Config{})
	res, err := c.Upload(context.Background(), path, UploadOptions{Name: uniqueName(t), Convert: "qcow2",
		Properties: map[string]string{"hw_disk_bus": "scsi"}})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, c, res.Image.ID())
	got := devcloudtest.ShowImage(t, demoEnv, res.Image.ID())
	props, _ := got["properties"].(map[string]any)
	for k, want := range map[string]string{"os_distro": "debian", "os_version": "12", "hw_firmware_type": "uefi",
		"hw_qemu_guest_agent": "yes", "hw_disk_bus": "scsi", "os_type": "linux"} {
		if props[k] != want {
			t.Errorf("property %s = %v, want %s", k, props[k], want)
		}
	}
	if got["disk_format"] != "qcow2" || got["min_disk"] != float64(1) {
		t.Errorf("disk_format %v min_disk %v, want qcow2 1", got["disk_format"], got["min_disk"])
	}
}
