package inspect

import (
	"io/fs"
	"strconv"
	"strings"

	"github.com/qimg/qimg/guestfs"
	"github.com/qimg/qimg/internal/lazyregexp"
)

func inspectLinux(d *guestfs.Disk, root string, fsys guestfs.FileSystem) (*OS, error) {
	os := &OS{Root: root, Type: "linux", Distro: "unknown"}
	release(fsys, os)
	os.Arch = linuxArch(fsys)
	os.Hostname = linuxHostname(fsys)
	os.PackageFormat, os.PackageManagement = packaging(os.Distro, os.MajorVersion)
	os.Mountpoints = fstabMountpoints(d, root, readSmall(fsys, "etc/fstab"))
	return os, nil
}

// release fills in the distribution, product name and version from the
// release files, in libguestfs's order: os-release first; a Debian or
// CentOS os-release gives only the major version, so the minor comes
// from debian_version or centos-release.
func release(fsys fs.FS, os *OS) {
	osRelease := readSmall(fsys, "etc/os-release")
	if osRelease == "" {
		osRelease = readSmall(fsys, "usr/lib/os-release")
	}
	if osRelease != "" && parseOSRelease(osRelease, os) {
		switch {
		case os.Distro == "debian":
			versionFrom(firstLine(readSmall(fsys, "etc/debian_version")), os)
		case os.Distro == "centos" && os.MinorVersion == 0:
			versionFrom(firstLine(readSmall(fsys, "etc/centos-release")), os)
		}
		return
	}
	if lsb := readSmall(fsys, "etc/lsb-release"); lsb != "" && parseLSB(lsb, os) {
		return
	}
	for _, t := range releaseFiles {
		line := firstLine(readSmall(fsys, t.file))
		if line == "" && (!t.empty || !isRegular(fsys, t.file)) {
			continue
		}
		if t.re != nil && !t.re.MatchString(line) {
			continue
		}
		os.Distro = t.distro
		if line != "" {
			os.ProductName = line
			versionFrom(line, os)
		}
		if t.file == "etc/SuSE-release" {
			suseRelease(readSmall(fsys, t.file), os)
		}
		return
	}
}

// releaseFiles are the distribution-specific files, tried in order.
var releaseFiles = []struct {
	file   string
	re     *lazyregexp.Regexp // must match the first line, when set
	distro string
	empty  bool // the file may be empty (Arch's)
}{
	{file: "etc/oracle-release", re: lazyregexp.New(`Oracle Linux.*release \d+`), distro: "oraclelinux"},
	{file: "etc/centos-release", re: lazyregexp.New(`CentOS.*release \d+`), distro: "centos"},
	{file: "etc/rocky-release", re: lazyregexp.New(`Rocky Linux.*release \d+`), distro: "rocky"},
	{file: "etc/almalinux-release", re: lazyregexp.New(`AlmaLinux.*release \d+`), distro: "almalinux"},
	{file: "etc/redhat-release", re: lazyregexp.New(`Fedora release \d+`), distro: "fedora"},
	{file: "etc/redhat-release", re: lazyregexp.New(`Red Hat.*release \d+`), distro: "rhel"},
	{file: "etc/redhat-release", re: lazyregexp.New(`CentOS.*release \d+`), distro: "centos"},
	{file: "etc/redhat-release", re: lazyregexp.New(`Scientific Linux.*release \d+`), distro: "scientificlinux"},
	{file: "etc/redhat-release", distro: "redhat-based"},
	{file: "etc/debian_version", distro: "debian"},
	{file: "etc/arch-release", distro: "archlinux", empty: true},
	{file: "etc/gentoo-release", distro: "gentoo"},
	{file: "etc/SuSE-release", distro: "opensuse"},
	{file: "etc/alpine-release", distro: "alpinelinux"},
}

// osReleaseIDs maps os-release's ID to libguestfs's distro names.
var osReleaseIDs = map[string]string{
	"alpine": "alpinelinux", "altlinux": "altlinux", "arch": "archlinux", "centos": "centos",
	"coreos": "coreos", "debian": "debian", "fedora": "fedora", "kali": "kalilinux",
	"mageia": "mageia", "opensuse": "opensuse", "rhel": "rhel", "sles": "sles", "sled": "sles",
	"ubuntu": "ubuntu", "void": "voidlinux", "rocky": "rocky", "almalinux": "almalinux",
	"ol": "oraclelinux", "linuxmint": "linuxmint", "gentoo": "gentoo", "pld": "pldlinux",
	"neokylin": "neokylin", "openmandriva": "openmandriva", "frugalware": "frugalware",
}

