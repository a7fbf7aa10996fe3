package detect_test

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/qimg/qimg/guestfs/detect"
)

// Tell what a device holds from its first bytes: here a swap area with a
// label, built by hand as mkswap would write it.
func ExampleProbe() {
	dev := make([]byte, 8192)
	copy(dev[4096-10:], "SWAPSPACE2")
	binary.LittleEndian.PutUint32(dev[1024:], 1) // version
	copy(dev[1024+12:], []byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8})
	copy(dev[1024+28:], "swap0")
	c, err := detect.Probe(bytes.NewReader(dev), int64(len(dev)))
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Type, c.Label, c.UUID)
	// Output: swap swap0 12345678-9abc-def0-0102-030405060708
}
