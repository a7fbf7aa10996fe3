package ext4

import "math/bits"

// Directory hash versions (s_def_hash_version, dx_root's hash_version);
// the unsigned variants are the same hashes reading name bytes as
// unsigned, chosen by a superblock flag.
const (
	hashLegacy   = 0
	hashHalfMD4  = 1
	hashTea      = 2
	hashUnsigned = 3 // added to the three above
)

// nameHash is the htree hash of a name (its major part, low bit clear),
// as e2fsprogs' ext2fs_dirhash computes it.
func nameHash(version uint8, name []byte, seed [4]uint32) (uint32, bool) {
	buf := [4]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}
	if seed != [4]uint32{} {
		buf = seed
	}
	unsigned := false
	if version >= hashUnsigned && version < hashUnsigned+3 {
		version -= hashUnsigned
		unsigned = true
	}
	var h uint32
	switch version {
	case hashLegacy:
		h = legacyHash(name, unsigned)
	case hashHalfMD4:
		var in [8]uint32
		for p := name; ; p = p[32:] {
			str2hashbuf(p, in[:], unsigned)
			halfMD4(&buf, &in)
			if len(p) <= 32 {
				break
			}
		}
		h = buf[1]
	case hashTea:
		var in [4]uint32
		for p := name; ; p = p[16:] {
			str2hashbuf(p, in[:], unsigned)
			tea(&buf, &in)
			if len(p) <= 16 {
				break
			}
		}
		h = buf[0]
	default:
		return 0, false
	}
	h &^= 1
	if h == 0x7fffffff<<1 {
		h = (0x7fffffff - 1) << 1
	}
	return h, true
}

// char is a name byte as C's char: signed unless told otherwise.
func char(b byte, unsigned bool) uint32 {
	if unsigned {
		return uint32(b)
	}
	return uint32(int32(int8(b)))
}

func legacyHash(name []byte, unsigned bool) uint32 {
	h0, h1 := uint32(0x12a3fe2d), uint32(0x37abe8f9)
	for _, b := range name {
		h := h1 + (h0 ^ char(b, unsigned)*7152373)
		if h&0x80000000 != 0 {
			h -= 0x7fffffff
		}
		h1, h0 = h0, h
	}
	return h0 << 1
}

// str2hashbuf packs up to 4*len(out) bytes of p into words, padded with
// the length as the kernel does.
func str2hashbuf(p []byte, out []uint32, unsigned bool) {
	n := len(p)
	pad := uint32(n) | uint32(n)<<8
	pad |= pad << 16
	val := pad
	num := len(out)
	if n > num*4 {
		n = num * 4
	}
	o := 0
	for i := 0; i < n; i++ {
		val = char(p[i], unsigned) + val<<8
		if i%4 == 3 {
			out[o] = val
			o++
			val = pad
			num--
		}
	}
	num--
	if num >= 0 {
		out[o] = val
		o++
	}
	for num--; num >= 0; num-- {
		out[o] = pad
		o++
	}
}

func halfMD4(buf *[4]uint32, in *[8]uint32) {
	a, b, c, d := buf[0], buf[1], buf[2], buf[3]
	f := func(x, y, z uint32) uint32 { return z ^ (x & (y ^ z)) }
	g := func(x, y, z uint32) uint32 { return (x & y) + ((x ^ y) & z) }
	h := func(x, y, z uint32) uint32 { return x ^ y ^ z }
	const k2, k3 = 0o13240474631, 0o15666365641
	r := func(fn func(x, y, z uint32) uint32, a, b, c, d, x uint32, s int) uint32 {
		return bits.RotateLeft32(a+fn(b, c, d)+x, s)
	}
	a = r(f, a, b, c, d, in[0], 3)
	d = r(f, d, a, b, c, in[1], 7)
	c = r(f, c, d, a, b, in[2], 11)
	b = r(f, b, c, d, a, in[3], 19)
	a = r(f, a, b, c, d, in[4], 3)
	d = r(f, d, a, b, c, in[5], 7)
	c = r(f, c, d, a, b, in[6], 11)
	b = r(f, b, c, d, a, in[7], 19)

	a = r(g, a, b, c, d, in[1]+k2, 3)
	d = r(g, d, a, b, c, in[3]+k2, 5)
	c = r(g, c, d, a, b, in[5]+k2, 9)
	b = r(g, b, c, d, a, in[7]+k2, 13)
	a = r(g, a, b, c, d, in[0]+k2, 3)
	d = r(g, d, a, b, c, in[2]+k2, 5)
	c = r(g, c, d, a, b, in[4]+k2, 9)
	b = r(g, b, c, d, a, in[6]+k2, 13)

	a = r(h, a, b, c, d, in[3]+k3, 3)
	d = r(h, d, a, b, c, in[7]+k3, 9)
	c = r(h, c, d, a, b, in[2]+k3, 11)
	b = r(h, b, c, d, a, in[6]+k3, 15)
	a = r(h, a, b, c, d, in[1]+k3, 3)
	d = r(h, d, a, b, c, in[5]+k3, 9)
	c = r(h, c, d, a, b, in[0]+k3, 11)
	b = r(h, b, c, d, a, in[4]+k3, 15)

	buf[0] += a
	buf[1] += b
	buf[2] += c
	buf[3] += d
}

func tea(buf *[4]uint32, in *[4]uint32) {
	var sum uint32
	b0, b1 := buf[0], buf[1]
	a, b, c, d := in[0], in[1], in[2], in[3]
	for range 16 {
		sum += 0x9E3779B9
		b0 += ((b1 << 4) + a) ^ (b1 + sum) ^ ((b1 >> 5) + b)
		b1 += ((b0 << 4) + c) ^ (b0 + sum) ^ ((b0 >> 5) + d)
	}
	buf[0] += b0
	buf[1] += b1
}
