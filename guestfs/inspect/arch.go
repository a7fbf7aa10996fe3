package inspect

import (
	"encoding/binary"
	"io"
	"io/fs"
)

// archBinaries are the files whose ELF header tells a Linux guest's
// architecture, tried in order; symbolic links (/bin -> usr/bin,
// sh -> dash or busybox) are followed inside the guest.
var archBinaries = []string{"bin/sh", "bin/bash", "bin/ls", "usr/bin/ls", "bin/busybox", "usr/bin/env", "bin/true"}

func linuxArch(fsys fs.FS) string {
	for _, p := range archBinaries {
		if a := elfArch(fsys, p); a != "" {
			return a
		}
	}
	return ""
}

// elfMachines are ELF e_machine values by libguestfs's names.
var elfMachines = map[uint16]string{
	3: "i386", 62: "x86_64", 183: "aarch64", 40: "arm", 8: "mips", 20: "ppc",
	22: "s390x", 243: "riscv64", 2: "sparc", 43: "sparc64", 50: "ia64", 258: "loongarch64",
}

// elfArch reads the ELF header of a guest file.
func elfArch(fsys fs.FS, name string) string {
	h := readHead(fsys, name, 20)
	if len(h) < 20 || string(h[:4]) != "\x7fELF" {
		return ""
	}
	var order binary.ByteOrder = binary.LittleEndian
	if h[5] == 2 {
		order = binary.BigEndian
	}
	class64 := h[4] == 2
	switch m := order.Uint16(h[18:]); {
	case m == 21 && h[5] == 1:
		return "ppc64le"
	case m == 21:
		return "ppc64"
	case m == 8 && class64:
		return "mips64"
	case m == 22 && !class64:
		return "s390"
	case m == 243 && !class64:
		return "riscv32"
	default:
		return elfMachines[m]
	}
}

// peMachines are PE COFF machine values.
var peMachines = map[uint16]string{0x14c: "i386", 0x8664: "x86_64", 0xaa64: "aarch64", 0x200: "ia64", 0x1c4: "arm"}

// peArch reads the COFF header of a Windows executable.
func peArch(fsys fs.FS, name string) string {
	h := readHead(fsys, name, 4096)
	if len(h) < 64 || string(h[:2]) != "MZ" {
		return ""
	}
	off := int(binary.LittleEndian.Uint32(h[60:]))
	if off < 0 || off+6 > len(h) || string(h[off:off+4]) != "PE\x00\x00" {
		return ""
	}
	return peMachines[binary.LittleEndian.Uint16(h[off+4:])]
}

// readHead reads up to n bytes from the start of a regular guest file.
func readHead(fsys fs.FS, name string, n int) []byte {
	f, err := fsys.Open(name)
	if err != nil {
		return nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	b := make([]byte, n)
	got, _ := io.ReadFull(f, b)
	return b[:got]
}
