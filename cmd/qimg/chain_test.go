package main

import (
	"testing"
)

// TestOverlayOnForeignBase opens qcow2 overlays whose backing file is a
// VDI, VHDX, VHD or VMDK, as qemu-img accepts them: info of the chain,
// map, compare and convert must agree with qemu-img on the same files.
func TestOverlayOnForeignBase(t *testing.T) {
	dir := t.TempDir()
	writeSource(t, dir, "a base of another format\n")
	for _, c := range foreignImages {
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
