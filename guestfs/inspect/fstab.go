package inspect

import (
	"path"
	"strconv"
	"strings"

	"github.com/qimg/qimg/guestfs"
	"github.com/qimg/qimg/internal/lazyregexp"
)

// fstabMountpoints resolves the guest's /etc/fstab to the image's
// devices, as libguestfs does: UUID=, LABEL=, PARTUUID= and PARTLABEL=
// (and their /dev/disk/by-* links) name a device of the image or the
// entry is dropped; /dev/mapper/VG-LV becomes /dev/VG/LV; /dev/sdXN,
// /dev/vdXN, /dev/hdXN and /dev/xvdXN of the first disk become /dev/sdaN;
// other /dev names are kept as written. Pseudo filesystems, swap, and
// mounts under /proc, /sys, /dev, /media and /selinux are left out. With
// no fstab, the root alone is listed.
func fstabMountpoints(d *guestfs.Disk, root, fstab string) []Mountpoint {
	var out []Mountpoint
	for line := range strings.SplitSeq(fstab, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		mp := path.Clean(unescapeFstab(fields[1]))
		if !strings.HasPrefix(mp, "/") || ignoredMountpoint(mp) {
			continue
		}
		dev, ok := resolveSpec(d, root, unescapeFstab(fields[0]))
		if !ok {
			continue
		}
		if mp == "/" && dev != root && hasRoot(out, root) {
			continue
		}
		out = append(out, Mountpoint{Path: mp, Device: dev})
	}
	if len(out) == 0 {
		out = []Mountpoint{{Path: "/", Device: root}}
	}
	return sortMountpoints(out)
}

func hasRoot(m []Mountpoint, root string) bool {
	for _, e := range m {
		if e.Path == "/" && e.Device == root {
			return true
		}
	}
	return false
}

func ignoredMountpoint(mp string) bool {
	for _, p := range []string{"/dev", "/media", "/proc", "/selinux", "/sys"} {
		if mp == p || strings.HasPrefix(mp, p+"/") {
			return true
		}
	}
	return false
}

// unescapeFstab undoes fstab's octal escapes (\040 for a space).
func unescapeFstab(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

var (
	xdev      = lazyregexp.New(`^/dev/(?:h|s|v|xv)d([a-z]+)(\d*)$`)
	byLinks   = map[string]string{"/dev/disk/by-uuid/": "UUID=", "/dev/disk/by-label/": "LABEL=", "/dev/disk/by-partuuid/": "PARTUUID=", "/dev/disk/by-partlabel/": "PARTLABEL="}
	tagFields = []string{"UUID=", "LABEL=", "PARTUUID=", "PARTLABEL="}
)

// resolveSpec names the device an fstab spec refers to; ok is false for
// entries to leave out.
func resolveSpec(d *guestfs.Disk, root, spec string) (string, bool) {
	for link, tag := range byLinks {
		if v, ok := strings.CutPrefix(spec, link); ok {
			spec = tag + unescapeUdev(v)
		}
	}
	for _, tag := range tagFields {
		if v, ok := strings.CutPrefix(spec, tag); ok {
			return findTagged(d, tag, unquote(v))
		}
	}
	switch {
	case spec == "/dev/root":
		return root, true
	case strings.HasPrefix(spec, "/dev/mapper/"):
		if vg, lv, ok := splitMapper(strings.TrimPrefix(spec, "/dev/mapper/")); ok {
			if _, ok := d.Device("/dev/" + vg + "/" + lv); ok {
				return "/dev/" + vg + "/" + lv, true
			}
		}
		return spec, true
	case xdev.MatchString(spec):
		m := xdev.FindStringSubmatch(spec)
		if m[1] == "a" {
			if _, ok := d.Device("/dev/sda" + m[2]); ok {
				return "/dev/sda" + m[2], true
			}
		}
		return spec, true
	case strings.HasPrefix(spec, "/dev/"):
		return spec, true
	}
	return "", false // tmpfs, proc, none, nfs servers...
}

// findTagged finds the device with that filesystem UUID or label, or
// partition UUID or name.
func findTagged(d *guestfs.Disk, tag, v string) (string, bool) {
	for _, dev := range d.Devices {
		var have string
		switch tag {
		case "UUID=":
			have = dev.Content.UUID
		case "LABEL=":
			have = dev.Content.Label
		case "PARTUUID=", "PARTLABEL=":
			if dev.Partition == nil {
				continue
			}
			have = dev.Partition.UUID
			if tag == "PARTLABEL=" {
				have = dev.Partition.Name
			}
		}
		if have == "" || dev.Content.Type == "LVM2_member" && tag == "UUID=" {
			continue
		}
		if have == v || (tag != "LABEL=" && tag != "PARTLABEL=" && strings.EqualFold(have, v)) {
			return dev.Name, true
		}
	}
	return "", false
}

// splitMapper splits a device-mapper name VG-LV, where a hyphen inside
// either name is doubled.
func splitMapper(name string) (vg, lv string, ok bool) {
	for i := 0; i < len(name); i++ {
		if name[i] != '-' {
			continue
		}
		if i+1 < len(name) && name[i+1] == '-' {
			i++
			continue
		}
		return strings.ReplaceAll(name[:i], "--", "-"), strings.ReplaceAll(name[i+1:], "--", "-"), i > 0 && i < len(name)-1
	}
	return "", "", false
}

// unescapeUdev undoes udev's \xNN escapes in /dev/disk/by-label names.
func unescapeUdev(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) && s[i+1] == 'x' {
			if n, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
