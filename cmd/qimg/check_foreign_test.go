package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// patchLE writes a little-endian value of len(b) bytes at off of a file.
func patchFile(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// copyImage copies dir/src to dir/dst.
func copyImage(t *testing.T, dir, src, dst string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, src))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, dst)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// truncateBy cuts n bytes off the end of a file, or half of it if n is 0.
func truncateBy(t *testing.T, path string, n int64) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		n = st.Size() / 2
	}
	if err := os.Truncate(path, st.Size()-n); err != nil {
		t.Fatal(err)
	}
}

// TestCheckForeignMatchesQemu checks VDI, VMDK and VHDX images, clean and
// damaged, with both tools: what they print, their JSON and exit codes
// must agree, with and without -r (which QEMU refuses for VDI and VMDK).
func TestCheckForeignMatchesQemu(t *testing.T) {
	dir := t.TempDir()
	writeSource(t, dir, "qimg checks foreign formats\n")
	for _, c := range foreignImages {
		img(t, dir, "convert", "-f", "raw", "-O", c.format, "-o", c.opts, "src.raw", c.file)
	}
	img(t, dir, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=twoGbMaxExtentSparse", "src.raw", "t.vmdk")
	img(t, dir, "convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M", "src.raw", "b.vhdx")
	damaged := []string{}
	damage := func(src, dst string, change func(p string)) {
		change(copyImage(t, dir, src, dst))
		damaged = append(damaged, dst)
	}
	// VDI: the block map starts at 512 and blocks are 1 MiB; d.vdi has 4
	// blocks in its map.
	damage("d.vdi", "dup.vdi", func(p string) { patchFile(t, p, 512+4, le32(0)) })
	damage("d.vdi", "big.vdi", func(p string) { patchFile(t, p, 512+8, le32(1000)) })
	damage("d.vdi", "count.vdi", func(p string) { patchFile(t, p, 0x184, le32(9)) })
	// VMDK: cut in half (grains past the end); a flat extent file emptied.
	damage("s.vmdk", "cut.vmdk", func(p string) { truncateBy(t, p, 0) })
	damage("o.vmdk", "cutstream.vmdk", func(p string) { truncateBy(t, p, 0) })
	damage("m.vmdk", "flat.vmdk", func(p string) {
		if err := os.WriteFile(filepath.Join(dir, "m-flat.vmdk"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	})
	// VHDX with 1 MiB blocks: its BAT is at 2 MiB and the metadata region
	// at 3 MiB, the log at 1 MiB.
	bat := func(i int, v uint64) func(string) {
		return func(p string) { patchFile(t, p, 2<<20+8*int64(i), le64(v)) }
	}
	damage("b.vhdx", "meta.vhdx", bat(1, 3<<20|6))
	damage("b.vhdx", "log.vhdx", bat(2, 1<<20|6))
	damage("b.vhdx", "past.vhdx", bat(3, 100<<20|6))
	damage("b.vhdx", "overflow.vhdx", bat(3, 0xfffffffffff00000|6))
	damage("b.vhdx", "cut.vhdx", func(p string) { truncateBy(t, p, 1536<<10) })

	files := []string{"t.vmdk", "b.vhdx"}
	for _, c := range foreignImages {
		files = append(files, c.file)
	}
	for _, f := range append(files, damaged...) {
		for _, args := range [][]string{
			{"check", f},
			{"check", "--output=json", f},
			{"check", "-r", "all", f},
			{"check", "-r", "leaks", "--output=json", f},
			{"check", "-q", f},
		} {
			same(t, dir, dir, args...)
		}
		if filepath.Ext(f) != ".vhdx" {
			// qimg names what is wrong with a damaged VHDX where QEMU
			// says "Invalid argument"; the others open alike.
			same(t, dir, dir, "info", f)
		}
	}
}
