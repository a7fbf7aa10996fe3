package luks

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"slices"

	"github.com/aead/serpent"
	"golang.org/x/crypto/cast5"
	"golang.org/x/crypto/ripemd160" // deprecated, but QEMU writes RIPEMD-160 headers
	"golang.org/x/crypto/twofish"
)

// blockAlg is a block cipher a LUKS header can name, as QEMU 7.2 knows it
// (crypto/block-luks.c's qcrypto_block_luks_cipher_name_map).
type blockAlg struct {
	name      string // in the header and, with the key bits, in QEMU's option values
	title     string // in QEMU's ESSIV messages ("No AES cipher with key size 20 available")
	keySizes  []int  // bytes
	blockSize int
	newBlock  func(key []byte) (cipher.Block, error)
}

var blockAlgs = map[string]*blockAlg{
	"aes":     {name: "aes", title: "AES", keySizes: []int{16, 24, 32}, blockSize: aes.BlockSize, newBlock: aes.NewCipher},
	"serpent": {name: "serpent", title: "Serpent", keySizes: []int{16, 24, 32}, blockSize: serpent.BlockSize, newBlock: serpent.NewCipher},
	"twofish": {name: "twofish", title: "Twofish", keySizes: []int{16, 24, 32}, blockSize: twofish.BlockSize,
		newBlock: func(k []byte) (cipher.Block, error) { return twofish.NewCipher(k) }},
	"cast5": {name: "cast5", title: "CAST5", keySizes: []int{cast5.KeySize}, blockSize: cast5.BlockSize,
		newBlock: func(k []byte) (cipher.Block, error) { return cast5.NewCipher(k) }},
}

// takes reports whether the cipher has keys of n bytes.
func (b *blockAlg) takes(n int) bool { return slices.Contains(b.keySizes, n) }

// hashes are the digests QEMU 7.2 accepts in a LUKS header (its
// QCryptoHashAlgorithm values).
var hashes = map[string]func() hash.Hash{
	"md5":       md5.New,
	"sha1":      sha1.New,
	"sha224":    sha256.New224,
	"sha256":    sha256.New,
	"sha384":    sha512.New384,
	"sha512":    sha512.New,
	"ripemd160": ripemd160.New,
}

// qemuCipherAlgs are the values QEMU 7.2's encrypt.cipher-alg accepts
// (QCryptoCipherAlgorithm); des and 3des it then refuses for LUKS.
var qemuCipherAlgs = []string{
	"aes-128", "aes-192", "aes-256", "des", "3des", "cast5-128",
	"serpent-128", "serpent-192", "serpent-256", "twofish-128", "twofish-192", "twofish-256",
}

// QEMU 7.2's values of encrypt.cipher-mode and encrypt.ivgen-alg.
var (
	qemuCipherModes = []string{"ecb", "cbc", "xts", "ctr"}
	qemuIVGenAlgs   = []string{"plain", "plain64", "essiv"}
)
