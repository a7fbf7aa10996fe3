package guestfs

import "github.com/qimg/qimg/guestfs/partition"

// Entry is one row of what virt-filesystems --long --all --uuid lists.
// Empty strings are the "-" of its table.
type Entry struct {
	Name   string `json:"name"` // device name
	Type   string `json:"type"` // filesystem, lv, vg, pv, partition, device
	VFS    string `json:"vfs"`  // the filesystem type (blkid's TYPE) of a filesystem
	Label  string `json:"label"`
	MBR    string `json:"mbr"` // an MBR partition's type byte, in hex
	Size   int64  `json:"size"`
	Parent string `json:"parent"`
	UUID   string `json:"uuid"`
}

// Entries lists the disk as virt-filesystems --all does, in its order:
// filesystems (anything a device holds but an LVM2 PV), logical volumes,
// volume groups, physical volumes, partitions, then the disk.
func (d *Disk) Entries() []Entry {
	var fs, lvs, pvs, parts, disks []Entry
	for _, dev := range d.Devices {
		c := dev.Content
		switch {
		case c.Type == "LVM2_member":
			pvs = append(pvs, Entry{Name: dev.Name, Type: "pv", Size: dev.Size, UUID: c.UUID})
		case c.Type != "":
			fs = append(fs, Entry{Name: dev.Name, Type: "filesystem", VFS: c.Type, Label: c.Label, Size: dev.Size, UUID: c.UUID})
		}
		switch dev.Kind {
		case KindLV:
			lvs = append(lvs, Entry{Name: dev.Name, Type: "lv", Size: dev.Size, Parent: dev.Parent, UUID: dev.LV.UUID})
		case KindPartition:
			parts = append(parts, partitionEntry(d.Table, dev))
		case KindDisk:
			disks = append(disks, Entry{Name: dev.Name, Type: "device", Size: dev.Size})
		}
	}
	var vgs []Entry
	for _, vg := range d.VGs {
		var size int64
		for _, pv := range vg.PVs {
			size += pv.PECount * vg.ExtentSize
		}
		vgs = append(vgs, Entry{Name: "/dev/" + vg.Name, Type: "vg", Size: size, UUID: vg.UUID})
	}
	out := append(fs, lvs...)
	out = append(out, vgs...)
	out = append(out, pvs...)
	out = append(out, parts...)
	return append(out, disks...)
}

func partitionEntry(t *partition.Table, dev Device) Entry {
	e := Entry{Name: dev.Name, Type: "partition", Size: dev.Size, Parent: dev.Parent, UUID: dev.Partition.UUID}
	if t.Scheme == partition.SchemeMBR {
		e.MBR = dev.Partition.Type
	}
	return e
}
