// Package raw implements image.Image over a plain file: the raw format of
// qemu-img, which also covers .img and .iso files. Holes in the host file
// are reported as zero extents (SEEK_DATA/SEEK_HOLE), so copies skip them.
package raw
