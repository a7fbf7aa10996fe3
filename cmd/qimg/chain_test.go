package main

import (
	"os"
	"path/filepath"
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

// TestRebaseUnsafeMissingBacking renames the backing file of an overlay
// whose old backing file is gone, the case rebase -u is for: qemu-img
// never opens the old file, and neither may qimg.
func TestRebaseUnsafeMissingBacking(t *testing.T) {
	var dirs [2]string
	for i := range dirs {
		dirs[i] = t.TempDir()
		if err := os.Mkdir(filepath.Join(dirs[i], "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		img(t, dirs[i], "create", "-q", "-f", "raw", "sub/r.raw", "1M")
		img(t, dirs[i], "create", "-q", "-f", "qcow2", "-b", "gone.raw", "-F", "raw", "-u", "sub/ov.qcow2", "1M")
	}
	same(t, dirs[0], dirs[1], "rebase", "-u", "-b", "r.raw", "-F", "raw", "sub/ov.qcow2")
	same(t, dirs[0], dirs[1], "info", "sub/ov.qcow2")
}
