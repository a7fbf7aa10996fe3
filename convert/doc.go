// Package convert moves guest data between image formats: it probes and
// opens images of any supported format (Open, Probe), copies one into a
// new qcow2 or raw image (Convert) and compares two images (Compare).
//
// Convert streams: a pool of workers reads and classifies fixed-size units
// of the source, skipping its holes and compressing clusters in parallel,
// and a single writer stores them in guest order, so memory is bounded by
// the units in flight, not by the image size. The target is written to a
// temporary file beside the destination and renamed into place when
// complete.
package convert
