package detect

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// probeXFS: "XFSB" at 0, UUID at 32, label (sb_fname) at 108.
func probeXFS(d *device) (Content, bool) {
	sb := d.at(0, 120)
	if sb == nil || string(sb[:4]) != "XFSB" {
		return Content{}, false
	}
	return Content{Type: "xfs", UUID: uuid(sb[32:48]), Label: cstring(sb[108:120])}, true
}

// probeBtrfs: superblock at 64 KiB, magic "_BHRfS_M" at +0x40, fsid at
// +0x20, label at +0x12b.
func probeBtrfs(d *device) (Content, bool) {
	sb := d.at(0x10000, 0x22b)
	if sb == nil || string(sb[0x40:0x48]) != "_BHRfS_M" {
		return Content{}, false
	}
	return Content{Type: "btrfs", UUID: uuid(sb[0x20:0x30]), Label: cstring(sb[0x12b:0x22b])}, true
}

// probeSwap: "SWAPSPACE2" ending the first page (4 KiB pages here), the
// header with UUID and label at 1024.
func probeSwap(d *device) (Content, bool) {
	page := d.at(0, 4096)
	if page == nil || string(page[4096-10:]) != "SWAPSPACE2" {
		return Content{}, false
	}
	return Content{Type: "swap", UUID: uuid(page[1024+12 : 1024+28]), Label: cstring(page[1024+28 : 1024+44])}, true
}

// probeLUKS: "LUKS\xba\xbe" at 0; the UUID is text at 168; LUKS2 has a
// label at 24.
func probeLUKS(d *device) (Content, bool) {
	h := d.at(0, 208)
	if h == nil || string(h[:6]) != "LUKS\xba\xbe" {
		return Content{}, false
	}
	c := Content{Type: "crypto_LUKS", UUID: cstring(h[168:208])}
	if binary.BigEndian.Uint16(h[6:]) == 2 {
		c.Label = cstring(h[24:72])
	}
	return c, true
}

// probeLVM: the "LABELONE" label in one of the first four sectors, of
// type "LVM2 001"; the PV UUID (32 characters) follows the label header,
// shown by blkid in LVM's 6-4-4-4-4-4-6 grouping.
func probeLVM(d *device) (Content, bool) {
	for s := int64(0); s < 4; s++ {
		l := d.at(s*512, 512)
		if l == nil || string(l[:8]) != "LABELONE" || string(l[24:32]) != "LVM2 001" {
			continue
		}
		off := binary.LittleEndian.Uint32(l[20:])
		if off > 512-32 {
			return Content{}, false
		}
		id := string(l[off : off+32])
		return Content{Type: "LVM2_member", UUID: id[0:6] + "-" + id[6:10] + "-" + id[10:14] + "-" +
			id[14:18] + "-" + id[18:22] + "-" + id[22:26] + "-" + id[26:32]}, true
	}
	return Content{}, false
}

// probeNTFS: "NTFS    " at 3; the UUID is the 64-bit volume serial
// number at 0x48. The label lives in the $Volume file, which this does
// not read.
func probeNTFS(d *device) (Content, bool) {
	b := d.at(0, 512)
	if b == nil || string(b[3:11]) != "NTFS    " {
		return Content{}, false
	}
	return Content{Type: "ntfs", UUID: fmt.Sprintf("%016X", binary.LittleEndian.Uint64(b[0x48:]))}, true
}

// probeFAT: a boot sector ending in 0x55AA that names FAT12/16 at 54 or
// FAT32 at 82; the UUID is the volume serial number, the label the boot
// sector's (blkid prefers the root directory's volume entry, which
// mkfs.vfat writes the same).
func probeFAT(d *device) (Content, bool) {
	b := d.at(0, 512)
	if b == nil || b[510] != 0x55 || b[511] != 0xAA {
		return Content{}, false
	}
	var serial, label []byte
	switch {
	case bytes.HasPrefix(b[82:90], []byte("FAT32")):
		serial, label = b[67:71], b[71:82]
	case bytes.HasPrefix(b[54:62], []byte("FAT1")):
		serial, label = b[39:43], b[43:54]
	default:
		return Content{}, false
	}
	c := Content{Type: "vfat", UUID: fmt.Sprintf("%04X-%04X", binary.LittleEndian.Uint16(serial[2:]), binary.LittleEndian.Uint16(serial[:2]))}
	if l := strings.TrimRight(string(label), " "); l != "NO NAME" {
		c.Label = l
	}
	return c, true
}

// probeISO9660: the primary volume descriptor "CD001" at 32 KiB; the label
// is its volume identifier, the UUID its creation date as blkid spells it.
func probeISO9660(d *device) (Content, bool) {
	pvd := d.at(32768, 2048)
	if pvd == nil || pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return Content{}, false
	}
	c := Content{Type: "iso9660", Label: strings.TrimRight(string(pvd[40:72]), " ")}
	if t := pvd[813:830]; t[0] != '0' && t[0] != 0 {
		c.UUID = fmt.Sprintf("%s-%s-%s-%s-%s-%s-%s", t[0:4], t[4:6], t[6:8], t[8:10], t[10:12], t[12:14], t[14:16])
	}
	return c, true
}
