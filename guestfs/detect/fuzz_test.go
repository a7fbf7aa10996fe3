package detect_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/qimg/qimg/guestfs/detect"
)

// signatures builds small devices carrying each signature, some with
// hostile fields (an LVM label header pointing past its sector).
func signatures() [][]byte {
	dev := func(n int, edit func(b []byte)) []byte {
		b := make([]byte, n)
		edit(b)
		return b
	}
	return [][]byte{
		dev(2048, func(b []byte) { binary.LittleEndian.PutUint16(b[1080:], 0xEF53) }),
		dev(512, func(b []byte) { copy(b, "XFSB") }),
		dev(1024, func(b []byte) {
			copy(b[512:], "LABELONE")
			copy(b[512+24:], "LVM2 001")
			binary.LittleEndian.PutUint32(b[512+20:], 0xffffffff)
		}),
		dev(512, func(b []byte) { copy(b, "LUKS\xba\xbe\x00\x02") }),
		dev(4096, func(b []byte) { copy(b[4086:], "SWAPSPACE2") }),
		dev(512, func(b []byte) { copy(b[82:], "FAT32   "); b[510], b[511] = 0x55, 0xAA }),
		dev(36864, func(b []byte) { b[32768] = 1; copy(b[32769:], "CD001") }),
		dev(0x10300, func(b []byte) { copy(b[0x10040:], "_BHRfS_M") }),
	}
}

// FuzzProbe: any bytes give a Content or an error, never a panic.
func FuzzProbe(f *testing.F) {
	for _, s := range signatures() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := detect.Probe(bytes.NewReader(data), int64(len(data)))
		if err != nil && c.Type != "" {
			t.Fatalf("a type with an error: %+v %v", c, err)
		}
	})
}

// Every seed is recognised as what it was built to be.
func TestSignatures(t *testing.T) {
	want := []string{"ext2", "xfs", "", "crypto_LUKS", "swap", "vfat", "iso9660", "btrfs"}
	for i, s := range signatures() {
		c, err := detect.Probe(bytes.NewReader(s), int64(len(s)))
		if err != nil || c.Type != want[i] {
			t.Errorf("seed %d: %+v %v, want %q", i, c, err, want[i])
		}
	}
}
