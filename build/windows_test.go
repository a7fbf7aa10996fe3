package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/qimg/qimg/boot"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

// unattendXML is a minimal Windows answer file that ends setup with a
// power-off.
const unattendXML = `<?xml version="1.0" encoding="utf-8"?>
<unattend xmlns="urn:schemas-microsoft-com:unattend">
  <settings pass="oobeSystem">
    <component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS">
      <FirstLogonCommands>
        <SynchronousCommand wcm:action="add" xmlns:wcm="http://schemas.microsoft.com/WMIConfig/2002/State">
          <Order>1</Order>
          <CommandLine>shutdown /s /t 0</CommandLine>
        </SynchronousCommand>
      </FirstLogonCommands>
    </component>
  </settings>
</unattend>
`

// windowsMedia prepares a Windows install (no Windows here: any file
// stands for its ISO) and returns the options, what prepare made and the
// machine.
func windowsMedia(t *testing.T, dir string, o Options) (Options, media, boot.Machine) {
	t.Helper()
	o.OS, o.ISO, o.Answers, o.Output = "windows", filepath.Join(dir, "win.iso"), filepath.Join(dir, "autounattend.xml"), filepath.Join(dir, "win.qcow2")
	for _, f := range []string{o.ISO, o.Answers} {
		if err := os.WriteFile(f, []byte(unattendXML), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o, err := o.resolved()
	if err != nil {
		t.Fatal(err)
	}
	m, err := prepare(context.Background(), o, []byte(unattendXML), dir)
	if err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, "disk.qcow2")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return o, m, o.machine(m, disk)
}

// The answer medium is an ISO 9660 image whose Joliet tree holds
// autounattend.xml as given: isoinfo reads it back.
func TestWindowsAnswerMedium(t *testing.T) {
	qemutest.Need(t, "isoinfo")
	dir := t.TempDir()
	_, m, _ := windowsMedia(t, dir, Options{})
	if len(m.cdroms) != 1 {
		t.Fatalf("cdroms %v", m.cdroms)
	}
	medium := m.cdroms[0]
	if got := qemutest.Run(t, "isoinfo", "-i", medium, "-J", "-x", "/"+autounattendName); got != unattendXML {
		t.Errorf("isoinfo -J -x reads %q", got)
	}
	if list := qemutest.Run(t, "isoinfo", "-i", medium, "-J", "-f"); strings.TrimSpace(list) != "/"+autounattendName {
		t.Errorf("Joliet tree: %q", list)
	}
	if d := qemutest.Run(t, "isoinfo", "-i", medium, "-d"); !strings.Contains(d, "Volume id: "+autounattendVolume) ||
		!strings.Contains(d, "Joliet with UCS level 3") {
		t.Errorf("isoinfo -d:\n%s", d)
	}
}

// Answer files that are not Windows' are refused before anything starts.
func TestWindowsRefusesOtherAnswers(t *testing.T) {
	for _, bad := range []string{
		"d-i qimg/marker string M\n",
		`<?xml version="1.0"?><unattend><settings/></unattend>`,
		`<unattend xmlns="urn:schemas-microsoft-com:unattend"><settings>`,
		"",
	} {
		if err := checkUnattend("a.xml", []byte(bad)); !errors.Is(err, image.ErrInvalidArgument) {
			t.Errorf("checkUnattend(%q) = %v", bad, err)
		}
	}
	if err := checkUnattend("a.xml", []byte(unattendXML)); err != nil {
		t.Error(err)
	}
	dir := t.TempDir()
	for _, o := range []Options{
		{OS: "windows", Kernel: "k", Initrd: "i"},
		{OS: "windows", Append: "x"},
		{Drivers: "virtio-win.iso"},
		{Firmware: "coreboot"},
	} {
		o.ISO, o.Answers, o.Output = "i.iso", "a", filepath.Join(dir, "o.qcow2")
		if _, err := o.resolved(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

// The Windows domain, structurally: booted from the installer's ISO
// after the empty disk, the answer medium and the driver ISO on SATA, the
// disk and NIC on SATA and e1000 without drivers and virtio with them,
// reboots restart the domain, OVMF with the copy of its variables; the
// Glance properties say the same.
func TestWindowsDomainXML(t *testing.T) {
	dir := t.TempDir()
	drivers := filepath.Join(dir, "virtio-win.iso")
	if err := os.WriteFile(drivers, []byte("drivers"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		o              Options
		bus, dev, nic  string
		cdroms         int
		wantProperties map[string]string
	}{
		{Options{}, "sata", "sda", "e1000", 1,
			map[string]string{"os_type": "windows", "hw_disk_bus": "sata", "hw_vif_model": "e1000"}},
		{Options{Drivers: drivers, Firmware: UEFI}, "virtio", "vda", "virtio", 2,
			map[string]string{"os_type": "windows", "hw_disk_bus": "virtio", "hw_vif_model": "virtio", "hw_firmware_type": "uefi"}},
	} {
		sub := t.TempDir()
		o, m, machine := windowsMedia(t, sub, c.o)
		if got := glanceProperties(o, m); !equalMaps(got, c.wantProperties) {
			t.Errorf("properties %v, want %v", got, c.wantProperties)
		}
		dom := parseDomain(t, domain{name: "qimg-build-test", console: filepath.Join(sub, "console.log"), m: machine})
		disks := dom.Devices.Disks
		if len(disks) != 2+c.cdroms {
			t.Fatalf("%d disks", len(disks))
		}
		if d := disks[0]; d.Target.Bus != c.bus || d.Target.Dev != c.dev || d.Boot == nil || d.Boot.Order != 1 || d.Driver.Type != "qcow2" {
			t.Errorf("disk %+v %+v", d.Target, d.Boot)
		}
		if cd := disks[1]; cd.Device != "cdrom" || cd.Source.File.File != o.ISO || cd.Boot == nil || cd.Boot.Order != 2 || cd.ReadOnly == nil {
			t.Errorf("installer CD-ROM %+v", cd)
		}
		for _, cd := range disks[2:] {
			if cd.Device != "cdrom" || cd.Target.Bus != "sata" || cd.Boot != nil || cd.ReadOnly == nil {
				t.Errorf("CD-ROM %+v %+v", cd.Target, cd.Source.File)
			}
		}
		if !strings.HasSuffix(disks[2].Source.File.File, "autounattend.iso") {
			t.Errorf("answer medium %s", disks[2].Source.File.File)
		}
		if nic := dom.Devices.Interfaces[0]; nic.Model.Type != c.nic || nic.Source.User == nil {
			t.Errorf("NIC %+v", nic.Model)
		}
		if dom.OnReboot != "restart" || dom.OnPoweroff != "destroy" || dom.OS.Kernel != "" {
			t.Errorf("on_reboot %s, on_poweroff %s, kernel %q", dom.OnReboot, dom.OnPoweroff, dom.OS.Kernel)
		}
		uefi := dom.OS.Loader != nil && dom.OS.Loader.Type == "pflash" && dom.OS.Loader.Readonly == "yes" &&
			dom.OS.NVRam != nil && dom.OS.NVRam.NVRam == filepath.Join(sub, "OVMF_VARS.fd")
		if uefi != (c.o.Firmware == UEFI) {
			t.Errorf("loader %+v, nvram %+v", dom.OS.Loader, dom.OS.NVRam)
		}
	}
}

// parseDomain renders d's XML and parses it back.
func parseDomain(t *testing.T, d domain) *libvirtxml.Domain {
	t.Helper()
	x, err := d.xml()
	if err != nil {
		t.Fatal(err)
	}
	var dom libvirtxml.Domain
	if err := dom.Unmarshal(x); err != nil {
		t.Fatalf("%v\n%s", err, x)
	}
	if dom.Devices == nil || len(dom.Devices.Interfaces) != 1 || len(dom.SecLabel) != 1 || dom.SecLabel[0].Relabel != "no" {
		t.Fatalf("domain:\n%s", x)
	}
	return &dom
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
