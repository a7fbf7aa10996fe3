package build

import (
	"strconv"

	"libvirt.org/go/libvirtxml"

	"github.com/qimg/qimg/boot"
)

// A domain is what the libvirt backend asks libvirtd to run: a boot.Machine
// whose paths are absolute, with its name, the domain type (kvm or qemu,
// TCG) and the file that receives the serial console.
type domain struct {
	name    string
	kvm     bool
	console string
	seedISO bool // the seed is an ISO 9660 image: a CD-ROM, else a disk
	// uid and gid are those QEMU runs as: qimg's, so that it reaches the
	// same files as the QEMU backend's QEMU and libvirt relabels nothing.
	uid, gid int
	m        boot.Machine
}

// xml is the domain's libvirt XML, built from libvirtxml's typed structs.
func (d domain) xml() (string, error) {
	typ := "qemu"
	var cpu *libvirtxml.DomainCPU
	if d.kvm {
		typ, cpu = "kvm", &libvirtxml.DomainCPU{Mode: "host-passthrough"}
	}
	dom := &libvirtxml.Domain{
		Type: typ, Name: d.name,
		Description: "qimg build: an unattended install; removed when it ends",
		Memory:      &libvirtxml.DomainMemory{Value: uint(d.m.Memory), Unit: "MiB"},
		VCPU:        &libvirtxml.DomainVCPU{Value: uint(d.m.CPUs)},
		OS:          d.os(),
		Features:    &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}},
		CPU:         cpu,
		// A power-off ends the domain; a reboot restarts it, which the
		// backend sees as a reboot event (on_reboot=destroy would look
		// like a power-off).
		OnPoweroff: "destroy", OnReboot: "restart", OnCrash: "destroy",
		// QEMU runs as qimg's user and group, files keep their owners.
		SecLabel: []libvirtxml.DomainSecLabel{{
			Type: "static", Model: "dac", Relabel: "no",
			Label: "+" + strconv.Itoa(d.uid) + ":+" + strconv.Itoa(d.gid),
		}},
		Devices: d.devices(),
	}
	return dom.Marshal()
}

// os is the domain's boot: SeaBIOS or OVMF (code read-only, the caller's
// copy of the variables), and a kernel booted directly when there is one.
func (d domain) os() *libvirtxml.DomainOS {
	o := &libvirtxml.DomainOS{
		Type:   &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"},
		Kernel: d.m.Kernel, Initrd: d.m.Initrd, Cmdline: d.m.Append,
	}
	if d.m.UEFI != nil {
		o.Loader = &libvirtxml.DomainLoader{Path: d.m.UEFI.Code, Readonly: "yes", Type: "pflash"}
		o.NVRam = &libvirtxml.DomainNVRam{NVRam: d.m.UEFI.Vars}
	}
	return o
}

// devices are the disk, the CD-ROMs, one NIC on the user network without
// a boot ROM, an entropy source and the serial console in a file; no
// graphics, no memory balloon, no USB.
func (d domain) devices() *libvirtxml.DomainDeviceList {
	port := uint(0)
	none := uint(0)
	return &libvirtxml.DomainDeviceList{
		Disks:       d.disks(),
		Controllers: []libvirtxml.DomainController{{Type: "usb", Index: &none, Model: "none"}},
		Interfaces:  []libvirtxml.DomainInterface{d.nic()},
		Serials: []libvirtxml.DomainSerial{{
			Source: &libvirtxml.DomainChardevSource{File: &libvirtxml.DomainChardevSourceFile{Path: d.console}},
			Target: &libvirtxml.DomainSerialTarget{Port: &port},
		}},
		MemBalloon: &libvirtxml.DomainMemBalloon{Model: "none"},
		RNGs: []libvirtxml.DomainRNG{{
			Model:   "virtio",
			Backend: &libvirtxml.DomainRNGBackend{Random: &libvirtxml.DomainRNGBackendRandom{Device: "/dev/urandom"}},
		}},
	}
}

// disks are the target disk (boot order 1; virtio or SATA), the
// installer's ISO and the seed on IDE (the ISO bootable after the disk
// when no kernel is booted directly), and the other ISOs on SATA.
func (d domain) disks() []libvirtxml.DomainDisk {
	format, cache := d.m.DiskFormat, "writeback"
	bus, dev := "virtio", "vda"
	if d.m.DiskBus == boot.BusSATA {
		bus, dev = "sata", "sda"
	}
	disks := []libvirtxml.DomainDisk{{
		Device: "disk",
		Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: format, Cache: cache, Discard: "unmap"},
		Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: d.m.Disk}},
		Target: &libvirtxml.DomainDiskTarget{Dev: dev, Bus: bus},
		Boot:   &libvirtxml.DomainDeviceBoot{Order: 1},
	}}
	ide := []string{"hdc", "hdd"}
	if d.m.CDROM != "" {
		cd := cdrom(d.m.CDROM, ide[0], "ide")
		if d.m.Kernel == "" {
			cd.Boot = &libvirtxml.DomainDeviceBoot{Order: 2}
		}
		disks = append(disks, cd)
	}
	if d.m.Seed != "" && d.seedISO {
		disks = append(disks, cdrom(d.m.Seed, ide[1], "ide"))
	} else if d.m.Seed != "" {
		seed := cdrom(d.m.Seed, "vdb", "virtio")
		seed.Device = "disk"
		disks = append(disks, seed)
	}
	sata := 0
	if bus == "sata" {
		sata = 1
	}
	for i, iso := range d.m.CDROMs {
		disks = append(disks, cdrom(iso, "sd"+string(rune('a'+sata+i)), "sata"))
	}
	return disks
}

// cdrom is a read-only raw CD-ROM holding iso on bus as dev.
func cdrom(iso, dev, bus string) libvirtxml.DomainDisk {
	return libvirtxml.DomainDisk{
		Device:   "cdrom",
		Driver:   &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"},
		Source:   &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: iso}},
		Target:   &libvirtxml.DomainDiskTarget{Dev: dev, Bus: bus},
		ReadOnly: &libvirtxml.DomainDiskReadOnly{},
	}
}

// nic is the domain's network card on QEMU's user network: virtio or
// e1000, without a boot ROM (a disk that does not boot is not followed by
// network boot attempts).
func (d domain) nic() libvirtxml.DomainInterface {
	model := "virtio"
	if d.m.NIC == boot.NICE1000 {
		model = "e1000"
	}
	return libvirtxml.DomainInterface{
		Source: &libvirtxml.DomainInterfaceSource{User: &libvirtxml.DomainInterfaceSourceUser{}},
		Model:  &libvirtxml.DomainInterfaceModel{Type: model},
		ROM:    &libvirtxml.DomainROM{Enabled: "no"},
	}
}
