// Package deflate compresses whole buffers into raw deflate streams
// (RFC 1951) whose back-references reach at most 4 KiB back (or another
// window, up to deflate's 32 KiB).
//
// QEMU inflates qcow2 clusters with a 4 KiB window (inflateInit2(-12)), so
// a cluster compressed with an ordinary 32 KiB window is unreadable to it.
// The only windowed encoder among our dependencies (klauspost's
// NewWriterWindow) uses a fast greedy matcher that compresses about 3 %
// worse than zlib; this encoder does what zlib's level 5 does inside the
// same window — hash chains with lazy matching, dynamic Huffman blocks —
// so qimg's compressed images are as small as qemu-img's.
//
// It is a one-shot encoder for buffers held in memory (a qcow2 cluster is
// at most 2 MiB), not a streaming one.
package deflate

import "sync"

// WindowSize is the largest distance of a back-reference by default: the
// window QEMU inflates qcow2 clusters with.
const WindowSize = 4096

// MaxWindowSize is deflate's own limit, for formats read with a full
// window (CompressWindow).
const MaxWindowSize = 32768

const (
	minMatch   = 3
	maxMatch   = 258
	hashBits   = 15
	hashSize   = 1 << hashBits
	blockLimit = 1 << 14 // tokens per block, as zlib's default lit_bufsize

	// zlib's level-5 tuning: a match this long shortens the chain walk,
	// lazy evaluation only for matches shorter than maxLazy, stop the walk
	// at niceLength, and walk at most maxChain candidates.
	goodLength = 8
	maxLazy    = 16
	niceLength = 32
	maxChain   = 32
	tooFar     = 4096
)

// Encoder holds the tables of one compression; reuse it (or use Compress,
// which pools them) to avoid allocating them per buffer. It is not safe
// for concurrent use.
type Encoder struct {
	window int // largest back-reference distance
	head   [hashSize]int32
	prev   []int32 // previous position with the same hash, by position
	tokens []token
	bw     bitWriter
}

var pool = sync.Pool{New: func() any { return new(Encoder) }}

// Compress appends the raw deflate encoding of src to dst, with
// back-references at most WindowSize bytes back.
func Compress(dst, src []byte) []byte { return CompressWindow(dst, src, WindowSize) }

// CompressWindow is Compress with back-references at most window bytes
// back (at most MaxWindowSize).
func CompressWindow(dst, src []byte, window int) []byte {
	e := pool.Get().(*Encoder)
	e.window = min(window, MaxWindowSize)
	dst = e.Compress(dst, src)
	pool.Put(e)
	return dst
}

// Compress appends the raw deflate encoding of src to dst, with the
// encoder's window (WindowSize for a zero Encoder).
func (e *Encoder) Compress(dst, src []byte) []byte {
	if e.window <= 0 {
		e.window = WindowSize
	}
	e.bw.reset(dst)
	e.tokens = e.tokens[:0]
	if len(src) == 0 {
		e.writeBlock(nil, src, true)
		return e.bw.finish()
	}
	e.match(src)
	pos := 0
	for start := 0; start < len(e.tokens); start += blockLimit {
		end := min(start+blockLimit, len(e.tokens))
		n := tokenBytes(e.tokens[start:end])
		e.writeBlock(e.tokens[start:end], src[pos:pos+n], end == len(e.tokens))
		pos += n
	}
	return e.bw.finish()
}

func hash3(b []byte, i int) uint32 {
	return (uint32(b[i])<<16 | uint32(b[i+1])<<8 | uint32(b[i+2])) * 2654435761 >> (32 - hashBits)
}

// match turns src into literal and match tokens, the way zlib's
// deflate_slow does: at each position find the longest match in the
// window, but emit it only if the next position does not start a longer
// one.
func (e *Encoder) match(src []byte) {
	for i := range e.head {
		e.head[i] = -1
	}
	if cap(e.prev) < len(src) {
		e.prev = make([]int32, len(src))
	}
	e.prev = e.prev[:len(src)]
	n := len(src)
	insert := func(i int) {
		if i+minMatch <= n {
			h := hash3(src, i)
			e.prev[i] = e.head[h]
			e.head[h] = int32(i)
		}
	}
	prevLen, prevDist := 0, 0
	pending := false // a literal at i-1 waits for the lazy decision
	for i := 0; i < n; {
		insert(i)
		length, dist := 0, 0
		if prevLen < maxLazy && i+minMatch <= n {
			length, dist = e.longest(src, i, prevLen)
			if length == minMatch && dist > tooFar {
				length = 0 // costs more than three literals (zlib's TOO_FAR)
			}
		}
		if prevLen >= minMatch && length <= prevLen {
			// The match found at i-1 is at least as good: emit it.
			e.tokens = append(e.tokens, matchToken(prevLen, prevDist))
			for j := i + 1; j < i-1+prevLen; j++ {
				insert(j)
			}
			i += prevLen - 1
			prevLen, pending = 0, false
			continue
		}
		if pending {
			e.tokens = append(e.tokens, literalToken(src[i-1]))
		}
		prevLen, prevDist, pending = length, dist, true
		i++
	}
	if pending {
		if prevLen >= minMatch {
			e.tokens = append(e.tokens, matchToken(prevLen, prevDist))
		} else {
			e.tokens = append(e.tokens, literalToken(src[n-1]))
		}
	}
}

// longest finds the longest match for position i within the window,
// better than have; it returns length 0 when there is none.
func (e *Encoder) longest(src []byte, i, have int) (int, int) {
	chain := maxChain
	if have >= goodLength {
		chain >>= 2
	}
	limit := min(maxMatch, len(src)-i)
	best, bestDist := max(have, minMatch-1), 0
	if best >= limit {
		return 0, 0 // nothing longer fits before the end
	}
	for cand := e.prev[i]; cand >= 0 && i-int(cand) <= e.window && chain > 0; cand = e.prev[cand] {
		chain--
		c := int(cand)
		if src[c+best] != src[i+best] || src[c] != src[i] {
			continue
		}
		l := 0
		for l < limit && src[c+l] == src[i+l] {
			l++
		}
		if l > best {
			best, bestDist = l, i-c
			if l >= niceLength || l == limit {
				break
			}
		}
	}
	if bestDist == 0 {
		return 0, 0
	}
	return best, bestDist
}
