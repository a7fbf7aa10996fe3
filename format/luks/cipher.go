package luks

import (
	"crypto/cipher"
	"encoding/binary"

	"github.com/qimg/qimg/image"
)

// Cipher encrypts and decrypts whole 512-byte sectors with one key, the
// IV of each sector derived from its number as the header's IV generator
// says. It is safe for concurrent use.
type Cipher struct {
	s     suite
	block cipher.Block // the data key (xts: the first half of the key)
	tweak cipher.Block // xts only: the second half, which encrypts the IV
	essiv cipher.Block // the essiv IV generator
}

// NewCipher makes the sector cipher of a suite with key.
func newCipher(s suite, key []byte) (*Cipher, error) {
	if len(key) != s.keyBytes() {
		return nil, image.Errorf(image.ErrInvalidArgument, "key of %d bytes for a cipher that takes %d", len(key), s.keyBytes())
	}
	c := &Cipher{s: s}
	dataKey := key
	var err error
	if s.mode == "xts" {
		dataKey = key[:len(key)/2]
		if c.tweak, err = s.alg.newBlock(key[len(key)/2:]); err != nil {
			return nil, image.Errorf(image.ErrInvalidArgument, "setting up the cipher: %v", err)
		}
	}
	if c.block, err = s.alg.newBlock(dataKey); err != nil {
		return nil, image.Errorf(image.ErrInvalidArgument, "setting up the cipher: %v", err)
	}
	if s.ivgen == "essiv" {
		// dm-crypt's ESSIV: the IV is the sector number encrypted with
		// the hash of the whole key, by the same cipher with a key as
		// long as the digest (parseSuite checked it is one).
		h := hashes[s.ivHash]()
		h.Write(key)
		if c.essiv, err = s.alg.newBlock(h.Sum(nil)); err != nil {
			return nil, image.Errorf(image.ErrInvalidArgument, "setting up the ESSIV cipher: %v", err)
		}
	}
	return c, nil
}

// NewCBCPlain64 is the cipher of legacy qcow2 encryption (crypt_method 1):
// AES-128-CBC with plain64 IVs, keyed with key.
func NewCBCPlain64(key []byte) (*Cipher, error) {
	return newCipher(suite{alg: blockAlgs["aes"], keyBits: 128, mode: "cbc", ivgen: "plain64"}, key)
}

// ivInto sets iv (one cipher block) to the IV of sector: its number
// little-endian (plain keeps 32 bits), zero-padded, as QEMU's
// crypto/ivgen-plain*.c; ESSIV then encrypts that.
func (c *Cipher) ivInto(iv []byte, sector uint64) {
	if c.s.ivgen == "plain" {
		sector &= 0xffffffff
	}
	var le [8]byte
	binary.LittleEndian.PutUint64(le[:], sector)
	clear(iv)
	copy(iv, le[:])
	if c.essiv != nil {
		c.essiv.Encrypt(iv, iv)
	}
}

// Encrypt encrypts buf in place; its first sector is number sector. Its
// length must be a multiple of the cipher's block size; a last sector
// shorter than SectorSize (the key material of 192-bit CBC keys) is
// encrypted on its own, as QEMU does.
func (c *Cipher) Encrypt(buf []byte, sector uint64) {
	c.each(buf, sector, true)
}

// Decrypt decrypts buf in place, as Encrypt.
func (c *Cipher) Decrypt(buf []byte, sector uint64) {
	c.each(buf, sector, false)
}

func (c *Cipher) each(buf []byte, sector uint64, enc bool) {
	bs := c.block.BlockSize()
	if len(buf)%bs != 0 {
		panic("luks: buffer is not whole cipher blocks")
	}
	iv := make([]byte, bs)
	for off := 0; off < len(buf); off, sector = off+SectorSize, sector+1 {
		b := buf[off:min(len(buf), off+SectorSize)]
		c.ivInto(iv, sector)
		switch {
		case c.tweak != nil:
			c.xts(b, iv, enc)
		case enc:
			cipher.NewCBCEncrypter(c.block, iv).CryptBlocks(b, b)
		default:
			cipher.NewCBCDecrypter(c.block, iv).CryptBlocks(b, b)
		}
	}
}
