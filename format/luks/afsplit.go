package luks

import (
	"encoding/binary"
	"hash"
)

// The anti-forensic splitter of LUKS: a key of n bytes is stored as
// `stripes` blocks of n bytes, all but the last random, so that losing
// any part of the material loses the key.

// afMerge recovers the key from its split material (len(key)*stripes
// bytes) into key.
func afMerge(newHash func() hash.Hash, material, key []byte, stripes int) {
	n := len(key)
	copy(key, afChain(newHash, material, n, stripes))
	xorInto(key, material[(stripes-1)*n:stripes*n])
}

// afSplit fills material (len(key)*stripes bytes, the first stripes-1
// blocks already random) so that afMerge gives back key.
func afSplit(newHash func() hash.Hash, material, key []byte, stripes int) {
	n := len(key)
	last := material[(stripes-1)*n : stripes*n]
	copy(last, afChain(newHash, material, n, stripes))
	xorInto(last, key)
}

// afChain folds the first stripes-1 blocks of n bytes: each is XORed into
// the running value, which is then diffused.
func afChain(newHash func() hash.Hash, material []byte, n, stripes int) []byte {
	d := make([]byte, n)
	for i := 0; i < stripes-1; i++ {
		xorInto(d, material[i*n:(i+1)*n])
		diffuse(newHash, d)
	}
	return d
}

func xorInto(dst, src []byte) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}

// diffuse replaces each digest-sized piece of b (the last may be shorter)
// by the hash of its index (big-endian) and itself, cut to its length.
func diffuse(newHash func() hash.Hash, b []byte) {
	h := newHash()
	size := h.Size()
	var idx [4]byte
	for i := 0; i*size < len(b); i++ {
		piece := b[i*size : min(len(b), (i+1)*size)]
		h.Reset()
		binary.BigEndian.PutUint32(idx[:], uint32(i))
		h.Write(idx[:])
		h.Write(piece)
		copy(piece, h.Sum(nil))
	}
}
