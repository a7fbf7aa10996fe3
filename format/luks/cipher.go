package luks

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"

	"golang.org/x/crypto/xts"

	"github.com/qimg/qimg/image"
)

// Cipher encrypts and decrypts whole 512-byte sectors with one key, the
// IV of each sector derived from its number as the header's IV generator
// says. It is safe for concurrent use.
type Cipher struct {
	s     suite
	xts   *xts.Cipher  // xts mode
	block cipher.Block // cbc mode
	essiv cipher.Block // essiv IV generator
}

// NewCipher makes the sector cipher of a suite with key.
func newCipher(s suite, key []byte) (*Cipher, error) {
	if len(key) != s.keyBytes() {
		return nil, image.Errorf(image.ErrInvalidArgument, "key of %d bytes for a cipher that takes %d", len(key), s.keyBytes())
	}
	c := &Cipher{s: s}
	var err error
	if s.mode == "xts" {
		c.xts, err = xts.NewCipher(aes.NewCipher, key)
	} else {
		c.block, err = aes.NewCipher(key)
	}
	if err != nil {
		return nil, image.Errorf(image.ErrInvalidArgument, "setting up the cipher: %v", err)
	}
	if s.ivgen == "essiv" {
		// dm-crypt's ESSIV: the IV is the sector number encrypted with
		// the hash of the key, by AES with a key as long as the digest.
		h := hashes[s.ivHash]()
		h.Write(key)
		if c.essiv, err = aes.NewCipher(h.Sum(nil)); err != nil {
			return nil, image.Errorf(image.ErrUnsupported, "No AES cipher with key size %d available", h.Size())
		}
	}
	return c, nil
}

// NewCBCPlain64 is the cipher of legacy qcow2 encryption (crypt_method 1):
// AES-128-CBC with plain64 IVs, keyed with key.
func NewCBCPlain64(key []byte) (*Cipher, error) {
	return newCipher(suite{keyBits: 128, mode: "cbc", ivgen: "plain64"}, key)
}

// iv is the IV of sector.
func (c *Cipher) iv(sector uint64) []byte {
	iv := make([]byte, aes.BlockSize)
	if c.s.ivgen == "plain" {
		sector &= 0xffffffff
	}
	binary.LittleEndian.PutUint64(iv, sector)
	if c.essiv != nil {
		c.essiv.Encrypt(iv, iv)
	}
	return iv
}

// Encrypt encrypts buf in place; its first sector is number sector. Its
// length must be a multiple of 16 bytes; a last sector shorter than
// SectorSize (key material of AES-192 keys) is encrypted on its own, as
// QEMU does.
func (c *Cipher) Encrypt(buf []byte, sector uint64) {
	c.each(buf, sector, true)
}

// Decrypt decrypts buf in place, as Encrypt.
func (c *Cipher) Decrypt(buf []byte, sector uint64) {
	c.each(buf, sector, false)
}

func (c *Cipher) each(buf []byte, sector uint64, enc bool) {
	if len(buf)%aes.BlockSize != 0 {
		panic("luks: buffer is not whole cipher blocks")
	}
	for off := 0; off < len(buf); off, sector = off+SectorSize, sector+1 {
		b := buf[off:min(len(buf), off+SectorSize)]
		switch {
		case c.xts != nil && enc:
			c.xts.Encrypt(b, b, c.tweak(sector))
		case c.xts != nil:
			c.xts.Decrypt(b, b, c.tweak(sector))
		case enc:
			cipher.NewCBCEncrypter(c.block, c.iv(sector)).CryptBlocks(b, b)
		default:
			cipher.NewCBCDecrypter(c.block, c.iv(sector)).CryptBlocks(b, b)
		}
	}
}

// tweak is the XTS tweak of sector: x/crypto/xts encodes it little-endian
// into the first 8 bytes, which is the plain64 IV (plain keeps 32 bits).
func (c *Cipher) tweak(sector uint64) uint64 {
	if c.s.ivgen == "plain" {
		return sector & 0xffffffff
	}
	return sector
}
