// Package inflate decodes deflate streams (RFC 1951), raw or zlib-wrapped
// (RFC 1950), held in memory into a buffer of known size: what reading a
// compressed qcow2 cluster or VMDK grain needs.
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
	"hash/adler32"
	"math/bits"

	"github.com/qimg/qimg/internal/rfc1951"
)

// Errors, for streams that are not valid deflate data or do not fit.
var (
	ErrCorrupt = errors.New("inflate: corrupt deflate stream")
	// ErrShort means the stream ended cleanly before dst was full.
	ErrShort = errors.New("inflate: stream ends before the output is full")
	// ErrTruncated means the input ran out in the middle of the stream.
	ErrTruncated = errors.New("inflate: input ends in the middle of the stream")
	// ErrLong means a zlib stream holds more than dst.
	ErrLong = errors.New("inflate: stream holds more than the output buffer")
)

// Decompress inflates src into dst and returns how many bytes it wrote:
// len(dst) when the stream holds at least that much (the rest is ignored),
// fewer with ErrShort when it ends early.
func Decompress(dst, src []byte) (int, error) {
	var d Decoder
	return d.Decompress(dst, src)
}

// A Decoder is Decompress with tables kept from one call to the next: a
// caller that inflates many streams (one per cluster) reuses one Decoder
// per goroutine and allocates nothing. The zero value is ready to use.
type Decoder struct {
	d decoder
}

// Decompress is the package's Decompress, reusing z's tables.
func (z *Decoder) Decompress(dst, src []byte) (int, error) {
	return z.d.run(dst, src, false)
}

// DecompressZlib inflates a zlib stream (RFC 1950: a two-byte header, raw
// deflate, the Adler-32 of the data) that must fit in dst: it returns the
// bytes written, with ErrShort when the stream ends before dst is full,
// ErrLong when it holds more, and ErrCorrupt for a bad header or checksum.
// Input after the checksum is ignored.
func (z *Decoder) DecompressZlib(dst, src []byte) (int, error) {
	if len(src) < 2 {
		return 0, ErrTruncated
	}
	cmf, flg := src[0], src[1]
	if cmf&0x0f != 8 || cmf>>4 > 7 || (uint(cmf)<<8|uint(flg))%31 != 0 || flg&0x20 != 0 {
		return 0, ErrCorrupt // not deflate, window over 32 KiB, or a preset dictionary
	}
	n, err := z.d.run(dst, src[2:], true)
	if err != nil && !errors.Is(err, ErrShort) {
		return n, err
	}
	end := 2 + z.d.consumed()
	if end+4 > len(src) {
		return n, ErrTruncated
	}
	if binary.BigEndian.Uint32(src[end:]) != adler32.Checksum(dst[:n]) {
		return n, ErrCorrupt
	}
	return n, err
}

// errFull stops decoding when dst is full.
var errFull = errors.New("output full")

// run decodes src into dst. Unless toEnd is set it stops when dst is
// full; with toEnd it reads on to the end of the stream, and any output
// past dst is ErrLong.
func (d *decoder) run(dst, src []byte, toEnd bool) (int, error) {
	d.src, d.pos, d.bits, d.nbits, d.over = src, 0, 0, 0, 0
	d.dst, d.out, d.toEnd = dst, 0, toEnd
	defer func() { d.src, d.dst = nil, nil }() // keep no caller memory alive
	for {
		if d.out == len(dst) && !toEnd {
			return d.out, nil
		}
		final, err := d.block()
		switch {
		case errors.Is(err, errFull):
			return d.out, nil
		case err != nil:
			return d.out, err
		case final && d.out < len(dst):
			return d.out, ErrShort
		case final:
			return d.out, nil
		}
	}
}

// consumed is how many bytes of src the stream has taken, counting a
// partly used byte as taken.
func (d *decoder) consumed() int {
	return d.pos - int((d.nbits-d.over)/8)
}

// full handles a full output buffer before the symbol that needs room:
// stop there, or with toEnd call it ErrLong.
func (d *decoder) full() error {
	if d.toEnd {
		return ErrLong
	}
	return errFull
}

