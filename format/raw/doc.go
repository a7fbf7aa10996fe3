// Package raw implements image.Image over a plain file: qemu-img's raw
// format, which also covers .img and .iso files (an ISO is raw data).
// Holes in the host file are reported as zero extents (SEEK_DATA and
// SEEK_HOLE), so copies skip them, and WriteZeroes punches holes.
package raw
