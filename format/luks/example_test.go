package luks_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/qimg/qimg/format/luks"
)

// A new header, then the same key unlocked from it by password, as a
// reader of the image does.
func Example() {
	vol, err := luks.Create(luks.Options{IterTime: 1}, []byte("correct horse"))
	if err != nil {
		panic(err)
	}
	read := func(b []byte, off int64) error { copy(b, vol.Region[off:]); return nil }
	h, err := luks.ParseHeader(vol.Region)
	if err != nil {
		panic(err)
	}
	fmt.Println(h.CipherName, h.CipherMode, h.HashSpec, h.PayloadBytes())

	_, err = h.Unlock([]byte("wrong"), read)
	fmt.Println(errors.Is(err, luks.ErrWrongPassword), err)

	c, err := h.Unlock([]byte("correct horse"), read)
	if err != nil {
		panic(err)
	}
	sector := bytes.Repeat([]byte{0xab}, luks.SectorSize)
	vol.Cipher.Encrypt(sector, 42) // sector 42 of the payload
	c.Decrypt(sector, 42)
	fmt.Println(sector[0] == 0xab && sector[511] == 0xab)
	// Output:
	// aes xts-plain64 sha256 2068480
	// true Invalid password, cannot unlock any keyslot
	// true
}
