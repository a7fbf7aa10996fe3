package format

import (
	"encoding/binary"
	"errors"
	"io"
	"os"

	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/format/vdi"
	"github.com/qimg/qimg/format/vhd"
	"github.com/qimg/qimg/format/vhdx"
	"github.com/qimg/qimg/format/vmdk"
)

// Format names, as qemu-img spells them.
const (
	Raw   = "raw"
	QCOW2 = "qcow2"
	VMDK  = "vmdk"
	VHDX  = "vhdx"
	VDI   = "vdi"
	VPC   = "vpc" // VHD, named after Virtual PC as in qemu-img
)

// probeSize is how much of a file probing looks at.
const probeSize = 4096

// detectors recognise formats from the start of a file, in the order
// probing tries them. A fixed VHD has its only footer at the end: like
// qemu-img, probing sees it as raw, and an explicit "vpc" opens it.
var detectors = []struct {
	name   string
	detect func(head []byte) bool
}{
	{QCOW2, func(h []byte) bool { return binary.BigEndian.Uint32(h) == qcow2.Magic }},
	{VMDK, vmdk.Detect},
	{VHDX, vhdx.Detect},
	{VDI, vdi.Detect},
	{VPC, vhd.Detect},
}

// Probe tells the format of the file at path from its content.
func Probe(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return ProbeReader(f)
}

// ProbeReader tells the format of an image from its first bytes. Anything
// no format recognises is raw, as in qemu-img.
func ProbeReader(r io.ReaderAt) (string, error) {
	head := make([]byte, probeSize)
	if _, err := r.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	for _, d := range detectors {
		if d.detect(head) {
			return d.name, nil
		}
	}
	return Raw, nil
}

// Formats lists the formats Open reads, as qemu-img names them.
func Formats() []string {
	names := []string{Raw}
	for _, d := range detectors {
		names = append(names, d.name)
	}
	return names
}

// Writable reports whether Open opens images of the format for writing.
func Writable(format string) bool { return format == QCOW2 || format == Raw }
