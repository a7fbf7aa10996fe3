package zstdenc

import (
	"encoding/binary"
	"math/bits"
)

// Hash table sizes for one input of at most 64 KiB: the long table
// hashes 8 bytes, the short one 4. Positions are uint16 and the tables
// are cleared per input (48 KiB, well under a microsecond): an empty entry
// points at position 0, which is a real position, so candidates need no
// validity check, only the comparison of their bytes.
const (
	longBits  = 15
	shortBits = 14
	// searchStrength makes the step grow by one for every 2^searchStrength
	// bytes without a match, so incompressible data is skipped quickly.
	searchStrength = 8
	// minInput is the shortest input searched for matches: the finder
	// reads 8 bytes at a time and stops 8 bytes before the end.
	minInput = 16
	// maxSequences bounds the sequences of one input: each match covers
	// at least 4 bytes.
	maxSequences = MaxInput/4 + 1
)

// sequence is one zstd sequence's lengths; the value coded for its match
// distance (a repeat code or the distance plus 3) is in the finder's
// offBase.
type sequence struct {
	litLen, matchLen uint32
}

// matchFinder splits one input at a time into sequences and literals,
// reusing its tables.
type matchFinder struct {
	long  [1 << longBits]uint16
	short [1 << shortBits]uint16
	seqs  []sequence
	lits  []byte
	nlits int
	// The symbols of each sequence and their histograms, computed as the
	// sequences are found (saves the entropy stage a pass over them);
	// r1..r3 is the format's repeat-offset history.
	llc, mlc, ofc [maxSequences]uint8
	offBase       [maxSequences]uint32
	llh, mlh, ofh [64]uint32
	r1, r2, r3    uint32
}

func load64(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i:]) }
func load32(b []byte, i int) uint32 { return binary.LittleEndian.Uint32(b[i:]) }

func hashLong(u uint64) uint32 { return uint32((u * 0xcf1bbcdcb7a56463) >> (64 - longBits)) }
func hashShort(u uint64) uint32 {
	return uint32(((u << 32) * 0xcf1bbcdcb7a56463) >> (64 - shortBits))
}

// matchLen counts the equal bytes of src at a and b (a < b) up to its end.
func matchLen(src []byte, a, b int) int {
	n := 0
	for b+n+8 <= len(src) {
		x := load64(src, a+n) ^ load64(src, b+n)
		if x != 0 {
			return n + bits.TrailingZeros64(x)>>3
		}
		n += 8
	}
	for b+n < len(src) && src[a+n] == src[b+n] {
		n++
	}
	return n
}

// reset readies f for an input of n bytes.
func (f *matchFinder) reset(n int) {
	if cap(f.lits) < n+16 {
		f.lits = make([]byte, n+16)
		f.seqs = make([]sequence, 0, n/4+1)
	}
	f.lits = f.lits[:cap(f.lits)]
	f.seqs = f.seqs[:0]
	f.nlits = 0
	clear(f.llh[:])
	clear(f.mlh[:])
	clear(f.ofh[:])
	f.r1, f.r2, f.r3 = 1, 4, 8
}

// find fills f.seqs and f.lits with the sequences of src, at most
// MaxInput bytes.
func (f *matchFinder) find(src []byte) {
	n := len(src)
	f.reset(n)
	if n < minInput {
		f.nlits = copy(f.lits, src)
		f.lits = f.lits[:f.nlits]
		return
	}
	clear(f.long[:])
	clear(f.short[:])
	limit := n - 8
	anchor := 0
	rep1, rep2 := 1, 4
	ip := 1
	for ip < limit {
		cur := load64(src, ip)
		hl, hs := hashLong(cur), hashShort(cur)
		cl, cs := f.long[hl], f.short[hs]
		f.long[hl] = uint16(ip)
		f.short[hs] = uint16(ip)

		var start, cand, mlen int
		switch {
		case ip+1 >= rep1 && load32(src, ip+1-rep1) == uint32(cur>>8):
			start, cand = ip+1, ip+1-rep1
			mlen = 4 + matchLen(src, cand+4, start+4)
		case load64(src, int(cl)) == cur:
			start, cand = ip, int(cl)
			mlen = 8 + matchLen(src, cand+8, start+8)
		case (load64(src, int(cs))^cur)&0xFF_FFFF_FFFF == 0:
			// A short match: prefer a long one starting at the next byte.
			next := load64(src, ip+1)
			hl1 := hashLong(next)
			cl1 := f.long[hl1]
			f.long[hl1] = uint16(ip + 1)
			if load64(src, int(cl1)) == next {
				start, cand = ip+1, int(cl1)
				mlen = 8 + matchLen(src, cand+8, start+8)
			} else {
				start, cand = ip, int(cs)
				mlen = 5 + matchLen(src, cand+5, start+5)
			}
		default:
			ip += (ip-anchor)>>searchStrength + 1
			continue
		}
		for cand > 0 && start > anchor && src[cand-1] == src[start-1] {
			cand--
			start--
			mlen++
		}
		off := start - cand
		if off != rep1 {
			rep2, rep1 = rep1, off
		}
		f.emit(src, anchor, start, mlen, off)
		ip = start + mlen
		anchor = ip
		if ip >= limit {
			break
		}
		f.insert(src, start+2)
		f.insert(src, ip-2)
		f.short[hashShort(load64(src, ip-1))] = uint16(ip - 1)
		// Immediate repeats of the second most recent offset.
		for ip < limit && ip >= rep2 && load32(src, ip-rep2) == load32(src, ip) {
			mlen = 4 + matchLen(src, ip-rep2+4, ip+4)
			rep1, rep2 = rep2, rep1
			f.insert(src, ip)
			f.emit(src, ip, ip, mlen, rep1)
			ip += mlen
			anchor = ip
		}
	}
	f.nlits += copy(f.lits[f.nlits:], src[anchor:])
	f.lits = f.lits[:f.nlits]
}

func (f *matchFinder) insert(src []byte, i int) {
	u := load64(src, i)
	f.long[hashLong(u)] = uint16(i)
	f.short[hashShort(u)] = uint16(i)
}

// emit records the literals src[anchor:start] and a match of mlen bytes
// at distance off.
func (f *matchFinder) emit(src []byte, anchor, start, mlen, off int) {
	// Literal runs are mostly short: copy 16 bytes at a time, past the
	// end if need be (lits has 16 bytes of slack).
	d, l := f.nlits, start-anchor
	if l <= 16 && anchor+16 <= len(src) {
		copy(f.lits[d:d+16], src[anchor:anchor+16])
	} else {
		copy(f.lits[d:], src[anchor:start])
	}
	f.nlits += l
	i := len(f.seqs)
	f.seqs = append(f.seqs, sequence{uint32(l), uint32(mlen)})
	var ob uint32
	ob, f.r1, f.r2, f.r3 = offsetValue(uint32(l), uint32(off), f.r1, f.r2, f.r3)
	lc, mc, oc := llCode(uint32(l)), mlCode(uint32(mlen)), uint8(bits.Len32(ob)-1)
	f.llh[lc]++
	f.mlh[mc]++
	f.ofh[oc]++
	f.llc[i], f.mlc[i], f.ofc[i], f.offBase[i] = lc, mc, oc, ob
}