type decoder struct {
	toEnd bool // see run
	src   []byte
	pos   int // next byte of src to load into bits
	bits  uint64
	nbits uint
	over  uint // bits loaded past the end of src (as zeros)
	dst   []byte
	out   int
	lit   table
	dist  table
	codes table // the code lengths' code of a dynamic block
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

// take returns the next n bits of the input.
func (d *decoder) take(n uint) (uint64, error) {
	if d.nbits < n {
		d.refill()
	}
	if d.nbits-n < d.over {
		return 0, ErrTruncated
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
		if !d.lit.build(fixedLit[:], litLenSymbols) || !d.dist.build(fixedDist[:], distSymbols) {
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

// stored copies a stored block (incompressible data) straight from the
// input.
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
	// Give back the whole bytes still in the bit buffer and copy from
	// where they came.
	d.pos = d.consumed()
	d.bits, d.nbits, d.over = 0, 0, 0
	k := copy(d.dst[d.out:], d.src[d.pos:min(d.pos+n, len(d.src))])
	d.pos += k
	d.out += k
	switch {
	case k == n:
		return nil
	case d.out == len(d.dst):
		return d.full()
	}
	return ErrTruncated
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
	cl := &d.codes
	if !cl.build(clLens[:], plainSymbols) {
		return ErrCorrupt
	}
	var lens [286 + 30]uint8
	for i := 0; i < nlit+ndist; {
		e, err := d.decode(cl)
		if err != nil {
			return err
		}
		sym := e >> valueShift
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
	if lens[256] == 0 || !d.lit.build(lens[:nlit], litLenSymbols) || !d.dist.build(lens[nlit:nlit+ndist], distSymbols) {
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
		if d.out == len(dst) && !d.toEnd {
			// Like zlib with a full output buffer: stop here, whatever
			// follows.
			return errFull
		}
		e, err := d.decode(&d.lit)
		if err != nil {
			return err
		}
		switch e & kindMask {
		case kindLiteral:
			if d.out == len(dst) {
				return ErrLong
			}
			dst[d.out] = byte(e >> valueShift)
			d.out++
			continue
		case kindEnd:
			return nil
		}
		length, err := d.based(e)
		if err != nil {
			return err
		}
		e, err = d.decode(&d.dist)
		if err != nil {
			return err
		}
		dist, err := d.based(e)
		if err != nil {
			return err
		}
		if dist > d.out {
			return ErrCorrupt // reaches before the start of the output
		}
		n := min(length, len(dst)-d.out)
		copyMatch(dst, d.out, dist, n)
		d.out += n
		if n < length {
			return d.full()
		}
	}
}

// based reads the extra bits of a length or distance code whose table
// entry is e and returns the value they give.
func (d *decoder) based(e uint32) (int, error) {
	extra, err := d.take(uint(e >> extraShift & extraMask))
	return int(e>>valueShift) + int(extra), err
}

// huffmanFast decodes while at least 16 input bytes and fastSlack output
// bytes remain, so no bound needs checking per symbol: a refill of 8 bytes
// gives 56 bits, enough for a length code with its extra bits (20) and a
// distance code with its extra bits (28), and a match may copy eight bytes
// at a time past its end. It reports whether it reached the end of the
// block.
func (d *decoder) huffmanFast() (bool, error) {
	src, dst := d.src, d.dst
	bitbuf, nbits, pos, out := d.bits, d.nbits, d.pos, d.out
	lit, dist := d.lit.entries, d.dist.entries
	// Array pointers let the compiler drop the bounds checks of the
	// first-level lookups, which are most of the work.
	litPrimary, distPrimary := (*[primarySize]uint32)(lit), (*[primarySize]uint32)(dist)
	defer func() { d.bits, d.nbits, d.pos, d.out = bitbuf, nbits, pos, out }()
outer:
	for pos+16 <= len(src) && out+fastSlack <= len(dst) {
		bitbuf |= binary.LittleEndian.Uint64(src[pos:]) << nbits
		pos += int(63-nbits) >> 3
		nbits |= 56
		var e uint32
		for {
			e = litPrimary[bitbuf&(primarySize-1)]
			if e&linkFlag != 0 {
				e = lit[e>>valueShift+uint32(bitbuf>>primaryBits&(1<<(e>>extraShift&extraMask)-1))]
			}
			l := uint(e & lenMask)
			bitbuf >>= l
			nbits -= l
			if e&kindMask != kindLiteral {
				break
			}
			// Runs of literals: decode the next one from the bits
			// already buffered when a whole code is certainly there.
			dst[out] = byte(e >> valueShift)
			out++
			if nbits < 15 {
				continue outer
			}
		}
		if e&kindMask != kindBase {
			if e&kindMask == kindEnd {
				return true, nil
			}
			return false, ErrCorrupt
		}
		if nbits < 48 {
			// A length's extra bits (up to 5) and a distance code with
			// its extra bits (up to 28) may need more than what is left.
			bitbuf |= binary.LittleEndian.Uint64(src[pos:]) << nbits
			pos += int(63-nbits) >> 3
			nbits |= 56
		}
		n := uint(e >> extraShift & extraMask)
		length := int(e>>valueShift) + int(bitbuf&(1<<n-1))
		bitbuf >>= n
		nbits -= n
		e = distPrimary[bitbuf&(primarySize-1)]
		if e&linkFlag != 0 {
			e = dist[e>>valueShift+uint32(bitbuf>>primaryBits&(1<<(e>>extraShift&extraMask)-1))]
		}
		if e&kindMask != kindBase {
			return false, ErrCorrupt
		}
		l := uint(e & lenMask)
		n = uint(e >> extraShift & extraMask)
		dd := int(e>>valueShift) + int(bitbuf>>l&(1<<n-1))
		bitbuf >>= l + n
		nbits -= l + n
		if dd > out {
			return false, ErrCorrupt
		}
		if dd >= 8 {
			// Eight bytes at a time, each load behind what the previous
			// stores wrote; the last store may run up to 7 bytes past the
			// match, into output not yet written.
			from := out - dd
			for i := 0; i < length; i += 8 {
				binary.LittleEndian.PutUint64(dst[out+i:], binary.LittleEndian.Uint64(dst[from+i:]))
			}
		} else {
			copyMatch(dst, out, dd, length)
		}
		out += length
	}
	return false, nil
}

const (
	maxMatchLen = 258
	// fastSlack is the output room huffmanFast needs for one pass of its
	// loop: the literals one refill can hold (56 bits, one bit or more
	// each), then a match, copied eight bytes at a time.
	fastSlack = 56 + maxMatchLen + 8
)

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
// index entries that say what a code means and how long it is, or point
// to a second level for longer codes.
type table struct {
	entries []uint32
	maxLen  uint
}

// An entry packs what decoding a code needs, so that one lookup gives a
// literal, or the base and extra-bit count of a length or distance.
const (
	lenMask    = 0xf // bits 0-3: code length
	extraShift = 4   // bits 4-7: extra bits after the code; for a link, the second level's index bits
	extraMask  = 0xf
	kindMask   = 3 << 8 // bits 8-9: what the code means
	linkFlag   = 1 << 10
	valueShift = 16 // bits 16-31: literal or symbol, base value, or a link's offset

	kindInvalid = 0 << 8 // a code the table does not define (zero entries)
	kindLiteral = 1 << 8 // value is a literal byte or a plain symbol
	kindBase    = 2 << 8 // value is the base of a length or distance
	kindEnd     = 3 << 8 // end of block

	primaryBits = 9
	primarySize = 1 << primaryBits
)

// alphabet says what the symbols of a table stand for.
type alphabet int

const (
	plainSymbols  alphabet = iota // code lengths: symbols as they are
	litLenSymbols                 // literals, end of block, lengths
	distSymbols                   // distances
)

// meaning returns the entry bits, but for the code length, of symbol sym.
func (a alphabet) meaning(sym int) uint32 {
	switch {
	case a == plainSymbols || a == litLenSymbols && sym < 256:
		return kindLiteral | uint32(sym)<<valueShift
	case a == litLenSymbols && sym == 256:
		return kindEnd
	case a == litLenSymbols && sym <= 285:
		return kindBase | uint32(rfc1951.LengthExtra[sym-257])<<extraShift | uint32(rfc1951.LengthBase[sym-257])<<valueShift
	case a == distSymbols && sym < 30:
		return kindBase | uint32(rfc1951.DistExtra[sym])<<extraShift | uint32(rfc1951.DistBase[sym])<<valueShift
	}
	return kindInvalid // 286, 287 and distances 30, 31 of the fixed code
}

// build makes the table for a canonical code given by lens. It reports
// false for an over-subscribed code, or an incomplete one other than a
// single one-bit code (what zlib accepts).
func (t *table) build(lens []uint8, a alphabet) bool {
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
	subBits := uint(0)
	if maxLen > primaryBits {
		subBits = maxLen - primaryBits
	}
	// Second-level tables, one per primary slot that needs one, sized for
	// the longest code.
	if cap(t.entries) < primarySize {
		t.entries = make([]uint32, primarySize, primarySize*2)
	}
	t.entries = t.entries[:primarySize]
	clear(t.entries)
	for sym, l := range lens {
		if l == 0 {
			continue
		}
		r := uint32(bits.Reverse16(uint16(next[l]))) >> (16 - l)
		next[l]++
		e := a.meaning(sym)
		if e != kindInvalid {
			e |= uint32(l)
		}
		if uint(l) <= primaryBits {
			for i := r; i < primarySize; i += 1 << l {
				t.entries[i] = e
			}
			continue
		}
		slot := r & (primarySize - 1)
		link := t.entries[slot]
		if link&linkFlag == 0 {
			link = linkFlag | uint32(len(t.entries))<<valueShift | uint32(subBits)<<extraShift
			t.entries = append(t.entries, make([]uint32, 1<<subBits)...)
			t.entries[slot] = link
		}
		off := link >> valueShift
		for i := r >> primaryBits; i < 1<<subBits; i += 1 << (uint(l) - primaryBits) {
			t.entries[off+i] = e
		}
	}
	return true
}

// decode reads one code with table t and returns its entry.
func (d *decoder) decode(t *table) (uint32, error) {
	if d.nbits < 15 {
		d.refill()
	}
	e := t.entries[d.bits&(primarySize-1)]
	if e&linkFlag != 0 {
		sub := d.bits >> primaryBits & (1<<(e>>extraShift&extraMask) - 1)
		e = t.entries[e>>valueShift+uint32(sub)]
	}
	l := uint(e & lenMask)
	if e&kindMask == kindInvalid {
		return 0, ErrCorrupt // a code the table does not define
	}
	if d.nbits-l < d.over {
		return 0, ErrTruncated
	}
	d.bits >>= l
	d.nbits -= l
	return e, nil
}
