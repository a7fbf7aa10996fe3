package deflate

import (
	"math/bits"
	"slices"

	"github.com/qimg/qimg/internal/rfc1951"
)

// token is a literal byte or a (length, distance) match.
type token uint32

const matchFlag = 1 << 31

func literalToken(b byte) token { return token(b) }

func matchToken(length, dist int) token {
	return matchFlag | token(length-minMatch)<<16 | token(dist-1)
}

func (t token) isMatch() bool { return t&matchFlag != 0 }
func (t token) literal() int  { return int(t & 0xff) }
func (t token) length() int   { return int(t>>16&0x1ff) + minMatch }
func (t token) dist() int     { return int(t&0xffff) + 1 }

// lengthCodes maps a match length to its code: read-only after
// initialisation. Distances need no table (see distCode).
var lengthCodes = codeTable(rfc1951.LengthBase[:], maxMatch)

func codeTable(base []uint16, maxValue int) []uint8 {
	t := make([]uint8, maxValue+1)
	c := 0
	for v := int(base[0]); v <= maxValue; v++ {
		for c+1 < len(base) && int(base[c+1]) <= v {
			c++
		}
		t[v] = uint8(c)
	}
	return t
}

func lengthCode(length int) int { return int(lengthCodes[length]) }

// distCode is the code of a match distance (1..32768). Codes 0-3 are the
// distances 1-4; after them each power of two of dist-1 takes two codes,
// one per half, which the bit below the top one tells apart. Computed,
// because a 32 KiB table cost every qimg run its initialisation.
func distCode(dist int) int {
	d := uint32(dist - 1)
	if d < 4 {
		return int(d)
	}
	top := bits.Len32(d) - 1
	return 2*top + int(d>>(top-1)&1)
}

// huffCode is a canonical Huffman code: a length per symbol and the
// bit-reversed code to send (deflate sends codes MSB first into an
// LSB-first stream).
type huffCode struct {
	lens  []uint8
	codes []uint16
}

// writeBlock encodes tokens as one block, choosing the cheapest of a
// dynamic Huffman, the fixed Huffman and a stored block. raw holds the
// bytes the tokens describe (for a stored block).
func (e *Encoder) writeBlock(tokens []token, raw []byte, final bool) {
	var litFreq [286]int
	var distFreq [30]int
	for _, t := range tokens {
		if t.isMatch() {
			litFreq[257+lengthCode(t.length())]++
			distFreq[distCode(t.dist())]++
		} else {
			litFreq[t.literal()]++
		}
	}
	litFreq[256]++ // end of block
	lit := buildCode(litFreq[:], 15)
	dist := buildCode(distFreq[:], 15)
	header := newDynamicHeader(lit, dist)
	dynamic := 3 + header.bits() + dataBits(tokens, lit, dist)
	fixedLit, fixedDist := fixedCodes()
	fixed := 3 + dataBits(tokens, fixedLit, fixedDist)
	stored := -1
	if len(raw) <= 65535 {
		stored = (3+7)&^7 + 32 + len(raw)*8 // header padded to a byte, LEN/NLEN, data
	}
	finalBit := uint64(0)
	if final {
		finalBit = 1
	}
	switch {
	case stored >= 0 && stored <= min(dynamic, fixed):
		e.bw.write(finalBit, 3) // BTYPE 00
		e.bw.alignByte()
		e.bw.write(uint64(len(raw)), 16)
		e.bw.write(uint64(^uint16(len(raw))), 16)
		e.bw.writeBytes(raw)
	case fixed <= dynamic:
		e.bw.write(finalBit|1<<1, 3)
		e.writeTokens(tokens, fixedLit, fixedDist)
	default:
		e.bw.write(finalBit|2<<1, 3)
		header.write(&e.bw)
		e.writeTokens(tokens, lit, dist)
	}
}

// tokenBytes is how many source bytes tokens describe.
func tokenBytes(tokens []token) int {
	n := 0
	for _, t := range tokens {
		if t.isMatch() {
			n += t.length()
		} else {
			n++
		}
	}
	return n
}

func dataBits(tokens []token, lit, dist huffCode) int {
	n := int(lit.lens[256])
	for _, t := range tokens {
		if !t.isMatch() {
			n += int(lit.lens[t.literal()])
			continue
		}
		lc, dc := lengthCode(t.length()), distCode(t.dist())
		n += int(lit.lens[257+lc]) + int(rfc1951.LengthExtra[lc]) + int(dist.lens[dc]) + int(rfc1951.DistExtra[dc])
	}
	return n
}

