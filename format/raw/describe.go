package raw

import "github.com/qimg/qimg/image"

var (
	_ image.Describer = (*Image)(nil)
	_ image.Mapper    = (*Image)(nil)
	_ image.Resizer   = (*Image)(nil)
)

// Describe says what qemu-img info shows of a raw image: nothing beyond
// its size and disk usage.
func (img *Image) Describe() (image.Description, error) {
	return image.Description{Format: "raw"}, nil
}

// HostLayout says that guest offsets are offsets in the file.
func (img *Image) HostLayout() (image.HostLayout, error) {
	return image.HostLayout{Passthrough: true}, nil
}
