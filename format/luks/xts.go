package luks

import (
	"crypto/subtle"
	"encoding/binary"
)

// xtsBlockSize is the only block size XTS is defined for.
const xtsBlockSize = 16

// xts encrypts or decrypts one sector b (whole 16-byte blocks) in place
// in XTS mode (IEEE 1619, no ciphertext stealing: sectors are whole
// blocks) with the tweak iv, as QEMU's crypto/xts.c. The tweak is the
// whole IV block rather than a sector number, so that ESSIV IVs work
// as in QEMU.
func (c *Cipher) xts(b, iv []byte, enc bool) {
	var t [xtsBlockSize]byte
	c.tweak.Encrypt(t[:], iv)
	for i := 0; i < len(b); i += xtsBlockSize {
		blk := b[i : i+xtsBlockSize]
		subtle.XORBytes(blk, blk, t[:])
		if enc {
			c.block.Encrypt(blk, blk)
		} else {
			c.block.Decrypt(blk, blk)
		}
		subtle.XORBytes(blk, blk, t[:])
		mulAlpha(&t)
	}
}

// mulAlpha multiplies the tweak by x in GF(2^128), little-endian as XTS
// lays it out: a shift left by one bit, folding the carry back in with
// the polynomial x^128 + x^7 + x^2 + x + 1.
func mulAlpha(t *[xtsBlockSize]byte) {
	lo := binary.LittleEndian.Uint64(t[:8])
	hi := binary.LittleEndian.Uint64(t[8:])
	carry := hi >> 63
	hi = hi<<1 | lo>>63
	lo = lo<<1 ^ carry*0x87
	binary.LittleEndian.PutUint64(t[:8], lo)
	binary.LittleEndian.PutUint64(t[8:], hi)
}
