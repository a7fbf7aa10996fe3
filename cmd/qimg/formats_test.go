package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// foreignImages are the images of other formats that the tests make
// from src.raw with qemu-img convert -O format -o opts.
var foreignImages = []struct{ file, format, opts string }{
	{"d.vdi", "vdi", "static=off"},
	{"s.vdi", "vdi", "static=on"},
	{"d.vhdx", "vhdx", "subformat=dynamic"},
	{"f.vhdx", "vhdx", "subformat=fixed"},
	{"d.vhd", "vpc", "subformat=dynamic"},
	{"f.vhd", "vpc", "subformat=fixed"},
	{"s.vmdk", "vmdk", "subformat=monolithicSparse"},
	{"o.vmdk", "vmdk", "subformat=streamOptimized"},
	{"m.vmdk", "vmdk", "subformat=monolithicFlat"},
}

// writeSource writes dir/src.raw: lines of text, a zero gap (for map) and
// the text again.
func writeSource(t *testing.T, dir, line string) {
	t.Helper()
	text := []byte(strings.Repeat(line, 40000))
	data := append(append(append([]byte{}, text...), make([]byte, 3<<20)...), text...)
	if err := os.WriteFile(filepath.Join(dir, "src.raw"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestForeignFormats runs the read-only commands on VDI, VHDX, VHD and
// VMDK images made by qemu-img: info, map and measure must print what
// qemu-img prints, and convert to qcow2 must hold the same data.
func TestForeignFormats(t *testing.T) {
	dir := t.TempDir()
	writeSource(t, dir, "qimg reads foreign formats\n")
	for _, c := range foreignImages {
		img(t, dir, "convert", "-f", "raw", "-O", c.format, "-o", c.opts, "src.raw", c.file)
		same(t, dir, dir, "info", c.file)
		same(t, dir, dir, "info", "--output=json", c.file)
		same(t, dir, dir, "info", "-f", c.format, c.file)
		same(t, dir, dir, "map", "--output=json", c.file)
		same(t, dir, dir, "map", c.file)
		same(t, dir, dir, "compare", "-f", c.format, c.file, "src.raw")
		same(t, dir, dir, "measure", "-O", "qcow2", c.file)
		same(t, dir, dir, "measure", "--output=json", "-O", "qcow2", "-o", "cluster_size=4k", c.file)
		same(t, dir, dir, "measure", "-O", "raw", c.file)
		out := c.file + ".qcow2"
		if r := qimgIn(t, dir, "convert", "-f", c.format, "-O", "qcow2", "-c", c.file, out); r.code != 0 {
			t.Fatalf("convert %s: %+v", c.file, r)
		}
		img(t, dir, "check", out)
		img(t, dir, "compare", "-f", c.format, "-F", "qcow2", c.file, out)
	}
	// A format qimg reads but does not write is refused as an output.
	same(t, dir, dir, "convert", "-O", "bogus", "src.raw", "x")
	// streamOptimized VMDK output: checked and read back by qemu-img.
	if r := qimgIn(t, dir, "convert", "-O", "vmdk", "-o", "subformat=streamOptimized,adapter_type=lsilogic", "src.raw", "out.vmdk"); r.code != 0 {
		t.Fatalf("convert -O vmdk: %+v", r)
	}
	img(t, dir, "check", "out.vmdk")
	img(t, dir, "compare", "-F", "vmdk", "src.raw", "out.vmdk")
	if r := qimgIn(t, dir, "convert", "-O", "vmdk", "src.raw", "sparse.vmdk"); r.code == 0 || !strings.Contains(r.stderr, "streamOptimized") {
		t.Errorf("a VMDK subformat qimg cannot write must be refused naming the one it can: %+v", r)
	}
	// VHD outputs read back in qemu-img like qemu-img's own.
	for _, opts := range []string{"subformat=dynamic", "subformat=fixed", "force_size=on"} {
		img(t, dir, "convert", "-O", "vpc", "-o", opts, "src.raw", "q.vhd")
		if r := qimgIn(t, dir, "convert", "-O", "vpc", "-o", opts, "src.raw", "i.vhd"); r.code != 0 {
			t.Fatalf("convert -O vpc -o %s: %+v", opts, r)
		}
		same(t, dir, dir, "info", "-f", "vpc", "i.vhd")
		img(t, dir, "compare", "-f", "vpc", "-F", "vpc", "q.vhd", "i.vhd")
	}
}
