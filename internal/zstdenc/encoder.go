package zstdenc

import (
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/huff0"
)

// MaxInput is the largest input Encode takes: positions are uint16.
const MaxInput = 64 << 10

// Encoder writes one input at a time as a zstd frame. Its zero value is
// ready to use; it is not safe for concurrent use, and its tables (about
// 250 KiB) are worth reusing.
type Encoder struct {
	find  matchFinder
	huff  huff0.Scratch
	coder sequenceCoder
	block []byte
}

// Block types of RFC 8878 section 3.1.1.2.
const (
	blockRaw        = 0
	blockCompressed = 2
)

// Encode appends the frame of src to dst and returns it. src must be at
// most MaxInput bytes.
func (e *Encoder) Encode(dst, src []byte) ([]byte, error) {
	if len(src) > MaxInput {
		return dst, fmt.Errorf("zstd input of %d bytes is over %d", len(src), MaxInput)
	}
	dst = appendFrameHeader(dst, len(src))
	e.find.find(src)
	e.block = e.encodeLiterals(e.block[:0], e.find.lits)
	e.block = e.coder.encode(e.block, &e.find)
	if len(e.block) >= len(src) {
		dst = appendBlockHeader(dst, blockRaw, len(src))
		return append(dst, src...), nil
	}
	dst = appendBlockHeader(dst, blockCompressed, len(e.block))
	return append(dst, e.block...), nil
}

// appendFrameHeader appends the magic number and a single-segment frame
// header holding the content size n in the fewest bytes.
func appendFrameHeader(dst []byte, n int) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, 0xFD2FB528)
	switch {
	case n < 256:
		return append(dst, 0x20, byte(n))
	case n < 1<<16+256:
		return binary.LittleEndian.AppendUint16(append(dst, 0x60), uint16(n-256))
	default:
		return binary.LittleEndian.AppendUint32(append(dst, 0xA0), uint32(n))
	}
}

// appendBlockHeader appends the header of the frame's last (only) block.
func appendBlockHeader(dst []byte, typ, size int) []byte {
	h := 1 | typ<<1 | size<<3
	return append(dst, byte(h), byte(h>>8), byte(h>>16))
}