func (e *Encoder) writeTokens(tokens []token, lit, dist huffCode) {
	bw := &e.bw
	for _, t := range tokens {
		if !t.isMatch() {
			s := t.literal()
			bw.write(uint64(lit.codes[s]), uint(lit.lens[s]))
			continue
		}
		l, d := t.length(), t.dist()
		lc, dc := lengthCode(l), distCode(d)
		bw.write(uint64(lit.codes[257+lc]), uint(lit.lens[257+lc]))
		bw.write(uint64(l-int(rfc1951.LengthBase[lc])), uint(rfc1951.LengthExtra[lc]))
		bw.write(uint64(dist.codes[dc]), uint(dist.lens[dc]))
		bw.write(uint64(d-int(rfc1951.DistBase[dc])), uint(rfc1951.DistExtra[dc]))
	}
	bw.write(uint64(lit.codes[256]), uint(lit.lens[256]))
}

// fixedCodes is RFC 1951's fixed Huffman code (§3.2.6).
func fixedCodes() (huffCode, huffCode) {
	lit, dist := rfc1951.FixedLitLens, rfc1951.FixedDistLens
	return canonical(lit[:]), canonical(dist[:])
}

// buildCode makes a Huffman code for freq with no code longer than
// maxBits (zlib's method: build the tree, then push overlong codes up and
// shorten others, keeping Kraft's inequality).
func buildCode(freq []int, maxBits int) huffCode {
	type node struct {
		freq        int
		sym         int // leaf symbol, or -1
		left, right int
	}
	// Like zlib, make sure two symbols have a code: a code of one
	// symbol is incomplete, which inflaters reject for the code-length
	// code.
	freq = slices.Clone(freq)
	for s := 0; s < len(freq) && countUsed(freq) < 2; s++ {
		if freq[s] == 0 {
			freq[s] = 1
		}
	}
	var nodes []node
	for s, f := range freq {
		if f > 0 {
			nodes = append(nodes, node{f, s, -1, -1})
		}
	}
	lens := make([]uint8, len(freq))
	// Merge the two lightest trees until one is left; a sorted queue of
	// leaves and a queue of merged nodes (which come out in order) avoid a
	// heap.
	leaves := make([]int, len(nodes))
	for i := range leaves {
		leaves[i] = i
	}
	slices.SortStableFunc(leaves, func(a, b int) int { return nodes[a].freq - nodes[b].freq })
	var merged []int
	pop := func() int {
		if len(merged) == 0 || len(leaves) > 0 && nodes[leaves[0]].freq <= nodes[merged[0]].freq {
			x := leaves[0]
			leaves = leaves[1:]
			return x
		}
		x := merged[0]
		merged = merged[1:]
		return x
	}
	for len(leaves)+len(merged) > 1 {
		a, b := pop(), pop()
		nodes = append(nodes, node{nodes[a].freq + nodes[b].freq, -1, a, b})
		merged = append(merged, len(nodes)-1)
	}
	// Depth of every leaf.
	blCount := make([]int, 64)
	depth := make([]int, len(nodes))
	for i := len(nodes) - 1; i >= 0; i-- {
		if nodes[i].sym < 0 {
			depth[nodes[i].left] = depth[i] + 1
			depth[nodes[i].right] = depth[i] + 1
		} else {
			blCount[depth[i]]++
		}
	}
	limitLengths(blCount, maxBits)
	// Hand the lengths out again: the most frequent symbols get the
	// shortest codes.
	syms := make([]int, 0, len(freq))
	for s, f := range freq {
		if f > 0 {
			syms = append(syms, s)
		}
	}
	slices.SortStableFunc(syms, func(a, b int) int { return freq[b] - freq[a] })
	i := 0
	for b := 1; b <= maxBits; b++ {
		for range blCount[b] {
			lens[syms[i]] = uint8(b)
			i++
		}
	}
	return canonical(lens)
}

func countUsed(freq []int) int {
	n := 0
	for _, f := range freq {
		if f > 0 {
			n++
		}
	}
	return n
}

// limitLengths turns the leaf counts per depth of a Huffman tree into
// counts of a complete prefix code with no code longer than maxBits.
// Overlong leaves are cut to maxBits, which over-subscribes the code
// (Kraft sum above 1); leaves are then moved one level down, the deepest
// first, until the sum is at most 1, and finally the longest codes are
// shortened until it is exactly 1: zlib's inflate rejects incomplete
// literal/length and distance codes.
func limitLengths(blCount []int, maxBits int) {
	for b := maxBits + 1; b < len(blCount); b++ {
		blCount[maxBits] += blCount[b]
		blCount[b] = 0
	}
	kraft := 0 // sum of 2^(maxBits-len) over all leaves; complete = 1<<maxBits
	for b := 1; b <= maxBits; b++ {
		kraft += blCount[b] << (maxBits - b)
	}
	full := 1 << maxBits
	for kraft > full {
		b := maxBits - 1
		for blCount[b] == 0 {
			b--
		}
		blCount[b]--
		blCount[b+1]++
		kraft -= 1 << (maxBits - b - 1)
	}
	for kraft < full {
		// Shorten the longest code whose shortening does not overshoot.
		b := maxBits
		for b > 1 && (blCount[b] == 0 || 1<<(maxBits-b) > full-kraft) {
			b--
		}
		blCount[b]--
		blCount[b-1]++
		kraft += 1 << (maxBits - b)
	}
}

