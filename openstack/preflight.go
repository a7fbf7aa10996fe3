package openstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/image"
)

// ErrRefused marks an image the pre-flight check refuses to upload: one
// Glance would store but Nova refuses to boot (a backing file, an
// external data file, unknown features, a format other than declared), or
// a corrupt one.
var ErrRefused = errors.New("refused before upload")

// GiB is Glance's unit of min_disk.
const GiB = 1 << 30

// Plan is what an upload will send, decided before the first byte goes.
type Plan struct {
	Path string
	// Detected is the file's real format (format.Probe), as qemu-img
	// names it (vpc for VHD).
	Detected string
	// DiskFormat is Glance's disk_format for the data sent.
	DiskFormat string
	// Convert is the format the data is converted to on the way ("" for
	// none): raw is streamed, qcow2 goes through a temporary file.
	Convert string
	// Size is the number of bytes sent.
	Size int64
	// VirtualSize is the guest disk's size.
	VirtualSize int64
	// Warnings are what the user should know but does not stop the upload.
	Warnings []string
}

// glanceFormats maps qemu-img's format names to Glance's disk_format.
var glanceFormats = map[string]string{
	format.Raw: "raw", format.QCOW2: "qcow2", format.VMDK: "vmdk",
	format.VHDX: "vhdx", format.VDI: "vdi", format.VPC: "vhd",
}

// rawLike are Glance disk formats whose data is a plain byte stream: the
// probe sees them as raw.
var rawLike = map[string]bool{"raw": true, "iso": true, "ami": true, "ari": true, "aki": true}

func refused(path, format string, args ...any) error {
	return image.FileErrorf(path, "%s: %w", fmt.Sprintf(format, args...), ErrRefused)
}

// Preflight looks at the image at path as Glance's format inspector and
// Nova would, before anything is sent: the real format against
// diskFormat (empty: take the detected one), a qcow2 header's backing
// file, external data file and feature bits, and the image's own
// consistency check. convert is "", "raw" or "qcow2".
func Preflight(ctx context.Context, path, diskFormat, convertTo string) (*Plan, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, image.FileErrorf(path, "not a regular file: %w", image.ErrInvalidArgument)
	}
	detected, err := format.Probe(path)
	if err != nil {
		return nil, err
	}
	p := &Plan{Path: path, Detected: detected, Size: st.Size()}
	if err := p.chooseFormat(diskFormat, convertTo); err != nil {
		return nil, err
	}
	if detected == format.QCOW2 {
		if err := p.inspectQcow2Header(); err != nil {
			return nil, err
		}
	}
	if err := p.check(ctx); err != nil {
		return nil, err
	}
	if p.Convert == "raw" {
		p.Size = p.VirtualSize
	}
	return p, nil
}

// chooseFormat sets DiskFormat and Convert, refusing a declared format
// that is not what the file holds.
func (p *Plan) chooseFormat(declared, convertTo string) error {
	real, ok := glanceFormats[p.Detected]
	if !ok {
		return refused(p.Path, "format %s has no Glance disk_format", p.Detected)
	}
	switch convertTo {
	case "", "raw", "qcow2":
	default:
		return image.FileErrorf(p.Path, "--convert %s: only raw and qcow2: %w", convertTo, image.ErrInvalidArgument)
	}
	if convertTo == real {
		convertTo = "" // already in that format
	}
	p.Convert = convertTo
	sent := real
	if convertTo != "" {
		sent = convertTo
	}
	p.DiskFormat = sent
	if declared == "" || declared == sent {
		return nil
	}
	if sent == "raw" && rawLike[declared] {
		if declared == "iso" && !p.isISO() {
			return refused(p.Path, "declared iso, but the file has no ISO 9660 volume descriptor")
		}
		p.DiskFormat = declared
		return nil
	}
	what := "the file is " + real
	if convertTo != "" {
		what = "the converted data is " + convertTo
	}
	return refused(p.Path, "--disk-format %s, but %s (Glance would store it as %s and Nova would refuse to boot it)", declared, what, declared)
}

// isISO reports whether the file has an ISO 9660 primary volume
// descriptor ("CD001" at byte 32769).
func (p *Plan) isISO() bool {
	f, err := os.Open(p.Path)
	if err != nil {
		return false
	}
	defer f.Close()
	id := make([]byte, 5)
	_, err = f.ReadAt(id, 32769)
	return err == nil && string(id) == "CD001"
}

