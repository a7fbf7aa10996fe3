package inspect_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/guestfs"
	"github.com/qimg/qimg/guestfs/inspect"
	"github.com/qimg/qimg/internal/hivetest"
	"github.com/qimg/qimg/internal/imagetest"
)

// hostArch is the host's architecture by libguestfs's name: the test
// guests' binaries are copies of the host's /bin/true.
var hostArch = map[string]string{"amd64": "x86_64", "arm64": "aarch64", "386": "i386"}[runtime.GOARCH]

func inspectFile(t *testing.T, path string) []inspect.OS {
	t.Helper()
	img, _, err := format.Open(path, format.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	d, err := guestfs.Open(img, path)
	if err != nil {
		t.Fatal(err)
	}
	oses, err := inspect.Inspect(d)
	if err != nil {
		t.Fatal(err)
	}
	return oses
}

func check(t *testing.T, path string, want inspect.OS) {
	t.Helper()
	got := inspectFile(t, path)
	if len(got) != 1 {
		t.Fatalf("%d operating systems: %+v", len(got), got)
	}
	if !reflect.DeepEqual(got[0], want) {
		t.Errorf("got  %+v\nwant %+v", got[0], want)
	}
}

const (
	rootUUID = "0b6c7f7e-1d2a-4a7e-9c55-3a1f6e2d9b01"
	bootUUID = "5e3b2a10-7c4d-4f1e-8a2b-6d9c0e1f2a3b"
)

// Debian 12 on GPT: an EFI partition mounted by PARTUUID, the root by
// UUID; /bin is a link to usr/bin and sh a link to dash.
func TestDebian(t *testing.T) {
	t.Parallel()
	d := newDisk(t, "80M", "label: gpt\n,16M,U\n,40M,L\n")
	efi := filepath.Join(t.TempDir(), "efi.img")
	run(t, "mkfs.vfat", "-C", efi, "16384")
	d.place(1, efi)
	fstab := fmt.Sprintf(`# /etc/fstab: static file system information.
UUID=%s / ext4 errors=remount-ro 0 1
PARTUUID=%s /boot/efi vfat umask=0077 0 1
tmpfs /tmp tmpfs defaults 0 0
proc /proc proc defaults 0 0
UUID=11111111-2222-3333-4444-555555555555 /gone ext4 defaults 0 2
/dev/cdrom /media/cdrom0 udf,iso9660 user,noauto 0 0
`, rootUUID, strings.ToLower(d.partUUID(1)))
	root := tree{
		files: map[string]string{
			"etc/os-release": `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
`,
			"etc/debian_version": "12.5\n",
			"etc/hostname":       "debian-vm\n",
			"etc/fstab":          fstab,
		},
		symlinks: map[string]string{"bin": "usr/bin", "usr/bin/sh": "dash"},
		elf:      []string{"usr/bin/dash"},
	}
	d.place(2, root.ext4(t, "", rootUUID))
	check(t, d.path, inspect.OS{
		Root: "/dev/sda2", Type: "linux", Distro: "debian", ProductName: "Debian GNU/Linux 12 (bookworm)",
		MajorVersion: 12, MinorVersion: 5, Arch: hostArch, Hostname: "debian-vm", PackageFormat: "deb", PackageManagement: "apt",
		Mountpoints: []inspect.Mountpoint{{"/", "/dev/sda2"}, {"/boot/efi", "/dev/sda1"}},
	})
}

// Ubuntu 22.04 on MBR: the root by LABEL=, /boot by /dev/disk/by-uuid.
func TestUbuntu(t *testing.T) {
	t.Parallel()
	d := newDisk(t, "80M", "label: dos\n,36M,83\n,36M,83\n")
	root := tree{
		files: map[string]string{
			"etc/os-release": `PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
ID=ubuntu
ID_LIKE=debian
`,
			"etc/lsb-release": "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\nDISTRIB_DESCRIPTION=\"Ubuntu 22.04.4 LTS\"\n",
			"etc/hostname":    "ubuntu-jammy\n",
			"etc/fstab":       "LABEL=cloudimg-rootfs\t/\t ext4\tdiscard,errors=remount-ro\t0 1\n/dev/disk/by-uuid/" + bootUUID + " /boot ext4 defaults 0 2\n/swap.img none swap sw 0 0\n",
		},
		elf: []string{"bin/sh", "usr/bin/ls"},
	}
	d.place(1, root.ext4(t, "cloudimg-rootfs", rootUUID))
	d.place(2, tree{files: map[string]string{"grub/grub.cfg": "#\n"}}.ext4(t, "BOOT", bootUUID))
	check(t, d.path, inspect.OS{
		Root: "/dev/sda1", Type: "linux", Distro: "ubuntu", ProductName: "Ubuntu 22.04.4 LTS",
		MajorVersion: 22, MinorVersion: 4, Arch: hostArch, Hostname: "ubuntu-jammy", PackageFormat: "deb", PackageManagement: "apt",
		Mountpoints: []inspect.Mountpoint{{"/", "/dev/sda1"}, {"/boot", "/dev/sda2"}},
	})
}

// CentOS 7 as its installer lays it out: /boot on sda1, the root and
// swap as logical volumes of a volume group on sda2, mounted by
// /dev/mapper names (a hyphen in the VG name doubled); the hostname in
// /etc/sysconfig/network.
func TestCentOS7OnLVM(t *testing.T) {
	t.Parallel()
	d := newDisk(t, "120M", "label: dos\n,36M,83\n,+,8e\n")
	root := tree{
		files: map[string]string{
			"etc/os-release":         "NAME=\"CentOS Linux\"\nVERSION=\"7 (Core)\"\nID=\"centos\"\nID_LIKE=\"rhel fedora\"\nVERSION_ID=\"7\"\nPRETTY_NAME=\"CentOS Linux 7 (Core)\"\n",
			"etc/centos-release":     "CentOS Linux release 7.9.2009 (Core)\n",
			"etc/redhat-release":     "CentOS Linux release 7.9.2009 (Core)\n",
			"etc/sysconfig/network":  "NETWORKING=yes\nHOSTNAME=centos7.example.com\n",
			"etc/fstab":              "/dev/mapper/centos--vg-root /  ext4 defaults 1 1\nUUID=" + bootUUID + " /boot ext4 defaults 1 2\n/dev/mapper/centos--vg-swap swap swap defaults 0 0\n",
			"etc/sysconfig/selinux":  "SELINUX=enforcing\n",
			"usr/lib/os-release.txt": "",
		},
		symlinks: map[string]string{"bin": "usr/bin", "usr/bin/sh": "bash"},
		elf:      []string{"usr/bin/bash"},
	}
	rootImg := root.ext4(t, "", rootUUID)
	d.place(1, tree{files: map[string]string{"grub2/grub.cfg": "#\n"}}.ext4(t, "", bootUUID))
	d.place(2, pv(t, d.parts[2][1], "centos-vg", [][3]string{{"root", "40", rootImg}, {"swap", "8", ""}}))
	check(t, d.path, inspect.OS{
		Root: "/dev/centos-vg/root", Type: "linux", Distro: "centos", ProductName: "CentOS Linux 7 (Core)",
		MajorVersion: 7, MinorVersion: 9, Arch: hostArch, Hostname: "centos7.example.com", PackageFormat: "rpm", PackageManagement: "yum",
		Mountpoints: []inspect.Mountpoint{{"/", "/dev/centos-vg/root"}, {"/boot", "/dev/sda1"}},
	})
	editLVRoot(t, d.path)
}

// editLVRoot edits the root found by inspection on a logical volume,
// through the writable window of the LV, and lets e2fsck and debugfs
// judge the LV's bytes.
func editLVRoot(t *testing.T, path string) {
	img, _, err := format.Open(path, format.OpenOptions{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	d, err := guestfs.Open(img, path)
	if err != nil {
		t.Fatal(err)
	}
	root, err := inspect.Root(d)
	if err != nil || root != "/dev/centos-vg/root" {
		t.Fatalf("root %q: %v", root, err)
	}
	fsys, err := d.MountWritable(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := fsys.WriteFile("etc/branch", strings.NewReader("lvm\n"), 4, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	dv, _ := d.Device(root)
	lv := make([]byte, dv.Image.Size())
	if _, err := dv.Image.ReadAt(lv, 0); err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(t.TempDir(), "lv.raw")
	if err := os.WriteFile(raw, lv, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "e2fsck", "-fn", raw)
	if got := run(t, "debugfs", "-R", "cat /etc/branch", raw); got != "lvm\n" {
		t.Errorf("debugfs reads %q from the LV", got)
	}
}

// Fedora on GPT, its fstab naming the virtio disk (/dev/vda1), read
// through a compressed qcow2.
func TestFedoraQcow2(t *testing.T) {
	t.Parallel()
	d := newDisk(t, "48M", "label: gpt\n,+,L\n")
	root := tree{
		files: map[string]string{
			"etc/os-release":     "NAME=\"Fedora Linux\"\nVERSION=\"39 (Cloud Edition)\"\nID=fedora\nVERSION_ID=39\nPRETTY_NAME=\"Fedora Linux 39 (Cloud Edition)\"\n",
			"etc/redhat-release": "Fedora release 39 (Thirty Nine)\n",
			"etc/hostname":       "fedora\n",
			"etc/fstab":          "/dev/vda1 / ext4 defaults 1 1\nLABEL=nowhere /srv ext4 defaults 0 0\n",
		},
		symlinks: map[string]string{"bin": "usr/bin", "usr/bin/sh": "bash"},
		elf:      []string{"usr/bin/bash"},
	}
	d.place(1, root.ext4(t, "", rootUUID))
	qcow := filepath.Join(t.TempDir(), "fedora.qcow2")
	run(t, "qemu-img", "convert", "-c", "-O", "qcow2", d.path, qcow)
	check(t, qcow, inspect.OS{
		Root: "/dev/sda1", Type: "linux", Distro: "fedora", ProductName: "Fedora Linux 39 (Cloud Edition)",
		MajorVersion: 39, MinorVersion: 0, Arch: hostArch, Hostname: "fedora", PackageFormat: "rpm", PackageManagement: "dnf",
		Mountpoints: []inspect.Mountpoint{{"/", "/dev/sda1"}},
	})
}

// Alpine on a disk with no partition table; /bin/sh is an absolute link
// to busybox, resolved inside the guest.
func TestAlpineWholeDisk(t *testing.T) {
	t.Parallel()
	root := tree{
		files: map[string]string{
			"etc/os-release":     "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine Linux v3.19\"\n",
			"etc/alpine-release": "3.19.1\n",
			"etc/hostname":       "alpine\n",
			"etc/fstab":          "UUID=" + rootUUID + "\t/\text4\trw,relatime 0 1\n/dev/cdrom\t/media/cdrom\tiso9660\tnoauto,ro 0 0\n",
		},
		symlinks: map[string]string{"bin/sh": "/bin/busybox"},
		elf:      []string{"bin/busybox"},
	}
	check(t, root.ext4(t, "", rootUUID), inspect.OS{
		Root: "/dev/sda", Type: "linux", Distro: "alpinelinux", ProductName: "Alpine Linux v3.19",
		MajorVersion: 3, MinorVersion: 19, Arch: hostArch, Hostname: "alpine", PackageFormat: "apk", PackageManagement: "apk",
		Mountpoints: []inspect.Mountpoint{{"/", "/dev/sda"}},
	})
}

// WindowsImage makes an NTFS volume (package ntfs's test image) holding
// SOFTWARE and SYSTEM hives written by internal/hivetest, copied in with
// ntfscp. It is shared with the command's tests through a copy.
func windowsImage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, "win.img")
	if err := imagetest.Gunzip("../ntfs/testdata/tree.img.gz", img); err != nil {
		t.Fatal(err)
	}
	sw := &hivetest.Key{Name: "ROOT"}
	sw.Path(`Microsoft\Windows NT\CurrentVersion`).Values = []hivetest.Value{
		hivetest.SZ("ProductName", "Windows 10 Pro"),
		hivetest.DWord("CurrentMajorVersionNumber", 10),
		hivetest.DWord("CurrentMinorVersionNumber", 0),
		hivetest.SZ("CurrentVersion", "6.3"),
		hivetest.SZ("CurrentBuild", "22631"),
		hivetest.SZ("EditionID", "Professional"),
		hivetest.SZ("InstallationType", "Client"),
		hivetest.Binary("DigitalProductId4", make([]byte, 20000)),
	}
	for i := range 50 {
		sw.Path(fmt.Sprintf(`Classes\.ext%02d`, i)).Values = []hivetest.Value{hivetest.SZ("", "file")}
	}
	sys := &hivetest.Key{Name: "ROOT"}
	sys.Path("Select").Values = []hivetest.Value{hivetest.DWord("Current", 2), hivetest.DWord("Default", 2)}
	sys.Path(`ControlSet001\Control\ComputerName\ComputerName`).Values = []hivetest.Value{hivetest.SZ("ComputerName", "OLD-NAME")}
	sys.Path(`ControlSet002\Control\ComputerName\ComputerName`).Values = []hivetest.Value{hivetest.SZ("ComputerName", "WIN11-VM")}
	sys.Path(`ControlSet002\Control\Session Manager\Environment`).Values = []hivetest.Value{
		hivetest.SZ("PROCESSOR_ARCHITECTURE", "AMD64"), hivetest.ExpandSZ("Path", `%SystemRoot%\system32`)}
	for name, k := range map[string]*hivetest.Key{"SOFTWARE": sw, "SYSTEM": sys} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, hivetest.Build(k, hivetest.Options{}), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, "ntfscp", "-q", img, p, "/Windows/System32/config/"+name)
	}
	return img
}

func TestWindows(t *testing.T) {
	t.Parallel()
	check(t, windowsImage(t), inspect.OS{
		Root: "/dev/sda", Type: "windows", Distro: "windows", ProductName: "Windows 11 Pro", ProductVariant: "Client",
		MajorVersion: 10, MinorVersion: 0, Arch: "x86_64", Hostname: "WIN11-VM",
		Build: "22631", Edition: "Professional", SystemRoot: "/Windows",
		VirtioStorage: new(bool), // the test image has no virtio driver
		Mountpoints:   []inspect.Mountpoint{{"/", "/dev/sda"}},
	})
}

// A disk with filesystems but no operating system gives none, and no
// error.
func TestNoOS(t *testing.T) {
	t.Parallel()
	img := tree{files: map[string]string{"data/readme": "x"}}.ext4(t, "data", rootUUID)
	if got := inspectFile(t, img); len(got) != 0 {
		t.Errorf("found %+v", got)
	}
}

// Rocky Linux 9 with its root on XFS, as its installer makes it.
func TestRockyXFS(t *testing.T) {
	t.Parallel()
	d := newDisk(t, "400M", "label: gpt\n,+,L\n")
	root := tree{
		files: map[string]string{
			"etc/os-release":     "NAME=\"Rocky Linux\"\nVERSION=\"9.3 (Blue Onyx)\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\nPRETTY_NAME=\"Rocky Linux 9.3 (Blue Onyx)\"\n",
			"etc/redhat-release": "Rocky Linux release 9.3 (Blue Onyx)\n",
			"etc/rocky-release":  "Rocky Linux release 9.3 (Blue Onyx)\n",
			"etc/hostname":       "rocky9\n",
			"etc/fstab":          "UUID=" + rootUUID + " / xfs defaults 0 0\n",
		},
		symlinks: map[string]string{"bin": "usr/bin", "usr/bin/sh": "bash"},
		elf:      []string{"usr/bin/bash"},
	}
	d.place(1, root.xfs(t, rootUUID))
	check(t, d.path, inspect.OS{
		Root: "/dev/sda1", Type: "linux", Distro: "rocky", ProductName: "Rocky Linux 9.3 (Blue Onyx)",
		MajorVersion: 9, MinorVersion: 3, Arch: hostArch, Hostname: "rocky9", PackageFormat: "rpm", PackageManagement: "dnf",
		Mountpoints: []inspect.Mountpoint{{"/", "/dev/sda1"}},
	})
}
