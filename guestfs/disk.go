package guestfs

import (
	"errors"
	"fmt"

	"github.com/qimg/qimg/guestfs/detect"
	"github.com/qimg/qimg/guestfs/lvm"
	"github.com/qimg/qimg/guestfs/partition"
	"github.com/qimg/qimg/image"
)

// Kind is what a device is, as virt-filesystems names it.
type Kind string

const (
	KindDisk      Kind = "device"    // the whole disk
	KindPartition Kind = "partition" // a partition of the disk
	KindLV        Kind = "lv"        // an LVM2 logical volume
)

// Device is one block device of a guest image.
type Device struct {
	Name   string // /dev/sda, /dev/sda1, /dev/VG/LV
	Kind   Kind
	Parent string // the device it lies on: the disk for a partition, /dev/VG for an LV
	Size   int64
	// Content is what the device holds; zero when nothing is recognised
	// or, for a disk with a partition table, nothing but partitions.
	Content detect.Content
	// Partition is the table entry of a partition.
	Partition *partition.Partition
	// LV is the logical volume an LV device is.
	LV *lvm.LV
	// Image is the device's window of the disk image; nil when the
	// device cannot be read (Err says why).
	Image image.Image
	// Err is why the device cannot be read (an LV of an unsupported
	// segment type, or on a missing physical volume).
	Err error
}

// Disk is what a guest image holds.
type Disk struct {
	Name    string
	Table   *partition.Table
	VGs     []*lvm.VG
	Devices []Device // the disk, its partitions, then the logical volumes
}

// Open finds the devices of img (name is used in messages): the whole
// disk, the partitions of its table, and the logical volumes of the
// volume groups whose physical volumes are the disk or its partitions.
func Open(img image.Image, name string) (*Disk, error) {
	table, err := partition.Read(img, name)
	if err != nil {
		return nil, err
	}
	d := &Disk{Name: name, Table: table}
	whole := Device{Name: partition.DeviceName(0), Kind: KindDisk, Size: img.Size(), Image: img}
	// A disk with no partitions may be one filesystem whose boot sector
	// ends in 0x55AA, as an MBR does (NTFS, FAT): probe it as blkid does.
	if len(table.Partitions) == 0 {
		if whole.Content, err = probe(img, name, whole.Name); err != nil {
			return nil, err
		}
	}
	d.Devices = append(d.Devices, whole)
	for i := range table.Partitions {
		dev, err := openPartition(img, name, &table.Partitions[i])
		if err != nil {
			return nil, err
		}
		d.Devices = append(d.Devices, dev)
	}
	if err := d.scanLVM(); err != nil {
		return nil, err
	}
	return d, nil
}

func openPartition(img image.Image, name string, p *partition.Partition) (Device, error) {
	dev := Device{Name: p.Device(), Kind: KindPartition, Parent: partition.DeviceName(0), Size: p.Size, Partition: p}
	sec, err := p.Open(img)
	if err != nil {
		return dev, err
	}
	dev.Image = sec
	if p.Extended {
		return dev, nil // a container of logical partitions, no content
	}
	dev.Content, err = probe(sec, name, dev.Name)
	return dev, err
}

// probe tells what a device holds, naming the image and the device on
// a read error.
func probe(img image.Image, name, dev string) (detect.Content, error) {
	c, err := detect.Probe(img, img.Size())
	if err != nil {
		return c, image.FileErrorf(name, "%s: %w", dev, err)
	}
	return c, nil
}

// scanLVM adds the logical volumes of the volume groups on the devices
// found so far.
func (d *Disk) scanLVM() error {
	var pvs []lvm.Device
	for _, dev := range d.Devices {
		if dev.Content.Type == "LVM2_member" {
			pvs = append(pvs, lvm.Device{Name: fmt.Sprintf("%s:%s", d.Name, dev.Name), Image: dev.Image})
		}
	}
	if len(pvs) == 0 {
		return nil
	}
	vgs, err := lvm.Scan(pvs...)
	if err != nil {
		return err
	}
	d.VGs = vgs
	for _, vg := range vgs {
		for _, lv := range vg.LVs {
			if !lv.Visible {
				continue
			}
			dev, err := d.openLV(vg, lv)
			if err != nil {
				return err
			}
			d.Devices = append(d.Devices, dev)
		}
	}
	return nil
}

// openLV opens one logical volume. One that cannot be read (unsupported
// segments, a missing PV) is still listed, with Err saying why.
func (d *Disk) openLV(vg *lvm.VG, lv *lvm.LV) (Device, error) {
	dev := Device{Name: lvm.DeviceName(vg.Name, lv.Name), Kind: KindLV, Parent: "/dev/" + vg.Name, Size: lv.Size, LV: lv}
	img, err := vg.Open(lv)
	if err != nil {
		if errors.Is(err, image.ErrUnsupported) || errors.Is(err, image.ErrInvalidArgument) {
			dev.Err = err
			return dev, nil
		}
		return dev, err
	}
	dev.Image = img
	dev.Content, err = probe(img, d.Name, dev.Name)
	return dev, err
}

// Device returns the device of that name.
func (d *Disk) Device(name string) (*Device, bool) {
	for i := range d.Devices {
		if d.Devices[i].Name == name {
			return &d.Devices[i], true
		}
	}
	return nil, false
}
