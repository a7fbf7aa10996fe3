package boot

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// Accelerators.
const (
	KVM = "kvm"
	TCG = "tcg"
)

// machine is one QEMU virtual machine to start.
type machine struct {
	name   string // "" is qimg-boot-test
	accel  string
	memory int // MiB
	cpus   int
	disk   string // the throwaway overlay, or the disk an installer writes
	// diskFormat is the disk's format, "" for qcow2; a disk that is
	// written for good (not an overlay) is opened with cache=writeback,
	// so that the guest's flushes reach it.
	diskFormat string
	keepDisk   bool
	seed       string // "" for none
	seedISO    bool   // attach the seed as a CD-ROM (else a read-only disk)
	cdrom      string // an installer ISO, read-only; "" for none
	// bootCDROM boots cdrom when the disk holds nothing to boot (an
	// installer that is booted from its medium, not directly).
	bootCDROM bool
	cdroms    []string // more ISOs, read-only, on the SATA controller
	diskBus   string   // "" or BusVirtio, or BusSATA
	nic       string   // "" or NICVirtio, or NICE1000
	uefi      *UEFI    // nil for SeaBIOS
	reboots   bool     // a guest reboot restarts it (else QEMU exits)
	// kernel, initrd and appendArgs boot a kernel directly (QEMU's
	// -kernel, -initrd, -append) instead of the disk; kernel "" for none.
	kernel, initrd, appendArgs string
	mac                        string
	qmp                        string // path of the QMP socket
	// events, if not empty, is a second QMP socket on which QEMU waits
	// for a client before it starts the guest, so that the client sees
	// every event (the guest powering off).
	events string
}

// args is QEMU's command line (without the program). The console is the
// first serial port on standard output; nothing else is attached
// (-nodefaults): no display, no default NIC or drives. -no-reboot makes a
// guest that reboots (as on a panic) end the test instead of looping.
func (m machine) args() []string {
	name, diskFormat, cache := m.name, m.diskFormat, "unsafe"
	if name == "" {
		name = "qimg-boot-test"
	}
	if diskFormat == "" {
		diskFormat = "qcow2"
	}
	if m.keepDisk {
		cache = "writeback"
	}
	a := []string{
		"-nodefaults", "-no-user-config", "-name", name,
		// graphics=off makes SeaBIOS write to the serial port too: its
		// banner times the firmware, "No bootable device" fails fast.
		"-machine", "pc,graphics=off", "-display", "none",
		"-m", strconv.Itoa(m.memory), "-smp", strconv.Itoa(m.cpus),
		// No spawning or privileges for a process that runs untrusted
		// guest code.
		"-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
		"-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console",
		"-qmp", "unix:" + qemuEscape(m.qmp) + ",server=on,wait=off",
		// cache=unsafe for an overlay: it is thrown away, so flushes
		// are wasted time.
		"-drive", "file=" + qemuEscape(m.disk) + ",format=" + diskFormat + ",if=none,id=disk,cache=" + cache + ",discard=unmap",
		"-netdev", "user,id=net0",
		"-boot", "strict=on", // the disk (and a bootCDROM) only, not the seed or a floppy
		// Entropy for a guest that makes ssh host keys on first boot.
		"-device", "virtio-rng-pci",
	}
	a = append(a, m.diskArgs()...)
	a = append(a, m.nicArgs()...)
	if !m.reboots {
		a = append(a, "-no-reboot")
	}
	a = append(a, m.firmwareArgs()...)
	if m.accel == KVM {
		a = append(a, "-accel", "kvm", "-cpu", "host")
	} else {
		a = append(a, "-accel", "tcg,thread=multi")
	}
	if m.events != "" {
		a = append(a, "-qmp", "unix:"+qemuEscape(m.events)+",server=on,wait=on")
	}
	a = append(a, m.cdromArgs()...)
	if m.kernel != "" {
		a = append(a, "-kernel", m.kernel, "-append", m.appendArgs)
		if m.initrd != "" {
			a = append(a, "-initrd", m.initrd)
		}
	}
	return a
}

