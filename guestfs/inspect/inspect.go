package inspect

import (
	"errors"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/qimg/qimg/guestfs"
)

// OS is one operating system found in an image: what virt-inspector
// reports of a root filesystem.
type OS struct {
	// Root is the device holding the root filesystem (/dev/sda2,
	// /dev/VG/LV).
	Root string `json:"root"`
	// Type is "linux" or "windows".
	Type string `json:"type"`
	// Distro is libguestfs's name of the distribution: debian, ubuntu,
	// fedora, centos, rhel, rocky, almalinux, oraclelinux, opensuse,
	// sles, alpinelinux, archlinux, ..., or windows; "unknown" when no
	// release file says.
	Distro         string `json:"distro"`
	ProductName    string `json:"product_name"`
	ProductVariant string `json:"product_variant,omitempty"` // Windows' InstallationType: Client, Server
	MajorVersion   int    `json:"major_version"`
	MinorVersion   int    `json:"minor_version"`
	// Arch is the architecture of the guest's binaries, as libguestfs
	// names it (x86_64, i386, aarch64, ...); "" when unknown.
	Arch              string `json:"arch"`
	Hostname          string `json:"hostname"`
	PackageFormat     string `json:"package_format"`     // deb, rpm, apk, pacman, ...
	PackageManagement string `json:"package_management"` // apt, dnf, yum, zypper, apk, pacman, ...
	// Windows only: the build number, edition and system root.
	Build      string `json:"build_id,omitempty"`
	Edition    string `json:"edition,omitempty"`
	SystemRoot string `json:"windows_systemroot,omitempty"`
	// VirtioStorage tells, for Windows, whether the guest has the virtio
	// storage driver (viostor or vioscsi) that booting on a virtio disk
	// needs; without it Windows stops with INACCESSIBLE_BOOT_DEVICE.
	VirtioStorage *bool `json:"virtio_storage_driver,omitempty"`
	// Mountpoints are where the guest mounts its filesystems (from
	// /etc/fstab), sorted by mount point: "/" first.
	Mountpoints []Mountpoint `json:"mountpoints"`
}

// Mountpoint is one filesystem the guest mounts.
type Mountpoint struct {
	Path   string `json:"mountpoint"`
	Device string `json:"device"` // libguestfs's device name, or the fstab spec when it names no device of the image
}

// maxSmallFile bounds the configuration files read (os-release, fstab).
const maxSmallFile = 1 << 20

// Inspect finds the operating systems in the disk: every filesystem
// qimg reads that holds a Linux root (/etc and /bin or /usr/bin) or a
// Windows root (Windows/System32/config). A filesystem that cannot be
// opened is skipped; if no OS is found, the errors met are returned.
func Inspect(d *guestfs.Disk) ([]OS, error) {
	var found []OS
	var errs []error
	for _, dev := range d.Mountable() {
		fsys, err := d.Mount(dev.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var os *OS
		switch {
		case isDir(fsys, "Windows/System32/config"):
			os, err = inspectWindows(d, dev.Name, fsys)
		case isDir(fsys, "etc") && (isDir(fsys, "bin") || isDir(fsys, "usr/bin")):
			os, err = inspectLinux(d, dev.Name, fsys)
		default:
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		found = append(found, *os)
	}
	if len(found) == 0 {
		return nil, errors.Join(errs...)
	}
	return found, nil
}

func isDir(fsys fs.FS, name string) bool {
	fi, err := fs.Stat(fsys, name)
	return err == nil && fi.IsDir()
}

// readSmall reads a small regular file of the guest (following its
// symbolic links inside the guest); a missing or unreadable one is "".
func readSmall(fsys fs.FS, name string) string {
	f, err := fsys.Open(name)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSmallFile))
	if err != nil {
		return ""
	}
	return string(b)
}

// firstLine is the first line of s, without surrounding blanks.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

// sortMountpoints puts "/" first, then the rest by path, and keeps one
// entry per mount point.
func sortMountpoints(m []Mountpoint) []Mountpoint {
	slices.SortStableFunc(m, func(a, b Mountpoint) int { return strings.Compare(a.Path, b.Path) })
	return slices.CompactFunc(m, func(a, b Mountpoint) bool { return a.Path == b.Path })
}
