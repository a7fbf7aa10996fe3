package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOverlayOnForeignBase opens qcow2 overlays whose backing file is a
// VDI, VHDX, VHD or VMDK, as qemu-img accepts them: info of the chain,
// map, compare and convert must agree with qemu-img on the same files.
func TestOverlayOnForeignBase(t *testing.T) {
	dir := t.TempDir()
	text := []byte(strings.Repeat("a base of another format\n", 40000))
	data := append(append(append([]byte{}, text...), make([]byte, 3<<20)...), text...)
	if err := os.WriteFile(filepath.Join(dir, "src.raw"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, format, opts string }{
		{"d.vdi", "vdi", "static=off"},
		{"s.vdi", "vdi", "static=on"},
		{"d.vhdx", "vhdx", "subformat=dynamic"},
		{"d.vhd", "vpc", "subformat=dynamic"},
		{"f.vhd", "vpc", "subformat=fixed"},
		{"s.vmdk", "vmdk", "subformat=monolithicSparse"},
		{"o.vmdk", "vmdk", "subformat=streamOptimized"},
		{"m.vmdk", "vmdk", "subformat=monolithicFlat"},
	} {
		t.Run(c.file, func(t *testing.T) {
			img(t, dir, "convert", "-f", "raw", "-O", c.format, "-o", c.opts, "src.raw", c.file)
			ov := c.file + ".ov.qcow2"
			img(t, dir, "create", "-f", "qcow2", "-b", c.file, "-F", c.format, ov)
			qio(t, dir, "qcow2", ov, "write -P 0x6f 1M 64k", "write -z 0 4k")
			same(t, dir, dir, "info", "--backing-chain", ov)
			same(t, dir, dir, "info", "--backing-chain", "--output=json", ov)
			same(t, dir, dir, "map", "--output=json", ov)
			same(t, dir, dir, "compare", ov, "src.raw")
			same(t, dir, dir, "compare", ov, ov)
			out := ov + ".out"
			if r := qimgIn(t, dir, "convert", "-O", "qcow2", ov, out); r.code != 0 {
				t.Fatalf("convert %s: %+v", ov, r)
			}
			img(t, dir, "check", out)
			img(t, dir, "compare", "-F", "qcow2", ov, out)
		})
	}
}
