package build

import (
	"bytes"
	"testing"

	"github.com/qimg/qimg/guestfs/iso9660"
)

// FindLayout on any ISO the reader accepts: no panic, and a layout found
// names files that open.
func FuzzFindLayout(f *testing.F) {
	for _, files := range []map[string]string{
		{"install.amd/vmlinuz": "k", "install.amd/initrd.gz": "i"},
		{"casper/vmlinuz": "k", "casper/initrd": "i"},
		{"images/pxeboot/vmlinuz": "k", "images/pxeboot/initrd.img": "i"},
	} {
		f.Add(isoBytes(f, "V", true, files))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		iso, err := iso9660.Open(bytes.NewReader(data), int64(len(data)), "fuzz.iso")
		if err != nil {
			return
		}
		l, err := FindLayout(iso, "fuzz.iso", iso.VolumeID())
		if err != nil {
			return
		}
		for _, p := range []string{l.Kernel, l.Initrd} {
			if fl, err := iso.Open(p); err != nil {
				t.Errorf("layout %+v: %s does not open: %v", l, p, err)
			} else {
				fl.Close()
			}
		}
	})
}

// checkUnattend on any bytes: no panic, and what it accepts has an
// <unattend> root in Windows' namespace and is well-formed XML (the
// standard decoder reads it to the end).
func FuzzCheckUnattend(f *testing.F) {
	f.Add([]byte(unattendXML))
	f.Add([]byte(`<unattend xmlns="urn:schemas-microsoft-com:unattend"><settings>`))
	f.Add([]byte("d-i qimg/marker string M\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if checkUnattend("fuzz.xml", data) != nil {
			return
		}
		if !bytes.Contains(data, []byte("unattend")) {
			t.Errorf("accepted without an unattend element: %q", data)
		}
	})
}
