package build

import (
	"io"
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

// maxVars bounds the variable store copied (OVMF's are 128 KiB to 4 MiB).
const maxVars = 64 << 20

// uefiFirmware finds OVMF and copies its variable store template into dir:
// the guest writes its boot entries there, never into the template.
func uefiFirmware(dir string) (*boot.UEFI, error) {
	for _, f := range ovmfFiles {
		if _, err := os.Stat(f.code); err != nil {
			continue
		}
		vars := filepath.Join(dir, "OVMF_VARS.fd")
		if err := copyFile(f.vars, vars); err != nil {
			return nil, err
		}
		return &boot.UEFI{Code: f.code, Vars: vars}, nil
	}
	return nil, image.Errorf(image.ErrUnsupported, "build: no UEFI firmware (OVMF) found in %s or %s (install the ovmf package)",
		filepath.Dir(ovmfFiles[0].code), filepath.Dir(ovmfFiles[2].code))
}

// copyFile copies src to the new file dst (mode 0600), at most maxVars
// bytes.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	n, err := io.Copy(out, io.LimitReader(in, maxVars+1))
	if err != nil {
		return err
	}
	if n > maxVars {
		return image.FileErrorf(src, "larger than %d MiB: %w", maxVars>>20, image.ErrUnsupported)
	}
	return out.Close()
}
