// Package inflate decodes raw deflate streams (RFC 1951) held in memory
// into a buffer of known size: what reading a compressed qcow2 cluster
// needs.
//
// Go's and klauspost's inflaters read through io.ByteReader one byte at a
// time, which makes decompression the bottleneck of converting a
// compressed image. Here the whole stream is a slice, so the decoder
// refills its 64-bit bit buffer eight bytes at a time and decodes Huffman
// symbols through two-level lookup tables, as zlib does.
//
// Output is bounded by len(dst): a stream that would produce more is cut
// there (QEMU does the same with a cluster), so hostile input can never
// make it write or allocate more.
package inflate

import (
	"encoding/binary"
	"errors"
	"math/bits"

	"github.com/qimg/qimg/internal/rfc1951"
)

// Errors, for streams that are not valid deflate data.
var (
	ErrCorrupt = errors.New("inflate: corrupt deflate stream")
	// ErrShort means the stream ended before dst was full.
	ErrShort = errors.New("inflate: stream ends before the output is full")
)

// Decompress inflates src into dst and returns how many bytes it wrote:
// len(dst) when the stream holds at least that much (the rest is ignored),
// fewer with ErrShort when it ends early.
func Decompress(dst, src []byte) (int, error) {
	d := decoder{src: src, dst: dst}
	for d.out < len(dst) {
		final, err := d.block()
		if err != nil || d.out == len(dst) {
			if errors.Is(err, errFull) {
				err = nil
			}
			return d.out, err
		}
		if final {
			return d.out, ErrShort
		}
	}
	return d.out, nil
}

// errFull stops decoding when dst is full.
var errFull = errors.New("output full")

type decoder struct {
	src   []byte
	pos   int // next byte of src to load into bits
	bits  uint64
	nbits uint
	over  uint // bits loaded past the end of src (as zeros)
	dst   []byte
	out   int
	lit   table
	dist  table
}

// refill loads bytes until at least 56 bits are buffered. Past the end of
// the input it loads zeros and counts them, so that running out is an
// error only if those bits are used.
func (d *decoder) refill() {
	if d.pos+8 <= len(d.src) {
		d.bits |= binary.LittleEndian.Uint64(d.src[d.pos:]) << d.nbits
		d.pos += int(63-d.nbits) >> 3
		d.nbits |= 56
		return
	}
	for d.nbits <= 56 {
		if d.pos < len(d.src) {
			d.bits |= uint64(d.src[d.pos]) << d.nbits
			d.pos++
		} else {
			d.over += 8
		}
		d.nbits += 8
	}
}

// need reports whether n bits are available that came from the input.
func (d *decoder) take(n uint) (uint64, error) {
	if d.nbits < n {
		d.refill()
	}
	if d.nbits-n < d.over {
		return 0, ErrShort
	}
	v := d.bits & (1<<n - 1)
	d.bits >>= n
	d.nbits -= n
	return v, nil
}

func (d *decoder) block() (final bool, err error) {
	hdr, err := d.take(3)
	if err != nil {
		return false, err
	}
	final = hdr&1 != 0
	switch hdr >> 1 {
	case 0:
		return final, d.stored()
	case 1:
		fixedLit, fixedDist := rfc1951.FixedLitLens, rfc1951.FixedDistLens
		if !d.lit.build(fixedLit[:]) || !d.dist.build(fixedDist[:]) {
			return false, ErrCorrupt
		}
	case 2:
		if err := d.dynamicTables(); err != nil {
			return false, err
		}
	default:
		return false, ErrCorrupt
	}
	return final, d.huffman()
}

func (d *decoder) stored() error {
	d.take(d.nbits % 8) // skip to a byte boundary
	v, err := d.take(32)
	if err != nil {
		return err
	}
	n := int(v & 0xffff)
	if uint16(v>>16) != ^uint16(n) {
		return ErrCorrupt
	}
	for ; n > 0; n-- { // rare: stored blocks hold incompressible data
		if d.out == len(d.dst) {
			return errFull
		}
		b, err := d.take(8)
		if err != nil {
			return err
		}
		d.dst[d.out] = byte(b)
		d.out++
	}
	return nil
}

