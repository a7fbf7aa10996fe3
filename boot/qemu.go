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
		"-device", "virtio-blk-pci,drive=disk,bootindex=1",
		"-netdev", "user,id=net0",
		// romfile=: no iPXE, so a disk that does not boot is not
		// followed by seconds of network boot attempts.
		"-device", "virtio-net-pci,netdev=net0,romfile=,mac=" + m.mac,
		"-boot", "strict=on", // the disk only, not the seed or a floppy
		// Entropy for a guest that makes ssh host keys on first boot.
		"-device", "virtio-rng-pci",
		"-no-reboot",
	}
	if m.accel == KVM {
		a = append(a, "-accel", "kvm", "-cpu", "host")
	} else {
		a = append(a, "-accel", "tcg,thread=multi")
	}
	if m.events != "" {
		a = append(a, "-qmp", "unix:"+qemuEscape(m.events)+",server=on,wait=on")
	}
	if m.cdrom != "" {
		a = append(a, "-drive", "file="+qemuEscape(m.cdrom)+",format=raw,if=ide,media=cdrom,readonly=on")
	}
	if m.kernel != "" {
		a = append(a, "-kernel", m.kernel, "-append", m.appendArgs)
		if m.initrd != "" {
			a = append(a, "-initrd", m.initrd)
		}
	}
	if m.seed != "" {
		if m.seedISO {
			a = append(a, "-drive", "file="+qemuEscape(m.seed)+",format=raw,if=ide,media=cdrom,readonly=on")
		} else {
			a = append(a, "-drive", "file="+qemuEscape(m.seed)+",format=raw,if=virtio,readonly=on")
		}
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
