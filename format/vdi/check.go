package vdi

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/qimg/qimg/image"
)

// Check verifies the block map as QEMU's vdi_co_check does, with its
// messages: every allocated entry of the blocks_in_image entries must be
// a block index below blocks_in_image, used by one entry only, and their
// count must be the header's blocks_allocated. QEMU repairs nothing, so a
// repair mode is image.ErrUnsupported (qemu-img check -r exits with 63).
func (img *Image) Check(ctx context.Context, repair image.RepairMode) (*image.CheckResult, error) {
	if repair != image.RepairNone {
		return nil, img.errorf(image.ErrUnsupported, "VDI images cannot be repaired")
	}
	res := &image.CheckResult{Filename: img.name, Format: "vdi"}
	n := int64(img.params.BlocksInImage) // open checked that the file holds the map
	used := make([]uint64, (n+63)/64)
	var allocated uint32
	const chunk = 1 << 16
	raw := make([]byte, 4*min(n, chunk))
	for first := int64(0); first < n; first += chunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		k := min(n-first, chunk)
		if _, err := img.r.ReadAt(raw[:4*k], img.bmapOff+4*first); err != nil {
			res.CheckErrors++
			return res, image.FileErrorf(img.name, "reading the block map: %w", err)
		}
		for i := range k {
			e := binary.LittleEndian.Uint32(raw[4*i:])
			switch {
			case e >= discarded:
			case int64(e) >= n:
				res.Messages = append(res.Messages, fmt.Sprintf("ERROR: block index %d too large, is %d", first+i, e))
				res.Corruptions++
			case used[e/64]&(1<<(e%64)) != 0:
				allocated++
				// QEMU prints the index it already holds for the block,
				// which is the block itself.
				res.Messages = append(res.Messages, fmt.Sprintf("ERROR: block index %d also used by %d", e, e))
				res.Corruptions++
			default:
				allocated++
				used[e/64] |= 1 << (e % 64)
			}
		}
	}
	if allocated != img.params.BlocksAllocated {
		res.Messages = append(res.Messages, fmt.Sprintf("ERROR: allocated blocks mismatch, is %d, should be %d", allocated, img.params.BlocksAllocated))
		res.Corruptions++
	}
	return res, nil
}
