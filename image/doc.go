// Package image holds what every disk-image format in qimg shares: the
// Image interface (an io.ReaderAt with block status), the Extent type that
// describes runs of data, zeros and holes, and the error classes callers
// test with errors.Is.
//
// Format packages (qcow2, and the readers of package convert) implement
// Image; everything above them (conversion, guest editing, upload) talks to
// Image only, so a new format plugs in without touching its users.
package image
