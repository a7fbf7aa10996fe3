package vhdx

import "github.com/qimg/qimg/image"

var (
	_ image.Describer = (*Image)(nil)
	_ image.Mapper    = (*Image)(nil)
)

// Describe says what qemu-img info shows of a VHDX: its block size as the
// cluster size, and no format-specific data.
func (img *Image) Describe() (image.Description, error) {
	return image.Description{Format: "vhdx", ClusterSize: img.Params().BlockSize}, nil
}

// HostLayout says what QEMU's VHDX driver reports to qemu-img map: no
// block status, so the whole image is data without host offsets.
func (img *Image) HostLayout() (image.HostLayout, error) {
	return image.HostLayout{NoBlockStatus: true}, nil
}
