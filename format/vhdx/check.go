package vhdx

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/qimg/qimg/image"
)

// Check verifies the BAT as QEMU's vhdx_co_check does, with its messages
// (QEMU prints them with error_report: they are CheckResult.Reports):
// every FULLY_PRESENT entry, sector bitmap entries included, must not
// overflow, must start and end inside the file (a partial last block is
// accepted), and payload blocks must not overlap the log or a region of
// the region table. QEMU counts the k-th FULLY_PRESENT entry as a sector
// bitmap block whenever k is a multiple of the chunk ratio plus one,
// whatever its place in the BAT; so does Check. Each finding is one
// corruption. QEMU repairs nothing here, and neither does Check in any
// repair mode.
func (img *Image) Check(ctx context.Context, repair image.RepairMode) (*image.CheckResult, error) {
	res := &image.CheckResult{Filename: img.name, Format: "vhdx"}
	bs := uint64(img.params.BlockSize)
	total := uint64(img.size)
	blocks := (total + bs - 1) / bs
	ratio := uint64(sectorsPerChunk) * uint64(img.params.LogicalSectorSize) / bs
	entries := uint64(0)
	if blocks > 0 {
		entries = blocks + (blocks-1)/ratio
	}
	fileSize := uint64(img.fileSize)
	report := func(format string, args ...any) {
		res.Reports = append(res.Reports, fmt.Sprintf(format, args...))
		res.Corruptions++
	}
	payblocks := ratio
	buf := make([]byte, min(batChunk, entries*8))
	for first := uint64(0); first < entries; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := min(uint64(len(buf))/8, entries-first)
		if _, err := img.r.ReadAt(buf[:n*8], int64(img.batOff+first*8)); err != nil {
			return nil, image.FileErrorf(img.name, "reading the BAT: %w", err)
		}
		for j := range n {
			i := first + j
			e := binary.LittleEndian.Uint64(buf[j*8:])
			if e&batStateMask != stateFullyPresent {
				continue
			}
			off := e & batOffsetMask
			length := bs
			if i*bs < total {
				length = min(bs, total-i*bs)
			}
			if off > math.MaxInt64-bs {
				report("VHDX BAT entry %d offset overflow.", i)
			}
			switch {
			case off >= fileSize:
				report("VHDX BAT entry %d start offset %d points after end of file (%d). Image has probably been truncated.", i, off, fileSize)
			case off+length > fileSize:
				report("VHDX BAT entry %d end offset %d points after end of file (%d). Image has probably been truncated.", i, off+length-1, fileSize)
			}
			if payblocks == 0 {
				payblocks = ratio
				continue
			}
			payblocks--
			for _, r := range img.qemuRegions {
				if r.overlaps(off, off+bs) {
					report("VHDX region %d-%d overlaps with region %d-%d", off, off+bs, r.start, r.end)
					break
				}
			}
		}
		first += n
	}
	return res, nil
}