func (d *decoder) dynamicTables() error {
	v, err := d.take(14)
	if err != nil {
		return err
	}
	nlit, ndist, ncl := int(v&31)+257, int(v>>5&31)+1, int(v>>10)+4
	if nlit > 286 || ndist > 30 {
		return ErrCorrupt
	}
	var clLens [19]uint8
	for i := range ncl {
		l, err := d.take(3)
		if err != nil {
			return err
		}
		clLens[rfc1951.CodeLengthOrder[i]] = uint8(l)
	}
	var cl table
	if !cl.build(clLens[:]) {
		return ErrCorrupt
	}
	var lens [286 + 30]uint8
	for i := 0; i < nlit+ndist; {
		sym, err := d.decode(&cl)
		if err != nil {
			return err
		}
		rep, val := 1, uint8(sym)
		switch sym {
		case 16:
			if i == 0 {
				return ErrCorrupt
			}
			n, err := d.take(2)
			rep, val = 3+int(n), lens[i-1]
			if err != nil {
				return err
			}
		case 17, 18:
			extra, base := uint(3), 3
			if sym == 18 {
				extra, base = 7, 11
			}
			n, err := d.take(extra)
			if err != nil {
				return err
			}
			rep, val = base+int(n), 0
		}
		if i+rep > nlit+ndist {
			return ErrCorrupt
		}
		for range rep {
			lens[i] = val
			i++
		}
	}
	if lens[256] == 0 || !d.lit.build(lens[:nlit]) || !d.dist.build(lens[nlit:nlit+ndist]) {
		return ErrCorrupt
	}
	return nil
}

// huffman decodes the symbols of one compressed block: a fast loop while
// input and output are far from their ends, then the careful one.
func (d *decoder) huffman() error {
	done, err := d.huffmanFast()
	if done || err != nil {
		return err
	}
	dst := d.dst
	for {
		if d.out == len(dst) {
			// Like zlib with a full output buffer: stop here, whatever
			// follows.
			return errFull
		}
		if d.nbits < 48 {
			d.refill()
		}
		sym, err := d.decode(&d.lit)
		if err != nil {
			return err
		}
		switch {
		case sym < 256:
			dst[d.out] = byte(sym)
			d.out++
			continue
		case sym == 256:
			return nil
		case sym > 285:
			return ErrCorrupt
		}
		lc := sym - 257
		extra, err := d.take(uint(rfc1951.LengthExtra[lc]))
		if err != nil {
			return err
		}
		length := int(rfc1951.LengthBase[lc]) + int(extra)
		dc, err := d.decode(&d.dist)
		if err != nil {
			return err
		}
		if dc > 29 {
			return ErrCorrupt
		}
		extra, err = d.take(uint(rfc1951.DistExtra[dc]))
		if err != nil {
			return err
		}
		dist := int(rfc1951.DistBase[dc]) + int(extra)
		if dist > d.out {
			return ErrCorrupt // reaches before the start of the output
		}
		n := min(length, len(dst)-d.out)
		copyMatch(dst, d.out, dist, n)
		d.out += n
		if n < length {
			return errFull
		}
	}
}

// huffmanFast decodes while at least 16 input bytes and 258 output bytes
// remain, so no bound needs checking per symbol: a refill of 8 bytes gives
// 56 bits, enough for a length code with its extra bits (20) and a
// distance code with its extra bits (28). It reports whether it reached
// the end of the block.
func (d *decoder) huffmanFast() (bool, error) {
	src, dst := d.src, d.dst
	bitbuf, nbits, pos, out := d.bits, d.nbits, d.pos, d.out
	lit, dist := d.lit.entries, d.dist.entries
	defer func() { d.bits, d.nbits, d.pos, d.out = bitbuf, nbits, pos, out }()
outer:
	for pos+16 <= len(src) && out+maxMatchLen <= len(dst) {
		bitbuf |= binary.LittleEndian.Uint64(src[pos:]) << nbits
		pos += int(63-nbits) >> 3
		nbits |= 56
		var sym int
		for {
			e := lit[bitbuf&(1<<primaryBits-1)]
			if e&linkFlag != 0 {
				e = lit[(e>>8&0x7fffff)+uint32(bitbuf>>primaryBits&(1<<(e&0xff)-1))]
			}
			l := uint(e & 0xff)
			if l == 0 {
				return false, ErrCorrupt
			}
			bitbuf >>= l
			nbits -= l
			sym = int(e >> 8)
			if sym >= 256 {
				break
			}
			// Runs of literals: decode the next one from the bits
			// already buffered when a whole code is certainly there.
			dst[out] = byte(sym)
			out++
			if nbits < 15 || out+maxMatchLen > len(dst) {
				continue outer
			}
		}
		if sym == 256 {
			return true, nil
		}
		if sym > 285 {
			return false, ErrCorrupt
		}
		if nbits < 48 {
			// A length code (up to 20 bits with extra) and a distance
			// code (up to 28) may need more than what is left.
			bitbuf |= binary.LittleEndian.Uint64(src[pos:]) << nbits
			pos += int(63-nbits) >> 3
			nbits |= 56
		}
		lc := sym - 257
		n := uint(rfc1951.LengthExtra[lc])
		length := int(rfc1951.LengthBase[lc]) + int(bitbuf&(1<<n-1))
		bitbuf >>= n
		nbits -= n
		e := dist[bitbuf&(1<<primaryBits-1)]
		if e&linkFlag != 0 {
			e = dist[(e>>8&0x7fffff)+uint32(bitbuf>>primaryBits&(1<<(e&0xff)-1))]
		}
		l := uint(e & 0xff)
		dc := int(e >> 8)
		if l == 0 || dc > 29 {
			return false, ErrCorrupt
		}
		bitbuf >>= l
		nbits -= l
		n = uint(rfc1951.DistExtra[dc])
		dd := int(rfc1951.DistBase[dc]) + int(bitbuf&(1<<n-1))
		bitbuf >>= n
		nbits -= n
		if dd > out {
			return false, ErrCorrupt
		}
		copyMatch(dst, out, dd, length)
		out += length
	}
	return false, nil
}

