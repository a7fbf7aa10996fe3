package vdi

import "github.com/qimg/qimg/image"

var (
	_ image.Describer = (*Image)(nil)
	_ image.Mapper    = (*Image)(nil)
)

// Describe says what qemu-img info shows of a VDI: its block size as the
// cluster size, and no format-specific data.
func (img *Image) Describe() (image.Description, error) {
	return image.Description{Format: "vdi", ClusterSize: img.params.BlockSize}, nil
}

// HostLayout says that the file's holes show through a static VDI's data
// blocks, as QEMU asks the file about them.
func (img *Image) HostLayout() (image.HostLayout, error) {
	if img.Subformat() == "static" {
		return image.HostLayout{HoleFile: img.name}, nil
	}
	return image.HostLayout{}, nil
}
