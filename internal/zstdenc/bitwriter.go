package zstdenc

import "encoding/binary"

// bitWriter writes bits LSB first, as FSE streams and table descriptions
// are read. add does not write out: callers call flushBytes before 64
// bits pile up, and out keeps room for the 8 bytes flushBytes stores
// (see grow).
type bitWriter struct {
	out   []byte
	acc   uint64
	nbits uint8
}

func (w *bitWriter) add(v uint64, n uint8) {
	w.acc |= (v & (1<<n - 1)) << w.nbits
	w.nbits += n
}

// addFlushed is add for callers that do not count bits.
func (w *bitWriter) addFlushed(v uint64, n uint8) {
	w.add(v, n)
	w.flushBytes()
}

// grow makes room for n more bytes plus the 8 flushBytes may touch.
func (w *bitWriter) grow(n int) {
	if cap(w.out)-len(w.out) < n+8 {
		w.out = append(w.out[:len(w.out):len(w.out)], make([]byte, n+8)...)[:len(w.out)]
	}
}

// flushBytes writes out the whole bytes gathered.
func (w *bitWriter) flushBytes() {
	k := w.nbits >> 3
	l := len(w.out)
	binary.LittleEndian.PutUint64(w.out[l:l+8], w.acc)
	w.out = w.out[:l+int(k)]
	w.acc >>= k * 8
	w.nbits &= 7
}

// flush writes the whole bytes left, then the partial one.
func (w *bitWriter) flush() {
	for w.nbits > 0 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
		w.nbits -= min(w.nbits, 8)
	}
	w.acc, w.nbits = 0, 0
}
