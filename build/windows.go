package build

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/qimg/qimg/boot"
	"github.com/qimg/qimg/guestfs/iso9660"
	"github.com/qimg/qimg/image"
)

// Windows installs: Windows Setup looks for autounattend.xml in the root
// of every removable drive and CD-ROM, so the answer file goes on a small
// ISO 9660 medium (with Joliet names, as Windows reads them) that Build
// writes, attached as a CD-ROM beside the installer's ISO, which boots
// after the still empty disk. Setup reboots between its phases; the
// answer file must power the machine off at the end (a FirstLogonCommands
// "shutdown /s", or sysprep /generalize /oobe /shutdown). Without a driver
// ISO the disk is on SATA and the NIC an e1000, which Windows drives by
// itself; with one (virtio-win) both are virtio, and the answer file's
// Microsoft-Windows-PnpCustomizationsWinPE DriverPaths must name the
// driver ISO's folders so that Setup sees the disk.

// unattendNamespace is the XML namespace of Windows' answer files.
const unattendNamespace = "urn:schemas-microsoft-com:unattend"

// Names on the answer medium.
const (
	autounattendName   = "autounattend.xml"
	autounattendVolume = "AUTOUNATTEND"
)

// checkUnattend checks that answers is a well-formed XML document whose
// root is Windows' <unattend> element, so that a preseed or kickstart
// file given by mistake fails before a machine starts.
func checkUnattend(name string, answers []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(answers))
	root := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return image.FileErrorf(name, "not a Windows answer file: %w: %w", err, image.ErrInvalidArgument)
		}
		if se, ok := tok.(xml.StartElement); ok && !root {
			if se.Name.Local != "unattend" || se.Name.Space != unattendNamespace {
				return image.FileErrorf(name, "not a Windows answer file: the root element is <%s> in %q, not <unattend> in %q: %w",
					se.Name.Local, se.Name.Space, unattendNamespace, image.ErrInvalidArgument)
			}
			root = true
		}
	}
	if !root {
		return image.FileErrorf(name, "not a Windows answer file: no XML element: %w", image.ErrInvalidArgument)
	}
	return nil
}

// writeAutounattend writes the answer medium to path: an ISO 9660 image
// (Joliet and Rock Ridge) holding answers as /autounattend.xml.
func writeAutounattend(path string, answers []byte) error {
	b := iso9660.NewBuilder()
	if err := b.AddFile(autounattendName, answers, 0o644); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := iso9660.Write(f, b, iso9660.Options{VolumeID: autounattendVolume, Joliet: true, RockRidge: true, Time: time.Now()}); err != nil {
		return err
	}
	return f.Close()
}

// prepareWindows writes the answer medium into dir and describes the
// machine: the installer's ISO booted from after the disk, the medium and
// the driver ISO as more CD-ROMs, the buses by the drivers at hand.
func prepareWindows(o Options, answers []byte, dir string) (media, error) {
	m := media{layout: Layout{Name: "windows"}, reboots: true, diskBus: boot.BusSATA, nic: boot.NICE1000}
	if err := checkUnattend(o.Answers, answers); err != nil {
		return m, err
	}
	medium := filepath.Join(dir, "autounattend.iso")
	if err := writeAutounattend(medium, answers); err != nil {
		return m, err
	}
	m.cdroms = []string{medium}
	if o.Drivers != "" {
		m.cdroms = append(m.cdroms, o.Drivers)
		m.diskBus, m.nic = boot.BusVirtio, boot.NICVirtio
	}
	return m, nil
}

// glanceProperties are the image properties OpenStack needs to boot the
// result as it was installed: the disk bus and NIC model the guest has
// drivers for, the OS type (Nova then keeps the clock in local time, as
// Windows expects) and UEFI firmware.
func glanceProperties(o Options, m media) map[string]string {
	p := map[string]string{}
	if o.OS == "windows" {
		p["os_type"] = "windows"
		p["hw_disk_bus"] = m.bus()
		p["hw_vif_model"] = m.nicModel()
	}
	if o.Firmware == UEFI {
		p["hw_firmware_type"] = "uefi"
	}
	return p
}
