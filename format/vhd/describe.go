package vhd

import "github.com/qimg/qimg/image"

var _ image.Describer = (*Image)(nil)

// Describe says what qemu-img info shows of a VHD: its block size as the
// cluster size, and no format-specific data.
func (img *Image) Describe() (image.Description, error) {
	return image.Description{Format: "vpc", ClusterSize: img.blockSize}, nil
}
