package qcow2

import "github.com/qimg/qimg/image"

// writeHeader writes h as the whole header cluster in one pwrite, as QEMU
// writes it (its allocation on disk feeds QEMU's preallocation heuristic,
// and so qemu-img map): the header's own bytes lie in the cluster's first
// page, which is written first, so that a writer killed during it leaves
// the old header or the new one. It returns the cluster written; the
// caller makes h the image's header (Encode fills in h's lengths and
// offsets).
func (img *Image) writeHeader(h *Header) ([]byte, error) {
	enc, err := h.Encode()
	if err != nil {
		return nil, image.FileErrorf(img.name, "%w", err)
	}
	buf := make([]byte, h.ClusterSize())
	copy(buf, enc)
	if _, err := img.wfile.WriteAt(buf, 0); err != nil {
		return nil, image.FileErrorf(img.name, "writing the header: %w", err)
	}
	return buf, nil
}
