package xfs

import "github.com/qimg/qimg/image"

// limit reports a structure too large to handle.
func (f *FS) limit(format string, args ...any) error {
	return image.FileErrorf(f.name, "xfs: "+format+": %w", append(args, image.ErrLimit)...)
}

// corrupt reports a structure that breaks the format.
func (f *FS) corrupt(format string, args ...any) error {
	return image.FileErrorf(f.name, "xfs: "+format+": %w", append(args, image.ErrCorrupt)...)
}

// unsupported reports a feature this package does not read.
func (f *FS) unsupported(format string, args ...any) error {
	return image.FileErrorf(f.name, "xfs: "+format+": %w", append(args, image.ErrUnsupported)...)
}