const maxMatchLen = 258

// copyMatch copies length bytes from dist bytes back to dst[out:]. When
// the two overlap (a run), each copy doubles the part already repeated,
// so a run of zeros costs a few copies, not one step per byte.
func copyMatch(dst []byte, out, dist, length int) {
	from := out - dist
	for n := 0; n < length; {
		n += copy(dst[out+n:out+length], dst[from:out+n])
	}
}

// table is a two-level Huffman decoding table: the first primaryBits bits
// index entries that hold a symbol and its length, or point to a second
// level for longer codes.
type table struct {
	entries []uint32 // sym<<8 | length, or linkFlag | offset<<8 | subBits
	maxLen  uint
}

const (
	primaryBits = 9
	linkFlag    = 1 << 31
)

// build makes the table for a canonical code given by lens. It reports
// false for an over-subscribed code, or an incomplete one other than a
// single one-bit code (what zlib accepts).
func (t *table) build(lens []uint8) bool {
	var count [16]int
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	left := 1
	used := 0
	maxLen := uint(0)
	for b := 1; b < 16; b++ {
		left = left<<1 - count[b]
		if left < 0 {
			return false
		}
		used += count[b]
		if count[b] > 0 {
			maxLen = uint(b)
		}
	}
	if left > 0 && !(used == 1 && maxLen == 1) && used != 0 {
		return false
	}
	t.maxLen = maxLen
	var next [16]uint32
	code := uint32(0)
	for b := 1; b < 16; b++ {
		code = (code + uint32(count[b-1])) << 1
		next[b] = code
	}
	next[0] = 0
	primary := 1 << primaryBits
	subBits := uint(0)
	if maxLen > primaryBits {
		subBits = maxLen - primaryBits
	}
	// Second-level tables, one per primary slot that needs one, sized for
	// the longest code.
	if cap(t.entries) < primary {
		t.entries = make([]uint32, primary, primary*2)
	}
	t.entries = t.entries[:primary]
	clear(t.entries)
	for sym, l := range lens {
		if l == 0 {
			continue
		}
		r := uint32(bits.Reverse16(uint16(next[l]))) >> (16 - l)
		next[l]++
		if uint(l) <= primaryBits {
			for i := r; i < uint32(primary); i += 1 << l {
				t.entries[i] = uint32(sym)<<8 | uint32(l)
			}
			continue
		}
		slot := r & uint32(primary-1)
		e := t.entries[slot]
		if e&linkFlag == 0 {
			off := uint32(len(t.entries))
			t.entries = append(t.entries, make([]uint32, 1<<subBits)...)
			e = linkFlag | off<<8 | uint32(subBits)
			t.entries[slot] = e
		}
		off := e >> 8 & 0x7fffff
		for i := r >> primaryBits; i < 1<<subBits; i += 1 << (uint(l) - primaryBits) {
			t.entries[off+i] = uint32(sym)<<8 | uint32(l)
		}
	}
	return true
}

// decode reads one symbol with table t.
func (d *decoder) decode(t *table) (int, error) {
	if d.nbits < 15 {
		d.refill()
	}
	e := t.entries[d.bits&(1<<primaryBits-1)]
	if e&linkFlag != 0 {
		off := e >> 8 & 0x7fffff
		sub := d.bits >> primaryBits & (1<<(e&0xff) - 1)
		e = t.entries[off+uint32(sub)]
	}
	l := uint(e & 0xff)
	if l == 0 {
		return 0, ErrCorrupt // a code the table does not define
	}
	if d.nbits-l < d.over {
		return 0, ErrShort
	}
	d.bits >>= l
	d.nbits -= l
	return int(e >> 8), nil
}
