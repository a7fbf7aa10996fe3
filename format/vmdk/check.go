package vmdk

import (
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/qimg/qimg/image"
)

// Check verifies, as QEMU's vmdk_co_check does and with its message, that
// every allocated grain (and the start of every flat extent) lies inside
// its file. Like QEMU it stops at the first that does not, counts one
// corruption and fails with syscall.EINVAL (in an *fs.PathError); a grain table past the end of the file reads as zeros, as
// QEMU reads it. QEMU repairs nothing, so a repair mode is
// image.ErrUnsupported (qemu-img check -r exits with 63).
func (img *Image) Check(ctx context.Context, repair image.RepairMode) (*image.CheckResult, error) {
	if repair != image.RepairNone {
		return nil, image.FileErrorf(img.name, "VMDK images cannot be repaired: %w", image.ErrUnsupported)
	}
	res := &image.CheckResult{Filename: img.name, Format: "vmdk"}
	for _, p := range img.parts {
		bad, err := p.firstPastEOF(ctx)
		if err != nil {
			return nil, err
		}
		if bad >= 0 {
			res.Messages = append(res.Messages, fmt.Sprintf("ERROR: cluster offset for sector %d points after EOF", bad/sectorSize))
			res.Corruptions++
			// QEMU 7.2 then fails the check with EINVAL (qemu-img
			// check: "Check failed: Invalid argument", exit 1).
			return res, &fs.PathError{Op: "check", Path: img.name, Err: syscall.EINVAL}
		}
	}
	return res, nil
}

// firstPastEOF returns the guest offset of the first cluster of p that its
// file does not hold, or -1.
func (p part) firstPastEOF(ctx context.Context) (int64, error) {
	switch e := p.ext.(type) {
	case *flatExtent:
		if e.offset >= e.fileSize {
			return p.start, nil
		}
	case *sparseExtent:
		g, err := e.firstPastEOF(ctx)
		if err != nil || g < 0 {
			return -1, err
		}
		return p.start + g*e.grainBytes, nil
	}
	return -1, nil
}

// firstPastEOF returns the first allocated grain stored at or past the end
// of the file, or -1.
func (e *sparseExtent) firstPastEOF(ctx context.Context) (int64, error) {
	grains := (e.capacity() + e.grainBytes - 1) / e.grainBytes
	raw := make([]byte, e.gtes*4)
	for gt, s := range e.gd {
		first := int64(gt) * e.gtes
		if first >= grains {
			break
		}
		if s == 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return -1, err
		}
		if err := readAtZero(e.r, raw, int64(s)*sectorSize, e.fileSize, e.name); err != nil {
			return -1, err
		}
		for i := range min(e.gtes, grains-first) {
			v := binary.LittleEndian.Uint32(raw[4*i:])
			if v == 0 || v == gteZeroed && e.zeroGrain {
				continue
			}
			if int64(v)*sectorSize >= e.fileSize {
				return first + i, nil
			}
		}
	}
	return -1, nil
}