// maxQcow2Header is the largest first cluster (2 MiB) ParseHeader needs.
const maxQcow2Header = 2 << 20

// inspectQcow2Header refuses what Glance's format inspector and Nova
// (CVE-2024-32498) refuse: a backing file, an external data file,
// incompatible features qimg does not know; it warns about zstd
// compression, which older QEMU and many tools cannot read.
func (p *Plan) inspectQcow2Header() error {
	f, err := os.Open(p.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf, err := io.ReadAll(io.LimitReader(f, maxQcow2Header))
	if err != nil {
		return err
	}
	h, err := qcow2.ParseHeader(buf)
	if err != nil {
		return refused(p.Path, "qcow2 header: %v", err)
	}
	if h.BackingFile != "" {
		return refused(p.Path, "qcow2 image has a backing file %q: only its own layer would be uploaded, and Nova refuses such images (flatten it with qimg convert first)", h.BackingFile)
	}
	if h.IncompatibleFeatures&qcow2.IncompatDataFile != 0 || h.DataFile != "" {
		return refused(p.Path, "qcow2 image keeps its data in an external file %q: Glance would get the metadata only, and Nova refuses such images (convert it first)", h.DataFile)
	}
	if h.IncompatibleFeatures&qcow2.IncompatCorrupt != 0 {
		return refused(p.Path, "qcow2 image is marked corrupt (run qimg check -r all)")
	}
	if h.CompressionType == qcow2.CompressionZstd {
		p.warn("qcow2 image uses zstd compression: QEMU before 5.1 and many tools cannot read it (convert with -o compression_type=zlib for the widest support)")
	}
	if h.CryptMethod != 0 {
		p.warn("qcow2 image is encrypted (%s): it boots only where the cloud has its secret", h.EncryptionName())
	}
	return nil
}

func (p *Plan) warn(format string, args ...any) {
	p.Warnings = append(p.Warnings, fmt.Sprintf(format, args...))
}

// check opens the image with no file outside it allowed (a VMDK extent
// or qcow2 backing file naming a host file is refused) and runs its
// consistency check, as qimg check does.
func (p *Plan) check(ctx context.Context) error {
	img, _, err := format.Open(p.Path, format.OpenOptions{Format: p.Detected, Backing: image.RefuseBacking, ForCheck: true})
	if err != nil {
		if errors.Is(err, image.ErrBackingRefused) {
			return refused(p.Path, "the image names other files (%v)", err)
		}
		return refused(p.Path, "does not open as %s: %v", p.Detected, err)
	}
	defer img.Close()
	p.VirtualSize = img.Size()
	if err := p.selfContained(img); err != nil {
		return err
	}
	checker, ok := img.(image.Checker)
	if !ok {
		return nil
	}
	res, err := checker.Check(ctx, image.RepairNone)
	if err != nil {
		return refused(p.Path, "check failed: %v", err)
	}
	switch {
	case res.CheckErrors > 0 || res.Corruptions > 0:
		return refused(p.Path, "check found %d corruptions and %d errors (qimg check %s)", res.Corruptions, res.CheckErrors, p.Path)
	case res.Leaks > 0:
		p.warn("check found %d leaked clusters (harmless; qimg check -r leaks frees them)", res.Leaks)
	}
	return nil
}

// selfContained refuses an image whose data lives in other files (a
// VMDK descriptor with flat or sparse extent files): Glance would store
// the descriptor alone, and Nova refuses it at boot.
func (p *Plan) selfContained(img image.Image) error {
	d, ok := img.(image.Describer)
	if !ok {
		return nil
	}
	desc, err := d.Describe()
	if err != nil {
		return refused(p.Path, "describing the image: %v", err)
	}
	self, err := os.Stat(p.Path)
	if err != nil {
		return err
	}
	for _, f := range desc.UsageFiles {
		if st, err := os.Stat(image.ResolveName(p.Path, f)); err != nil || !os.SameFile(st, self) {
			return refused(p.Path, "the image names other files (its data is in %q): only a single-file image can be uploaded", f)
		}
	}
	return nil
}

// MinDisk is the smallest min_disk (GiB) that holds the virtual disk.
func (p *Plan) MinDisk() int { return int((p.VirtualSize + GiB - 1) / GiB) }
