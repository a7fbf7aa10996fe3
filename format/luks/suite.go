package luks

import (
	"cmp"
	"fmt"
	"hash"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/qimg/qimg/image"
)

// suite is the set of algorithms a header names, in QEMU's terms.
type suite struct {
	alg      *blockAlg
	keyBits  int    // of one key of alg (XTS takes two)
	mode     string // "xts" or "cbc"
	ivgen    string // "plain", "plain64" or "essiv"
	ivHash   string // the ESSIV hash, or ""
	hashName string // PBKDF2 and splitter hash
}

// parseSuite decodes the cipher name, "<mode>-<ivgen>[:<hash>]" and hash
// spec of a header, checking them in QEMU's order, with QEMU's messages.
func parseSuite(cipherName, cipherMode, hashSpec string, keyBytes int) (suite, error) {
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
	switch mode {
	case "xts", "cbc":
	case "ecb", "ctr":
		return unsupported("Cipher mode %s is not supported by qimg", mode)
	default:
		return unsupported("Cipher mode %s not supported", mode)
	}
	s := suite{alg: blockAlgs[cipherName], keyBits: keyBytes * 8, mode: mode, ivgen: ivgen, ivHash: ivHash, hashName: hashSpec}
	if mode == "xts" {
		s.keyBits /= 2
	}
	if s.alg == nil || !s.alg.takes(s.keyBits/8) || keyBytes%2 != 0 && mode == "xts" {
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
		if err := s.checkESSIV(); err != nil {
			return suite{}, err
		}
	default:
		return unsupported("IV generator %s not supported", ivgen)
	}
	if mode == "xts" && s.alg.blockSize != xtsBlockSize {
		return unsupported("Unsupported cipher mode xts")
	}
	return s, nil
}

func unsupported(format string, args ...any) (suite, error) {
	return suite{}, image.Errorf(image.ErrUnsupported, format, args...)
}

// checkESSIV is QEMU's qcrypto_block_luks_essiv_cipher: the ESSIV cipher
// is the suite's cipher keyed with the digest of the master key, so the
// digest must be one of its key sizes.
func (s suite) checkESSIV() error {
	n := hashes[s.ivHash]().Size()
	switch {
	case s.alg.takes(n):
		return nil
	case len(s.alg.keySizes) == 1:
		return image.Errorf(image.ErrUnsupported, "Cipher %s not supported with essiv", s.algName())
	default:
		return image.Errorf(image.ErrUnsupported, "No %s cipher with key size %d available", s.alg.title, n)
	}
}

// algName is QEMU's name of the cipher and key size, "aes-256".
func (s suite) algName() string { return fmt.Sprintf("%s-%d", s.alg.name, s.keyBits) }

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

// suite validates the options as qemu-img 7.2 does and returns what they
// select, with the header's cipher mode string.
func (o Options) suite() (suite, string, error) {
	alg := cmp.Or(o.CipherAlg, "aes-256")
	mode := cmp.Or(o.CipherMode, "xts")
	ivgen := cmp.Or(o.IVGenAlg, "plain64")
	hashName := cmp.Or(o.HashAlg, "sha256")
	ivHash := o.IVGenHashAlg
	if ivgen == "essiv" && ivHash == "" {
		ivHash = "sha256"
	}
	if err := checkEnums(alg, mode, ivgen, ivHash, hashName); err != nil {
		return suite{}, "", err
	}
	name, bits, _ := strings.Cut(alg, "-")
	b := blockAlgs[name]
	if b == nil {
		return suite{}, "", image.Errorf(image.ErrUnsupported, "Algorithm '%s' not supported", alg)
	}
	keyBytes, _ := strconv.Atoi(bits)
	keyBytes /= 8
	if mode == "xts" {
		keyBytes *= 2
	}
	spec := mode + "-" + ivgen
	if ivHash != "" {
		spec += ":" + ivHash
	}
	s, err := parseSuite(name, spec, hashName, keyBytes)
	if err != nil {
		return suite{}, "", err
	}
	if keyBytes*Stripes%SectorSize != 0 {
		// The key material (24 bytes x 4000 stripes for a 192-bit CBC
		// key) is not whole sectors, and QEMU 7.2 aborts on it (an
		// assertion in crypto/block.c): such a header would be
		// unusable there.
		return suite{}, "", image.Errorf(image.ErrUnsupported, "%s-%s LUKS headers are not written: their key material is not whole sectors, and QEMU 7.2 cannot open them", alg, mode)
	}
	return s, spec, nil
}

// checkEnums refuses values qemu-img's option parser does not know.
func checkEnums(alg, mode, ivgen, ivHash, hashName string) error {
	for _, o := range []struct {
		name, value string
		values      []string
	}{
		{"cipher-alg", alg, qemuCipherAlgs},
		{"cipher-mode", mode, qemuCipherModes},
		{"ivgen-alg", ivgen, qemuIVGenAlgs},
		{"ivgen-hash-alg", ivHash, slices.Collect(maps.Keys(hashes))},
		{"hash-alg", hashName, slices.Collect(maps.Keys(hashes))},
	} {
		if o.value != "" && !slices.Contains(o.values, o.value) {
			return image.Errorf(image.ErrInvalidArgument, "Parameter '%s' does not accept value '%s'", o.name, o.value)
		}
	}
	return nil
}

// Info is what qemu-img info shows of a LUKS header (QEMU's
// QCryptoBlockInfoLUKS).
type Info struct {
	CipherAlg     string // "aes-256", "serpent-128"
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
		CipherAlg:     s.algName(),
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
