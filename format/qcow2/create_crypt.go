package qcow2

import (
	"github.com/qimg/qimg/format/luks"
	"github.com/qimg/qimg/image"
)

// Encryption formats of qemu-img's -o encrypt.format.
const (
	EncryptLUKS = "luks"
	EncryptAES  = "aes" // legacy qcow2 AES-CBC, for reading old images; QEMU 7.2 still creates it
)

// Encryption asks for an encrypted new image: qemu-img's -o encrypt.*
// options, with the secret encrypt.key-secret names.
type Encryption struct {
	Format string // EncryptLUKS or EncryptAES
	// Key is the password. It is never logged or put in an error.
	Key []byte
	// LUKS chooses the algorithms and the unlock time of a LUKS header
	// (encrypt.cipher-alg, encrypt.iter-time...).
	LUKS luks.Options
}

// validate checks the options as qemu-img does.
func (e *Encryption) validate() error {
	switch e.Format {
	case EncryptLUKS, EncryptAES:
	default:
		return image.Errorf(image.ErrInvalidArgument, "Parameter 'format' does not accept value '%s'", e.Format)
	}
	if e.Key == nil {
		return image.Errorf(image.ErrInvalidArgument, "Parameter 'encrypt.key-secret' is required for cipher")
	}
	return nil
}

// encrypt sets up the encryption of a new, empty image: for LUKS a new
// header with its key material in clusters of their own, named by the
// crypto header extension, as QEMU lays it out (after the L1 table).
func (img *Image) encrypt(e *Encryption) error {
	h := img.hdr
	if e.Format == EncryptAES {
		if err := img.setAESKey(e.Key); err != nil {
			return err
		}
		h.CryptMethod = CryptAES
		_, err := img.writeHeader(h)
		return err
	}
	vol, err := luks.Create(e.LUKS, e.Key)
	if err != nil {
		return image.FileErrorf(img.name, "%w", err)
	}
	cs := h.ClusterSize()
	n := (int64(len(vol.Region)) + cs - 1) / cs
	first, err := img.allocClusters(n)
	if err != nil {
		return err
	}
	img.noteMetadata(first, n)
	if err := img.alloc.flush(); err != nil {
		return err
	}
	region := make([]byte, n*cs) // QEMU zeroes the clusters' tails too
	copy(region, vol.Region)
	if _, err := img.wfile.WriteAt(region, first*cs); err != nil {
		return image.FileErrorf(img.name, "writing the LUKS header: %w", err)
	}
	h.CryptMethod = CryptLUKS
	h.Crypto = &CryptoExtension{Offset: uint64(first * cs), Length: uint64(len(vol.Region))}
	img.luks, img.crypt = vol.Header, &crypt{cipher: vol.Cipher, physical: true}
	_, err = img.writeHeader(h)
	return err
}
