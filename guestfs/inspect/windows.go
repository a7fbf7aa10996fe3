package inspect

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/qimg/qimg/guestfs"
	"github.com/qimg/qimg/guestfs/hive"
	"github.com/qimg/qimg/image"
)

// maxHive bounds a hive read into memory when the guest's filesystem
// cannot read it in place (a real SOFTWARE hive is up to a few hundred
// MiB; NTFS files are read in place).
const maxHive = 512 << 20

func inspectWindows(d *guestfs.Disk, root string, fsys guestfs.FileSystem) (*OS, error) {
	os := &OS{Root: root, Type: "windows", Distro: "windows", SystemRoot: "/" + actualName(fsys, ".", "Windows"),
		Mountpoints: []Mountpoint{{Path: "/", Device: root}}}
	sw, done, err := openHive(d, fsys, "Windows/System32/config/SOFTWARE")
	if err != nil {
		return nil, err
	}
	defer done()
	if err := windowsVersion(sw, os); err != nil {
		return nil, err
	}
	sys, done2, err := openHive(d, fsys, "Windows/System32/config/SYSTEM")
	if err != nil {
		return nil, err
	}
	defer done2()
	if err := windowsSystem(sys, d.Name+":Windows/System32/config/SYSTEM", os); err != nil {
		return nil, err
	}
	if os.Arch == "" {
		os.Arch = peArch(fsys, "Windows/System32/cmd.exe")
	}
	virtio := hasVirtioStorage(fsys)
	os.VirtioStorage = &virtio
	return os, nil
}

// hasVirtioStorage looks for the virtio block or SCSI driver installed
// (System32/drivers) or staged in the driver store.
func hasVirtioStorage(fsys guestfs.FileSystem) bool {
	drivers := "Windows/System32/drivers"
	for _, e := range readDirFold(fsys, drivers) {
		if n := strings.ToLower(e); n == "viostor.sys" || n == "vioscsi.sys" {
			return true
		}
	}
	repo := "Windows/System32/DriverStore/FileRepository"
	for _, e := range readDirFold(fsys, repo) {
		if n := strings.ToLower(e); strings.HasPrefix(n, "viostor.inf") || strings.HasPrefix(n, "vioscsi.inf") {
			return true
		}
	}
	return false
}

// readDirFold lists a directory whose path components match
// case-insensitively, as Windows names them.
func readDirFold(fsys guestfs.FileSystem, p string) []string {
	dir := "."
	for _, c := range strings.Split(p, "/") {
		dir = path.Join(dir, actualName(fsys, dir, c))
	}
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// actualName is the name as stored of the entry of dir matching name
// case-insensitively.
func actualName(fsys fs.ReadDirFS, dir, name string) string {
	entries, _ := fsys.ReadDir(dir)
	for _, e := range entries {
		if strings.EqualFold(e.Name(), name) {
			return e.Name()
		}
	}
	return name
}

// openHive opens a hive file of the guest, in place when the file is an
// io.ReaderAt.
func openHive(d *guestfs.Disk, fsys fs.FS, name string) (*hive.Hive, func(), error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, nil, image.FileErrorf(d.Name, "windows root without %s: %w", name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	label := d.Name + ":" + name
	r, ok := f.(io.ReaderAt)
	if !ok {
		if fi.Size() > maxHive {
			f.Close()
			return nil, nil, image.FileErrorf(label, "hive of %d bytes: %w", fi.Size(), image.ErrLimit)
		}
		b, err := io.ReadAll(io.LimitReader(f, maxHive))
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		r = bytes.NewReader(b)
	}
	h, err := hive.Open(r, fi.Size(), label)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return h, func() { f.Close() }, nil
}

// windowsVersion reads SOFTWARE\Microsoft\Windows NT\CurrentVersion.
func windowsVersion(h *hive.Hive, os *OS) error {
	cv, err := h.Key(`Microsoft\Windows NT\CurrentVersion`)
	if err != nil {
		return err
	}
	os.ProductName = str(cv, "ProductName")
	os.ProductVariant = str(cv, "InstallationType")
	os.Edition = str(cv, "EditionID")
	os.Build = str(cv, "CurrentBuildNumber")
	if b := str(cv, "CurrentBuild"); b != "" {
		os.Build = b
	}
	major, okMajor := num(cv, "CurrentMajorVersionNumber")
	minor, okMinor := num(cv, "CurrentMinorVersionNumber")
	if okMajor && okMinor {
		os.MajorVersion, os.MinorVersion = int(major), int(minor)
	} else {
		versionFrom(str(cv, "CurrentVersion"), os)
	}
	// Windows 11 kept "Windows 10" in ProductName; its builds start at
	// 22000, as libguestfs reads them.
	if build, _ := strconv.Atoi(os.Build); os.MajorVersion == 10 && build >= 22000 {
		os.ProductName = strings.Replace(os.ProductName, "Windows 10", "Windows 11", 1)
	}
	return nil
}

// windowsSystem reads the computer name and processor architecture from
// the current control set of the SYSTEM hive.
func windowsSystem(h *hive.Hive, name string, os *OS) error {
	sel, err := h.Key("Select")
	if err != nil {
		return err
	}
	current, ok := num(sel, "Current")
	if !ok || current == 0 || current > 999 {
		return image.FileErrorf(name, "hive: Select\\Current is %d: %w", current, image.ErrCorrupt)
	}
	set := fmt.Sprintf("ControlSet%03d", current)
	if k, err := h.Key(set + `\Control\ComputerName\ComputerName`); err == nil {
		os.Hostname = str(k, "ComputerName")
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if k, err := h.Key(set + `\Control\Session Manager\Environment`); err == nil {
		os.Arch = windowsArchs[strings.ToUpper(str(k, "PROCESSOR_ARCHITECTURE"))]
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

var windowsArchs = map[string]string{"AMD64": "x86_64", "X86": "i386", "ARM64": "aarch64", "IA64": "ia64", "ARM": "arm"}

// str is a string value of k, "" when missing or of another type.
func str(k *hive.Key, name string) string {
	v, err := k.Value(name)
	if err != nil {
		return ""
	}
	s, _ := v.String()
	return s
}

func num(k *hive.Key, name string) (uint64, bool) {
	v, err := k.Value(name)
	if err != nil {
		return 0, false
	}
	n, err := v.Uint()
	return n, err == nil
}
