package luks

import (
	"crypto/pbkdf2"
	"crypto/subtle"
	"hash"

	"github.com/qimg/qimg/image"
)

// ErrWrongPassword is QEMU's error when no active key slot opens with the
// password. It is an image.ErrEncrypted.
var ErrWrongPassword error = &image.Error{Class: image.ErrEncrypted, Msg: "Invalid password, cannot unlock any keyslot"}

// ReadFunc reads len(b) bytes at off from the start of the LUKS header
// (the qcow2 crypto header region, or a LUKS volume).
type ReadFunc func(b []byte, off int64) error

// Unlock derives the master key from password through the first active
// key slot it opens, as QEMU does, and returns the payload cipher. It
// fails with ErrWrongPassword if no slot opens, and with image.ErrLimit
// if a slot (or the master key digest) asks for more than MaxIterations
// PBKDF2 iterations.
func (h *Header) Unlock(password []byte, read ReadFunc) (*Cipher, error) {
	if h.DigestIters > MaxIterations {
		return nil, image.Errorf(image.ErrLimit, "LUKS master key digest asks for %d PBKDF2 iterations (qimg's limit is %d)", h.DigestIters, MaxIterations)
	}
	n := int(h.KeyBytes)
	material := make([]byte, n*Stripes)
	key := make([]byte, n)
	defer clear(key)
	for i, s := range h.Slots {
		if !s.Active {
			continue
		}
		if s.Iterations > MaxIterations {
			return nil, image.Errorf(image.ErrLimit, "Keyslot %d asks for %d PBKDF2 iterations (qimg's limit is %d)", i, s.Iterations, MaxIterations)
		}
		ok, err := h.tryslot(s, password, read, material, key)
		if err != nil {
			return nil, err
		}
		if ok {
			return newCipher(h.suite, key)
		}
	}
	return nil, ErrWrongPassword
}

// tryslot decrypts slot s's material with password into key and reports
// whether the key matches the header's digest.
func (h *Header) tryslot(s Slot, password []byte, read ReadFunc, material, key []byte) (bool, error) {
	newHash := h.suite.hash()
	slotKey, err := derive(newHash, password, s.Salt[:], s.Iterations, len(key))
	if err != nil {
		return false, err
	}
	defer clear(slotKey)
	if err := read(material, int64(s.KeyOffset)*SectorSize); err != nil {
		return false, err
	}
	c, err := newCipher(h.suite, slotKey)
	if err != nil {
		return false, err
	}
	c.Decrypt(material, 0)
	afMerge(newHash, material, key, Stripes)
	digest, err := derive(newHash, key, h.DigestSalt[:], h.DigestIters, digestLen)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(digest, h.Digest[:]) == 1, nil
}

// derive is PBKDF2 of secret.
func derive(newHash func() hash.Hash, secret, salt []byte, iters uint32, n int) ([]byte, error) {
	k, err := pbkdf2.Key(newHash, string(secret), salt, int(iters), n)
	if err != nil {
		return nil, image.Errorf(image.ErrUnsupported, "PBKDF2: %v", err)
	}
	return k, nil
}
