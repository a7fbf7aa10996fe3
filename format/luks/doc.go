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
// Supported: AES-128/192/256 in XTS (plain and plain64 IVs) and CBC
// (plain, plain64 and ESSIV IVs), PBKDF2 and the splitter with MD5, SHA-1
// and the SHA-2 hashes. Other algorithms QEMU knows (Serpent, Twofish,
// CAST5, RIPEMD-160) and ESSIV with XTS are refused with
// image.ErrUnsupported. Create writes AES-128 and AES-256 only: the key
// material of AES-192 is not whole sectors, and QEMU 7.2 aborts on it.
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
