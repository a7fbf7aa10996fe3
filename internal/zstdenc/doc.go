// Package zstdenc writes zstd frames (RFC 8878) of inputs up to 64 KiB,
// one qcow2 cluster at a time, faster than a general-purpose encoder.
//
// qcow2 compresses every cluster on its own: no history crosses clusters,
// so a frame is one single-segment frame (the content size in its header,
// no window descriptor, no checksum) with one block. Knowing the input is
// at most 64 KiB lets the match finder keep uint16 positions in small hash
// tables that are cleared per input, and lets the sequence coder keep its
// bit accumulator in registers. On the clusters of an OS disk image it
// spends about 0.75 of the time klauspost/compress's zstd encoder spends at
// its default level, for the same output size (docs/benchmarks.md).
//
// The match finder is a double-hash finder (8-byte long hashes, 5-byte
// short matches, a repeat-offset check, immediate repeats). Literals are
// Huffman-coded with klauspost's huff0; each of the three sequence
// streams uses RLE, the predefined distribution or one of its own,
// whichever is cheapest. A block that would not be smaller than its input
// is stored raw.
//
// Frames decode with libzstd and with klauspost's decoder (tested, and
// fuzzed: every frame must decode to its input).
package zstdenc
