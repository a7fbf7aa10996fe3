package zstdenc

import (
	"math"
	"math/bits"
)

// fseTable encodes one symbol stream of a block with a normalized
// distribution (RFC 8878 section 4.1). The decoder's cells of a symbol with
// count c get next states c..2c-1 in increasing position order; to emit a
// symbol from state x the encoder finds the cell whose range holds x,
// writes x's low bits and moves to that cell's position.
type fseTable struct {
	log      uint8
	sym      [64]symbolTransform
	first    [64]uint16 // per symbol, the index of its first cell in cells
	cells    [1 << llMaxLog]uint16
	symCells [1 << llMaxLog]uint8 // scratch: the symbol of each position
}

// symbolTransform is what encoding one symbol needs, in one load: the
// bits to write are (v + deltaBits) >> 16 for v = state + table size, and
// the new state is cells[deltaCell + v>>bits].
type symbolTransform struct {
	deltaBits uint32
	deltaCell int32
}

// build makes the table of norm (summing to 1 << log, -1 for "less than
// one").
func (t *fseTable) build(norm []int16, log uint8) {
	size := 1 << log
	t.log = log
	high := size - 1
	for s, c := range norm {
		if c == -1 {
			t.symCells[high] = uint8(s)
			high--
		}
	}
	step := size>>1 + size>>3 + 3
	pos := 0
	for s, c := range norm {
		for range max(int(c), 0) {
			t.symCells[pos] = uint8(s)
			pos = (pos + step) & (size - 1)
			for pos > high {
				pos = (pos + step) & (size - 1)
			}
		}
	}
	next := 0
	for s, c := range norm {
		n := max(int(c), 0)
		if c == -1 {
			n = 1
		}
		t.first[s] = uint16(next)
		if n > 0 {
			maxBits := int(log) - (bits.Len(uint(n)) - 1)
			t.sym[s] = symbolTransform{uint32(maxBits<<16 - n<<maxBits), int32(next - n)}
		}
		next += n
	}
	// The cells of each symbol in increasing position order.
	var fill [64]uint16
	for p := range size {
		s := t.symCells[p]
		t.cells[int(t.first[s])+int(fill[s])] = uint16(p)
		fill[s]++
	}
}

// rle makes the table of a stream of one symbol (mode RLE): no bits.
func (t *fseTable) rle(sym uint8) {
	t.log = 0
	t.first[sym] = 0
	t.sym[sym] = symbolTransform{0, -1}
	t.cells[0] = 0
}

// start is an initial state for the stream's last symbol.
func (t *fseTable) start(sym uint8) uint32 { return uint32(t.cells[t.first[sym]]) }

// normalize scales hist (total n) to 1 << log, every present symbol at
// least 1, the rounding error given to the most frequent symbol. It
// returns false when that symbol would drop below 1.
func normalize(norm []int16, hist []uint32, n int, log uint8) bool {
	size := 1 << log
	sum, big := 0, 0
	for s, c := range hist {
		if c == 0 {
			norm[s] = 0
			continue
		}
		v := max(1, int((uint64(c)<<log+uint64(n)/2)/uint64(n)))
		norm[s] = int16(v)
		sum += v
		if c > hist[big] {
			big = s
		}
	}
	v := int(norm[big]) + size - sum
	if v < 1 {
		return false
	}
	norm[big] = int16(v)
	return true
}

// writeNCount appends the description of norm (RFC 8878 section 4.1.1).
func writeNCount(w *bitWriter, norm []int16, log uint8) {
	w.grow(128)
	w.addFlushed(uint64(log-5), 4)
	remaining := 1 << log
	for s := 0; s < len(norm) && remaining > 0; s++ {
		p := int(norm[s])
		maxV := remaining + 1
		nb := uint8(bits.Len(uint(maxV)))
		low := (1<<nb - 1) - maxV
		v := p + 1
		switch {
		case v < low:
			w.addFlushed(uint64(v), nb-1)
		case v < 1<<(nb-1):
			w.addFlushed(uint64(v), nb)
		default:
			w.addFlushed(uint64(v+low), nb)
		}
		if p < 0 {
			p = 1
		}
		remaining -= p
		if p == 0 {
			// Count the zeros that follow, in 2-bit repeat flags.
			z := 0
			for s+1+z < len(norm) && norm[s+1+z] == 0 {
				z++
			}
			s += z
			for z >= 3 {
				w.addFlushed(3, 2)
				z -= 3
			}
			w.addFlushed(uint64(z), 2)
		}
	}
}

// predefinedBits is the cost in bits of coding hist's symbols with the
// predefined distribution def.
func predefinedBits(hist []uint32, def []int16, defLog int) float64 {
	cost := 0.0
	for s, c := range hist {
		if c == 0 {
			continue
		}
		p := float64(max(def[s], 1))
		cost += float64(c) * (float64(defLog) - math.Log2(p))
	}
	return cost
}

// ownBits is the cost in bits of coding hist's symbols (n in all, the
// last used one maxSym) with a distribution of their own, its description
// included.
func ownBits(hist []uint32, n, maxSym, tableLog int) float64 {
	size := 1 << tableLog
	cost, desc := 0.0, 4.0
	remaining := size + 1
	for s := 0; s <= maxSym; s++ {
		c := hist[s]
		norm := 0
		if c > 0 {
			norm = max(1, int(math.Round(float64(c)*float64(size)/float64(n))))
			cost += float64(c) * (float64(tableLog) - math.Log2(float64(norm)))
		}
		desc += float64(bits.Len(uint(remaining + 1)))
		remaining = max(1, remaining-norm)
	}
	return cost + desc
}
