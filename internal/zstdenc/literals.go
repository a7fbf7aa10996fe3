package zstdenc

import (
	"encoding/binary"
	"errors"

	"github.com/klauspost/compress/huff0"
)

// Literals block types of RFC 8878 section 3.1.1.3.1.1.
const (
	literalsRaw        = 0
	literalsRLE        = 1
	literalsCompressed = 2
)

// encodeLiterals appends the literals section: Huffman-coded (one stream
// below 1 KiB, four above) when that is smaller, else RLE or raw.
func (e *Encoder) encodeLiterals(dst, lits []byte) []byte {
	n := len(lits)
	if n < 32 {
		return append(appendRawLiteralsHeader(dst, literalsRaw, n), lits...)
	}
	e.huff.Reuse = huff0.ReusePolicyNone
	var out []byte
	var err error
	if n < 1024 {
		out, _, err = huff0.Compress1X(lits, &e.huff)
	} else {
		out, _, err = huff0.Compress4X(lits, &e.huff)
	}
	switch {
	case errors.Is(err, huff0.ErrUseRLE):
		return append(appendRawLiteralsHeader(dst, literalsRLE, n), lits[0])
	case err != nil: // incompressible
		return append(appendRawLiteralsHeader(dst, literalsRaw, n), lits...)
	}
	// huff0 fails rather than grow its input, so the compressed size c
	// is below n and fits wherever n fits.
	c := len(out)
	switch {
	case n < 1024: // one stream, 10-bit sizes
		h := literalsCompressed | 0<<2 | n<<4 | c<<14
		dst = append(dst, byte(h), byte(h>>8), byte(h>>16))
	case n < 1<<14: // four streams, 14-bit sizes
		h := literalsCompressed | 2<<2 | n<<4 | c<<18
		dst = binary.LittleEndian.AppendUint32(dst, uint32(h))
	default: // four streams, 18-bit sizes
		h := uint64(literalsCompressed | 3<<2 | n<<4 | c<<22)
		dst = append(binary.LittleEndian.AppendUint32(dst, uint32(h)), byte(h>>32))
	}
	return append(dst, out...)
}

// appendRawLiteralsHeader appends the header of raw or RLE literals.
func appendRawLiteralsHeader(dst []byte, typ, n int) []byte {
	switch {
	case n < 32:
		return append(dst, byte(typ|n<<3))
	case n < 4096:
		h := typ | 1<<2 | n<<4
		return append(dst, byte(h), byte(h>>8))
	default:
		h := typ | 3<<2 | n<<4
		return append(dst, byte(h), byte(h>>8), byte(h>>16))
	}
}
