package qemutest

import (
	"os"
	"path/filepath"
	"testing"
)

// serialBootCode is real-mode x86 code for an MBR at 0x7C00 that writes
// the NUL-terminated text at 0x7C00+len(serialBootCode) to the first
// serial port (COM1, I/O port 0x3F8: QEMU's UART needs no set-up) and
// halts for good:
//
//	xor ax, ax ; mov ds, ax         data segment 0
//	mov si, 0x7C00+len(code)        the text
//	mov dx, 0x3F8                   COM1
//	next: lodsb ; test al, al ; jz stop ; out dx, al ; jmp next
//	stop: cli ; hlt ; jmp stop
var serialBootCode = []byte{
	0x31, 0xC0, 0x8E, 0xD8,
	0xBE, 0x00, 0x00, // address patched below
	0xBA, 0xF8, 0x03,
	0xAC, 0x84, 0xC0, 0x74, 0x03, 0xEE, 0xEB, 0xF8,
	0xFA, 0xF4, 0xEB, 0xFC,
}

// SerialBootDisk writes a 1 MiB raw disk in dir whose boot sector prints
// text on the serial console and halts, and returns its path: a machine
// that "boots" to exactly the console lines a test wants, in a second
// under any firmware that boots BIOS disks. text must fit in the sector
// (at most 420 bytes).
func SerialBootDisk(t testing.TB, dir, text string) string {
	t.Helper()
	sector := make([]byte, 512)
	n := copy(sector, serialBootCode)
	at := 0x7C00 + n
	sector[5], sector[6] = byte(at), byte(at>>8)
	if n+len(text)+1 > 446 { // the partition table starts at 446
		t.Fatalf("SerialBootDisk: text of %d bytes does not fit in the boot sector", len(text))
	}
	copy(sector[n:], text)
	sector[510], sector[511] = 0x55, 0xAA
	path := filepath.Join(dir, "serial-boot.raw")
	disk := make([]byte, 1<<20)
	copy(disk, sector)
	if err := os.WriteFile(path, disk, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