// parseOSRelease reads os-release; it succeeds when the distribution and
// the product name are known.
func parseOSRelease(text string, os *OS) bool {
	vals := keyValues(text)
	distro, ok := osReleaseIDs[vals["ID"]]
	if !ok && strings.HasPrefix(vals["ID"], "opensuse-") {
		distro, ok = "opensuse", true
	}
	if !ok || vals["PRETTY_NAME"] == "" {
		return false
	}
	os.Distro, os.ProductName = distro, vals["PRETTY_NAME"]
	versionFrom(vals["VERSION_ID"], os)
	return true
}

// lsbIDs maps lsb-release's DISTRIB_ID to distro names.
var lsbIDs = map[string]string{"Ubuntu": "ubuntu", "LinuxMint": "linuxmint", "Mageia": "mageia", "CoreOS": "coreos"}

func parseLSB(text string, os *OS) bool {
	vals := keyValues(text)
	distro, ok := lsbIDs[vals["DISTRIB_ID"]]
	if !ok {
		return false
	}
	os.Distro, os.ProductName = distro, vals["DISTRIB_DESCRIPTION"]
	versionFrom(vals["DISTRIB_RELEASE"], os)
	return true
}

// suseRelease reads SLES's VERSION and PATCHLEVEL lines.
func suseRelease(text string, os *OS) {
	if strings.HasPrefix(os.ProductName, "SUSE Linux Enterprise") || strings.HasPrefix(os.ProductName, "SUSE LINUX Enterprise") {
		os.Distro = "sles"
	}
	vals := keyValues(text)
	if n, err := strconv.Atoi(vals["VERSION"]); err == nil {
		os.MajorVersion, os.MinorVersion = n, 0
	}
	if n, err := strconv.Atoi(vals["PATCHLEVEL"]); err == nil {
		os.MinorVersion = n
	}
}

// keyValues parses KEY=value lines with shell-style quotes (os-release,
// lsb-release, sysconfig files).
func keyValues(text string) map[string]string {
	vals := map[string]string{}
	for line := range strings.SplitSeq(text, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		vals[strings.TrimSpace(k)] = unquote(strings.TrimSpace(v))
	}
	return vals
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		q := v[0]
		v = v[1 : len(v)-1]
		if q == '"' {
			v = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\$`, `$`, "\\`", "`").Replace(v)
		}
	}
	return v
}

var majorMinor = lazyregexp.New(`(\d+)(?:\.(\d+))?`)

// versionFrom takes the first "major[.minor]" of s.
func versionFrom(s string, os *OS) {
	m := majorMinor.FindStringSubmatch(s)
	if m == nil {
		return
	}
	os.MajorVersion, _ = strconv.Atoi(m[1])
	os.MinorVersion, _ = strconv.Atoi(m[2])
}

// linuxHostname reads /etc/HOSTNAME (old SUSE), /etc/hostname, then
// HOSTNAME= of /etc/sysconfig/network (old Red Hat).
func linuxHostname(fsys guestfs.FileSystem) string {
	for _, f := range []string{"etc/HOSTNAME", "etc/hostname"} {
		if h := firstLine(readSmall(fsys, f)); h != "" {
			return h
		}
	}
	return keyValues(readSmall(fsys, "etc/sysconfig/network"))["HOSTNAME"]
}

// packaging is the package format and manager of a distribution.
func packaging(distro string, major int) (format, manager string) {
	switch distro {
	case "debian", "ubuntu", "linuxmint", "kalilinux":
		return "deb", "apt"
	case "fedora":
		if major >= 22 {
			return "rpm", "dnf"
		}
		return "rpm", "yum"
	case "rhel", "centos", "rocky", "almalinux", "oraclelinux", "scientificlinux", "redhat-based":
		switch {
		case major >= 8:
			return "rpm", "dnf"
		case major >= 5:
			return "rpm", "yum"
		case major > 0:
			return "rpm", "up2date"
		}
		return "rpm", ""
	case "opensuse", "sles", "suse-based":
		return "rpm", "zypper"
	case "alpinelinux":
		return "apk", "apk"
	case "archlinux":
		return "pacman", "pacman"
	case "gentoo":
		return "ebuild", "portage"
	case "voidlinux":
		return "xbps", "xbps"
	case "mageia", "openmandriva":
		return "rpm", "urpmi"
	}
	return "", ""
}

// isRegular reports whether name is a regular file (an empty release file
// still names its distribution; a missing one does not).
func isRegular(fsys fs.FS, name string) bool {
	fi, err := fs.Stat(fsys, name)
	return err == nil && fi.Mode().IsRegular()
}
