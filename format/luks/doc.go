// Package luks reads and writes the LUKS1 header that QEMU stores inside
// encrypted qcow2 images (and at the start of its "luks" format), and
// encrypts and decrypts guest sectors with the master key it protects.
//
// The on-disk layout follows cryptsetup's LUKS1 specification (version
// 1.2.1) as QEMU 7.2 implements it in crypto/block-luks.c: a 592-byte
// header (cipher, mode, hash, payload offset, master key digest and eight
// key slots), then for each slot its key material: the master key split
// by the anti-forensic splitter into 4000 stripes and encrypted with a key
// derived from the password by PBKDF2.
//
// Supported, read and written, as QEMU 7.2 accepts them: AES, Serpent
// and Twofish with 128-, 192- and 256-bit keys and CAST5 with 128-bit
// keys; XTS (not CAST5, whose 64-bit blocks XTS does not take) and CBC
// modes; plain, plain64 and ESSIV IVs, where the ESSIV hash must give a
// key of the same cipher (MD5 for 128-bit, SHA-256 for 256-bit keys);
// PBKDF2 and the splitter with MD5, SHA-1, the SHA-2 hashes and
// RIPEMD-160. What QEMU refuses is refused with its message, as
// image.ErrUnsupported (image.ErrInvalidArgument for a name qemu-img's
// option parser does not know). ECB and CTR modes, which QEMU also
// knows, are refused with image.ErrUnsupported. Create writes no 192-bit
// CBC keys: their key material is not whole sectors, and QEMU 7.2 aborts
// on it (it reads and writes 192-bit XTS keys).
//
// # Untrusted headers
//
// Every field of a header read from an image is checked before use, as
// QEMU checks it, and what a header can make this package spend is bounded:
// key sizes are those of the ciphers (at most 64 bytes), so key material
// is at most 256,000 bytes per slot; PBKDF2 iteration counts above
// MaxIterations are refused with image.ErrLimit rather than run for hours.
//
// Passwords and keys never appear in errors or in String output.
package luks
