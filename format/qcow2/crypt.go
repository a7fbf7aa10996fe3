package qcow2

import (
	"errors"
	"io"

	"github.com/qimg/qimg/format/luks"
	"github.com/qimg/qimg/image"
)

// Encrypted images. Guest data clusters are encrypted sector by sector
// (512 bytes); compressed clusters, metadata and zero clusters are not.
// The IV of a sector is its number: for LUKS (crypt_method 2) the number
// of the host sector that holds it, for legacy AES (crypt_method 1) the
// number of the guest sector, as QEMU's crypt_physical_offset says.

// maxCryptoHeader bounds the LUKS region a header extension may name:
// QEMU's default header is 2 MiB (payload offset 2068480 bytes), and none
// of the ciphers qimg reads needs more.
const maxCryptoHeader = 16 << 20

// crypt is the key of an open encrypted image.
type crypt struct {
	cipher   *luks.Cipher
	physical bool // IVs from host offsets (LUKS), not guest offsets (AES)
}

// openCrypt reads the LUKS header of an encrypted image (for Describe)
// and, given a key and an image opened for its data, unlocks it. Without
// a key guest reads fail with image.ErrEncrypted, as before.
func (img *Image) openCrypt(opts *OpenOptions) error {
	h := img.hdr
	if h.CryptMethod == CryptLUKS {
		if err := img.loadLUKS(); err != nil {
			return err
		}
	}
	if opts.Key == nil || opts.MetadataOnly {
		// Like qemu-img info, an image opened for its metadata is not
		// unlocked: the key is neither needed nor checked.
		img.readErr = img.errorf(image.ErrEncrypted, "guest data is encrypted (%s) and no key was given", h.EncryptionName())
		return nil
	}
	if h.CryptMethod == CryptAES {
		return img.setAESKey(opts.Key)
	}
	c, err := img.luks.Unlock(opts.Key, img.readCryptoHeader)
	if err != nil {
		return image.FileErrorf(img.name, "%w", err)
	}
	img.crypt = &crypt{cipher: c, physical: true}
	return nil
}

// setAESKey keys a legacy AES image: QEMU's qcow AES key is the
// password's first 16 bytes, padded with zeros.
func (img *Image) setAESKey(password []byte) error {
	key := make([]byte, 16)
	copy(key, password)
	defer clear(key)
	c, err := luks.NewCBCPlain64(key)
	if err != nil {
		return image.FileErrorf(img.name, "%w", err)
	}
	img.crypt = &crypt{cipher: c}
	return nil
}

// loadLUKS checks the crypto header extension and parses the LUKS header
// it points to.
func (img *Image) loadLUKS() error {
	h := img.hdr
	if h.Crypto == nil {
		return img.errorf(image.ErrCorrupt, "Could not read encryption header: the LUKS header extension is missing")
	}
	if h.Crypto.Length < luks.HeaderSize || h.Crypto.Length > maxCryptoHeader {
		return img.errorf(image.ErrCorrupt, "LUKS header region of %d bytes is invalid (%d to %d)", h.Crypto.Length, luks.HeaderSize, maxCryptoHeader)
	}
	if err := img.checkTable("LUKS header", h.Crypto.Offset, int64(h.Crypto.Length), false); err != nil {
		return err
	}
	buf := make([]byte, luks.HeaderSize)
	if err := img.readCryptoHeader(buf, 0); err != nil {
		return err
	}
	lh, err := luks.ParseHeader(buf)
	if err != nil {
		return image.FileErrorf(img.name, "%w", err)
	}
	img.luks = lh
	return nil
}

// readCryptoHeader reads len(b) bytes at off inside the LUKS region.
func (img *Image) readCryptoHeader(b []byte, off int64) error {
	c := img.hdr.Crypto
	if off < 0 || uint64(off) > c.Length || uint64(len(b)) > c.Length-uint64(off) {
		return img.errorf(image.ErrCorrupt, "Request for data outside of extension header")
	}
	n, err := img.file.ReadAt(b, int64(c.Offset)+off)
	if err != nil && !errors.Is(err, io.EOF) {
		return image.FileErrorf(img.name, "reading the LUKS header: %w", err)
	}
	clear(b[n:])
	return nil
}

// sector is the IV sector number of the data at guest offset guest,
// stored at host offset host.
func (c *crypt) sector(guest, host int64) uint64 {
	if c.physical {
		return uint64(host) / luks.SectorSize
	}
	return uint64(guest) / luks.SectorSize
}

// readEncrypted fills p with the guest bytes at off, stored encrypted at
// host: the whole sectors around them are read and decrypted.
func (img *Image) readEncrypted(p []byte, off, host int64) error {
	lo := host &^ (luks.SectorSize - 1)
	hi := (host + int64(len(p)) + luks.SectorSize - 1) &^ (luks.SectorSize - 1)
	aligned := lo == host && hi == host+int64(len(p))
	buf := p
	if !aligned {
		buf = make([]byte, hi-lo)
	}
	if err := img.readHost(buf, lo); err != nil {
		return err
	}
	img.crypt.cipher.Decrypt(buf, img.crypt.sector(off-(host-lo), lo))
	if !aligned {
		copy(p, buf[host-lo:])
	}
	return nil
}

// encrypted returns data, guest bytes at guest going to host offset host
// (both sector aligned), encrypted in a new buffer; or data itself for an
// image without encryption.
func (img *Image) encrypted(data []byte, guest, host int64) []byte {
	if img.crypt == nil {
		return data
	}
	out := make([]byte, len(data))
	copy(out, data)
	img.crypt.cipher.Encrypt(out, img.crypt.sector(guest, host))
	return out
}

// Encrypted reports whether guest data is stored encrypted.
func (img *Image) Encrypted() bool { return img.hdr.CryptMethod != cryptNone }
