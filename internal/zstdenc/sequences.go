package zstdenc

import (
	"encoding/binary"
	"math/bits"
)

// Compression modes of a sequence stream (RFC 8878 section 3.1.1.3.2.1).
const (
	modePredefined = 0
	modeRLE        = 1
	modeFSE        = 2
)

// sequenceCoder writes the sequences section of a block.
type sequenceCoder struct {
	ll, ml, of fseTable
	norm       [64]int16
	w          bitWriter
}

// encode appends the sequences section of what f found.
func (c *sequenceCoder) encode(dst []byte, f *matchFinder) []byte {
	n := len(f.seqs)
	switch {
	case n < 128:
		dst = append(dst, byte(n))
	case n < 0x7F00:
		dst = append(dst, byte(n>>8+0x80), byte(n))
	default:
		dst = append(dst, 0xFF, byte(n-0x7F00), byte((n-0x7F00)>>8))
	}
	if n == 0 {
		return dst
	}
	modesAt := len(dst)
	dst = append(dst, 0)
	var modes, m byte
	m, dst = c.chooseTable(&c.ll, dst, f.llh[:len(llDefault)], n, llDefault, llDefaultLog, llMaxLog)
	modes |= m << 6
	m, dst = c.chooseTable(&c.of, dst, f.ofh[:len(ofDefault)], n, ofDefault, ofDefaultLog, ofMaxLog)
	modes |= m << 4
	m, dst = c.chooseTable(&c.ml, dst, f.mlh[:len(mlDefault)], n, mlDefault, mlDefaultLog, mlMaxLog)
	modes |= m << 2
	dst[modesAt] = modes
	return c.writeStream(dst, f)
}

// chooseTable picks RLE, the predefined distribution or one of the
// stream's own, whichever costs fewest bits, builds t for it and appends
// its description.
func (c *sequenceCoder) chooseTable(t *fseTable, dst []byte, hist []uint32, n int, def []int16, defLog, maxLog uint8) (byte, []byte) {
	used, last := 0, 0
	for s, count := range hist {
		if count > 0 {
			used++
			last = s
		}
	}
	if used == 1 {
		t.rle(uint8(last))
		return modeRLE, append(dst, byte(last))
	}
	log := min(maxLog, max(5, uint8(bits.Len(uint(n)))))
	norm := c.norm[:last+1]
	if used*2 > 1<<log || predefinedBits(hist, def, int(defLog)) <= ownBits(hist, n, last, int(log)) ||
		!normalize(norm, hist[:last+1], n, log) {
		t.build(def, defLog)
		return modePredefined, dst
	}
	t.build(norm, log)
	c.w.out = dst
	writeNCount(&c.w, norm, log)
	c.w.flush()
	return modeFSE, c.w.out
}

// writeStream appends the sequences' bitstream, which the decoder reads
// backwards: the last sequence is written first.
func (c *sequenceCoder) writeStream(dst []byte, f *matchFinder) []byte {
	// The bit accumulator lives in locals so it stays in registers: at
	// most 26 bits of states and 48 of extra bits per sequence, written
	// out after each group, keep it under 64 bits.
	w := &c.w
	w.out = dst
	w.grow(len(f.seqs)*10 + 16)
	out := w.out[:cap(w.out)]
	o := len(w.out)
	var acc uint64
	var nb uint
	n := len(f.seqs) - 1
	seqs := f.seqs[:n+1]
	llc, mlc, ofc, offBase := f.llc[:n+1], f.mlc[:n+1], f.ofc[:n+1], f.offBase[:n+1]
	ll, ml, of := &c.ll, &c.ml, &c.of
	llSize, mlSize, ofSize := uint32(1)<<ll.log, uint32(1)<<ml.log, uint32(1)<<of.log
	sl, so, sm := ll.start(llc[n])+llSize, of.start(ofc[n])+ofSize, ml.start(mlc[n])+mlSize
	for i := n; i >= 0; i-- {
		if i < n {
			oe := of.sym[ofc[i]]
			b := (so + oe.deltaBits) >> 16
			acc |= uint64(so&(1<<b-1)) << nb
			nb += uint(b)
			so = uint32(of.cells[int32(so>>b)+oe.deltaCell]) + ofSize
			me := ml.sym[mlc[i]]
			b = (sm + me.deltaBits) >> 16
			acc |= uint64(sm&(1<<b-1)) << nb
			nb += uint(b)
			sm = uint32(ml.cells[int32(sm>>b)+me.deltaCell]) + mlSize
			le := ll.sym[llc[i]]
			b = (sl + le.deltaBits) >> 16
			acc |= uint64(sl&(1<<b-1)) << nb
			nb += uint(b)
			sl = uint32(ll.cells[int32(sl>>b)+le.deltaCell]) + llSize
			binary.LittleEndian.PutUint64(out[o:], acc)
			o += int(nb >> 3)
			acc >>= nb &^ 7
			nb &= 7
		}
		s := seqs[i]
		lc, mc, oc := llc[i], mlc[i], ofc[i]
		acc |= uint64(s.litLen-llBase[lc]) << nb
		nb += uint(llBits[lc])
		acc |= uint64(s.matchLen-mlBase[mc]) << nb
		nb += uint(mlBits[mc])
		acc |= uint64(offBase[i]&(1<<oc-1)) << nb
		nb += uint(oc)
		binary.LittleEndian.PutUint64(out[o:], acc)
		o += int(nb >> 3)
		acc >>= nb &^ 7
		nb &= 7
	}
	w.out, w.acc, w.nbits = out[:o], acc, uint8(nb)
	w.add(uint64(sm-mlSize), ml.log)
	w.add(uint64(so-ofSize), of.log)
	w.flushBytes()
	w.add(uint64(sl-llSize), ll.log)
	w.add(1, 1)
	w.flush()
	return w.out
}
