package qcow2

import "github.com/qimg/qimg/image"

// rebuildRefcountsOnOpen is called when a writer opens an image whose dirty
// bit is set (lazy refcounts after a crash).
func (img *Image) rebuildRefcountsOnOpen() error {
	return img.errorf(image.ErrUnsupported, "image has the dirty bit set; run 'qimg check -r all' first")
}
