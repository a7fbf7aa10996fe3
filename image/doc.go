// Package image holds what every disk-image format in qimg shares: the
// Image interface (an io.ReaderAt with block status), the Extent type that
// describes runs of data, zeros and holes, and the error classes callers
// test with errors.Is.
//
// Format packages (format/qcow2, format/raw, format/vmdk, ...) implement
// Image and some of the optional features: those in features.go
// (Resizer, Describer, BackingNamer, CompressedWriter, Rebaser, Committer,
// Mapper, BitmapHolder), Checker in check.go, and HostFiler and
// FileRangeWriter in copyrange.go (kernel copies between host files).
// Everything above them (conversion, guest editing, upload) talks to Image
// and finds features by type assertion, never by concrete type, so a new
// format plugs in without touching its users.
package image
