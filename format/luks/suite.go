package luks

import (
	"cmp"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"strings"

	"github.com/qimg/qimg/image"
)

// suite is the set of algorithms a header names, in QEMU's terms.
type suite struct {
	keyBits  int    // of one AES key: 128, 192 or 256
	mode     string // "xts" or "cbc"
	ivgen    string // "plain", "plain64" or "essiv"
	ivHash   string // the ESSIV hash, or ""
	hashName string // PBKDF2 and splitter hash
}

// hashes are the digests QEMU accepts in a LUKS header that Go provides.
var hashes = map[string]func() hash.Hash{
	"md5":    md5.New,
	"sha1":   sha1.New,
	"sha224": sha256.New224,
	"sha256": sha256.New,
	"sha384": sha512.New384,
	"sha512": sha512.New,
}

// parseSuite decodes the cipher name, "<mode>-<ivgen>[:<hash>]" and hash
// spec of a header, with QEMU's messages.
func parseSuite(cipherName, cipherMode, hashSpec string, keyBytes int) (suite, error) {
	unsupported := func(format string, args ...any) (suite, error) {
		return suite{}, image.Errorf(image.ErrUnsupported, format, args...)
	}
	mode, ivspec, ok := strings.Cut(cipherMode, "-")
	if !ok {
		return unsupported("Unexpected cipher mode string format %s", cipherMode)
	}
	ivgen, ivHash, _ := strings.Cut(ivspec, ":")
	if ivHash != "" {
		if _, ok := hashes[ivHash]; !ok {
			return unsupported("Hash algorithm %s not supported", ivHash)
		}
	}
	if mode != "xts" && mode != "cbc" {
		return unsupported("Cipher mode %s not supported", mode)
	}
	bits := keyBytes * 8
	if mode == "xts" {
		bits /= 2
	}
	if cipherName != "aes" || (bits != 128 && bits != 192 && bits != 256) || keyBytes%2 != 0 && mode == "xts" {
		return unsupported("Algorithm %s with key size %d bytes not supported", cipherName, keyBytes)
	}
	if _, ok := hashes[hashSpec]; !ok {
		return unsupported("Hash algorithm %s not supported", hashSpec)
	}
	switch ivgen {
	case "plain", "plain64":
	case "essiv":
		if ivHash == "" {
			return unsupported("Missing IV generator hash specification")
		}
		if mode == "xts" {
			return unsupported("IV generator essiv with cipher mode xts is not supported by qimg")
		}
	default:
		return unsupported("IV generator %s not supported", ivgen)
	}
	return suite{keyBits: bits, mode: mode, ivgen: ivgen, ivHash: ivHash, hashName: hashSpec}, nil
}

// keyBytes is the length of the key the suite's cipher takes.
func (s suite) keyBytes() int {
	if s.mode == "xts" {
		return s.keyBits / 4
	}
	return s.keyBits / 8
}

func (s suite) hash() func() hash.Hash { return hashes[s.hashName] }

// Options choose the algorithms of a new header, by QEMU's names
// (qemu-img's encrypt.cipher-alg, encrypt.cipher-mode, encrypt.ivgen-alg,
// encrypt.ivgen-hash-alg and encrypt.hash-alg). The zero value is QEMU's
// default: aes-256, xts, plain64, sha256.
type Options struct {
	CipherAlg    string
	CipherMode   string
	IVGenAlg     string
	IVGenHashAlg string
	HashAlg      string
	// IterTime is the time PBKDF2 should take to unlock the slot, in
	// milliseconds (QEMU's encrypt.iter-time, default 2000).
	IterTime int64
}

// suite validates the options and returns what they select.
func (o Options) suite() (suite, string, error) {
	alg := cmp.Or(o.CipherAlg, "aes-256")
	mode := cmp.Or(o.CipherMode, "xts")
	ivgen := cmp.Or(o.IVGenAlg, "plain64")
	hashName := cmp.Or(o.HashAlg, "sha256")
	ivHash := o.IVGenHashAlg
	if ivgen == "essiv" && ivHash == "" {
		ivHash = "sha256"
	}
	var bits int
	switch alg {
	case "aes-128":
		bits = 128
	case "aes-192":
		// Its key material (24 bytes x 4000 stripes) is not whole
		// sectors, and QEMU 7.2 aborts on it (an assertion in
		// crypto/block.c): such a header would be unusable there.
		return suite{}, "", image.Errorf(image.ErrUnsupported, "aes-192 LUKS headers are not written: QEMU 7.2 cannot open them")
	case "aes-256":
		bits = 256
	default:
		return suite{}, "", image.Errorf(image.ErrUnsupported, "Cipher algorithm %s is not supported by qimg (only aes-128 and aes-256)", alg)
	}
	spec := mode + "-" + ivgen
	if ivHash != "" {
		spec += ":" + ivHash
	}
	keyBytes := bits / 8
	if mode == "xts" {
		keyBytes *= 2
	}
	s, err := parseSuite("aes", spec, hashName, keyBytes)
	return s, spec, err
}

// Info is what qemu-img info shows of a LUKS header (QEMU's
// QCryptoBlockInfoLUKS).
type Info struct {
	CipherAlg     string // "aes-256"
	CipherMode    string // "xts"
	IVGenAlg      string // "plain64"
	IVGenHashAlg  string // for essiv only
	HashAlg       string
	PayloadOffset int64 // bytes
	MasterKeyIter uint32
	UUID          string
	Slots         []SlotInfo
}

// SlotInfo is one key slot as qemu-img info shows it.
type SlotInfo struct {
	Active    bool
	Iters     uint32 // active slots only
	Stripes   uint32 // active slots only
	KeyOffset int64  // bytes
}

// Info describes the header as qemu-img info does.
func (h *Header) Info() Info {
	s := h.suite
	in := Info{
		CipherAlg:     fmt.Sprintf("aes-%d", s.keyBits),
		CipherMode:    s.mode,
		IVGenAlg:      s.ivgen,
		HashAlg:       s.hashName,
		PayloadOffset: h.PayloadBytes(),
		MasterKeyIter: h.DigestIters,
		UUID:          h.UUID,
	}
	if s.ivgen == "essiv" {
		in.IVGenHashAlg = s.ivHash
	}
	for _, sl := range h.Slots {
		si := SlotInfo{Active: sl.Active, KeyOffset: int64(sl.KeyOffset) * SectorSize}
		if sl.Active {
			si.Iters, si.Stripes = sl.Iterations, sl.Stripes
		}
		in.Slots = append(in.Slots, si)
	}
	return in
}