// canonical assigns deflate's canonical codes to code lengths.
func canonical(lens []uint8) huffCode {
	var count [16]uint16
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	var next [16]uint16
	code := uint16(0)
	for b := 1; b < 16; b++ {
		code = (code + count[b-1]) << 1
		next[b] = code
	}
	codes := make([]uint16, len(lens))
	for s, l := range lens {
		if l > 0 {
			codes[s] = bits.Reverse16(next[l]) >> (16 - l)
			next[l]++
		}
	}
	return huffCode{lens: lens, codes: codes}
}

// dynamicHeader is the code-length part of a dynamic block.
type dynamicHeader struct {
	nlit, ndist int
	rle         []uint16 // code length symbols 0..18, extra in the high byte
	cl          huffCode
	ncl         int
}

func newDynamicHeader(lit, dist huffCode) *dynamicHeader {
	h := &dynamicHeader{nlit: 286, ndist: 30}
	for h.nlit > 257 && lit.lens[h.nlit-1] == 0 {
		h.nlit--
	}
	for h.ndist > 1 && dist.lens[h.ndist-1] == 0 {
		h.ndist--
	}
	all := append(slices.Clone(lit.lens[:h.nlit]), dist.lens[:h.ndist]...)
	var freq [19]int
	for i := 0; i < len(all); {
		l := all[i]
		run := 1
		for i+run < len(all) && all[i+run] == l {
			run++
		}
		i += run
		for run > 0 {
			switch {
			case l == 0 && run >= 11:
				n := min(run, 138)
				h.rle = append(h.rle, 18|uint16(n-11)<<8)
				freq[18]++
				run -= n
			case l == 0 && run >= 3:
				h.rle = append(h.rle, 17|uint16(run-3)<<8)
				freq[17]++
				run = 0
			case l != 0 && run >= 4:
				h.rle = append(h.rle, uint16(l))
				freq[l]++
				run--
				for run >= 3 {
					n := min(run, 6)
					h.rle = append(h.rle, 16|uint16(n-3)<<8)
					freq[16]++
					run -= n
				}
			default:
				h.rle = append(h.rle, uint16(l))
				freq[l]++
				run--
			}
		}
	}
	h.cl = buildCode(freq[:], 7)
	h.ncl = 19
	for h.ncl > 4 && h.cl.lens[rfc1951.CodeLengthOrder[h.ncl-1]] == 0 {
		h.ncl--
	}
	return h
}

var rleExtra = [19]uint{16: 2, 17: 3, 18: 7}

func (h *dynamicHeader) bits() int {
	n := 5 + 5 + 4 + 3*h.ncl
	for _, r := range h.rle {
		s := r & 0xff
		n += int(h.cl.lens[s]) + int(rleExtra[s])
	}
	return n
}

func (h *dynamicHeader) write(bw *bitWriter) {
	bw.write(uint64(h.nlit-257), 5)
	bw.write(uint64(h.ndist-1), 5)
	bw.write(uint64(h.ncl-4), 4)
	for _, s := range rfc1951.CodeLengthOrder[:h.ncl] {
		bw.write(uint64(h.cl.lens[s]), 3)
	}
	for _, r := range h.rle {
		s := r & 0xff
		bw.write(uint64(h.cl.codes[s]), uint(h.cl.lens[s]))
		bw.write(uint64(r>>8), rleExtra[s])
	}
}

// bitWriter packs bits LSB first, as deflate does.
type bitWriter struct {
	out   []byte
	acc   uint64
	nbits uint
}

func (w *bitWriter) reset(dst []byte) { w.out, w.acc, w.nbits = dst, 0, 0 }

func (w *bitWriter) write(v uint64, n uint) {
	w.acc |= v << w.nbits
	w.nbits += n
	for w.nbits >= 8 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
		w.nbits -= 8
	}
}

func (w *bitWriter) alignByte() {
	if w.nbits > 0 {
		w.write(0, 8-w.nbits)
	}
}

func (w *bitWriter) writeBytes(b []byte) {
	w.alignByte()
	w.out = append(w.out, b...)
}

func (w *bitWriter) finish() []byte {
	w.alignByte()
	return w.out
}