// diskArgs attach the disk, first in the boot order, on virtio or on a
// SATA (AHCI) controller, whose other ports take the CD-ROMs of cdroms.
func (m machine) diskArgs() []string {
	if m.diskBus != BusSATA {
		return []string{"-device", "virtio-blk-pci,drive=disk,bootindex=1"}
	}
	return []string{"-device", "ahci,id=sata", "-device", "ide-hd,drive=disk,bus=sata.0,bootindex=1"}
}

// nicArgs attach one NIC on QEMU's user network. romfile=: no iPXE, so a
// disk that does not boot is not followed by seconds of network boot
// attempts.
func (m machine) nicArgs() []string {
	model := "virtio-net-pci"
	if m.nic == NICE1000 {
		model = "e1000"
	}
	return []string{"-device", model + ",netdev=net0,romfile=,mac=" + m.mac}
}

// firmwareArgs load OVMF as two flash devices (code read-only, variables
// writable) for UEFI; nothing for SeaBIOS.
func (m machine) firmwareArgs() []string {
	if m.uefi == nil {
		return nil
	}
	return []string{
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + qemuEscape(m.uefi.Code),
		"-drive", "if=pflash,format=raw,unit=1,file=" + qemuEscape(m.uefi.Vars),
	}
}

// cdromArgs attach the installer's ISO and the seed on the IDE buses, the
// installer's bootable after the disk when bootCDROM, and the other ISOs
// on the SATA controller (after a SATA disk's port).
func (m machine) cdromArgs() []string {
	var a []string
	if m.cdrom != "" && m.bootCDROM {
		a = append(a, "-drive", "file="+qemuEscape(m.cdrom)+",format=raw,if=none,id=cdrom,media=cdrom,readonly=on",
			"-device", "ide-cd,drive=cdrom,bus=ide.1,unit=0,bootindex=2")
	} else if m.cdrom != "" {
		a = append(a, "-drive", "file="+qemuEscape(m.cdrom)+",format=raw,if=ide,media=cdrom,readonly=on")
	}
	if m.seed != "" {
		if m.seedISO {
			a = append(a, "-drive", "file="+qemuEscape(m.seed)+",format=raw,if=ide,media=cdrom,readonly=on")
		} else {
			a = append(a, "-drive", "file="+qemuEscape(m.seed)+",format=raw,if=virtio,readonly=on")
		}
	}
	if len(m.cdroms) > 0 && m.diskBus != BusSATA {
		a = append(a, "-device", "ahci,id=sata")
	}
	for i, iso := range m.cdroms {
		id := "cd" + strconv.Itoa(i)
		a = append(a, "-drive", "file="+qemuEscape(iso)+",format=raw,if=none,id="+id+",media=cdrom,readonly=on",
			"-device", "ide-cd,drive="+id+",bus=sata."+strconv.Itoa(i+1))
	}
	return a
}

// qemuEscape escapes a value inside a QEMU option list, where a comma
// separates options and ",," stands for one comma.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// detectAccel picks KVM when /dev/kvm opens for reading and writing (the
// module is loaded and we may use it), TCG otherwise.
func detectAccel() string {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return TCG
	}
	f.Close()
	return KVM
}

// randomMAC returns a random unicast, locally administered MAC address
// outside QEMU's default range 52:54:00 (which images built under QEMU
// have seen), so the guest meets a NIC it has never seen: configuration
// bound to an old MAC address shows up as a network that does not come
// up.
func randomMAC() (string, error) {
	b := make([]byte, 6)
	for {
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		b[0] = b[0]&^0x01 | 0x02 // unicast, locally administered
		if b[0] != 0x52 || b[1] != 0x54 || b[2] != 0x00 {
			return net.HardwareAddr(b).String(), nil
		}
	}
}

// checkMAC accepts a MAC address given by the caller if it is a unicast
// Ethernet address.
func checkMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("MAC address %q is not a 6-byte Ethernet address", s)
	}
	if hw[0]&0x01 != 0 {
		return "", fmt.Errorf("MAC address %q is a multicast address", s)
	}
	return hw.String(), nil
}
