package build

import (
	"os"
	"path/filepath"

	"github.com/qimg/qimg/boot"
	"github.com/qimg/qimg/image"
)

// Firmware of the installer's machine.
const (
	BIOS = "bios" // SeaBIOS
	UEFI = "uefi" // OVMF
)

// ovmfFiles are where distributions keep OVMF's code and the template of
// its variable store (without Secure Boot), tried in order: Debian's ovmf
// package first (4 MiB flash), then its older 2 MiB build, then Fedora's
// edk2-ovmf.
var ovmfFiles = []struct{ code, vars string }{
	{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"},
	{"/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"},
	{"/usr/share/edk2/ovmf/OVMF_CODE.fd", "/usr/share/edk2/ovmf/OVMF_VARS.fd"},
}

// uefiFirmware finds OVMF and copies its variable store template into dir:
// the guest writes its boot entries there, never into the template.
func uefiFirmware(dir string) (*boot.UEFI, error) {
	for _, f := range ovmfFiles {
		if _, err := os.Stat(f.code); err != nil {
			continue
		}
		vars := filepath.Join(dir, "OVMF_VARS.fd")
		if err := copyOut(os.DirFS(filepath.Dir(f.vars)), f.vars, filepath.Base(f.vars), vars, nil); err != nil {
			return nil, err
		}
		return &boot.UEFI{Code: f.code, Vars: vars}, nil
	}
	return nil, image.Errorf(image.ErrUnsupported, "build: no UEFI firmware (OVMF) found in %s or %s (install the ovmf package)",
		filepath.Dir(ovmfFiles[0].code), filepath.Dir(ovmfFiles[2].code))
}
