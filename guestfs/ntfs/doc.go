// Package ntfs reads NTFS filesystems (Windows roots) inside disk images,
// read-only, without a kernel, ntfs-3g or root: enough for inspection
// to find Windows and read its registry hives, and for ls, cat and
// copy-out.
//
// Open takes any io.ReaderAt holding the filesystem (an image.Image from
// format.Open, or an image.Section of one partition) and returns an *FS
// that implements io/fs.FS, fs.ReadDirFS and fs.StatFS, plus Lstat and
// ReadLink, so fs.WalkDir and fs.ReadFile work on guests. Open regular
// files implement io.ReaderAt and io.Seeker as well.
//
// # What is read
//
// The boot sector's geometry (sector, cluster, MFT and index record
// sizes); the $MFT through its own data runs, also when they continue
// in extension records; MFT records with their update sequence arrays;
// resident and non-resident attributes, mapping pairs, and
// $ATTRIBUTE_LIST entries that spread a file's attributes, or the
// extents of one attribute, over several records; directories' $I30
// indexes (the root node and the INDX records of $INDEX_ALLOCATION, in
// B+ tree order); $STANDARD_INFORMATION for modification times and the
// read-only attribute; unnamed $DATA streams, sparse runs and data past
// the initialized size reading as zeros. Names are the Win32 and POSIX
// names (DOS 8.3 aliases are skipped), looked up exactly and then
// case-insensitively, as Windows does (by Unicode simple folding, not
// the volume's $UpCase table). The filesystem's own files ($MFT,
// $Bitmap, ...) are not listed.
//
// Not read, and refused with image.ErrUnsupported when opened:
// compressed and encrypted data, and reparse points (symbolic links,
// junctions, deduplicated files), which are listed as irregular files.
// Named streams and extended attributes are not listed. The $LogFile is
// not replayed: a volume Windows did not shut down cleanly is read as
// it stands.
//
// # Security
//
// The image is untrusted input. The boot sector's sizes are checked
// against NTFS's limits and the image; every run against the volume's
// clusters; every record, attribute, index node and entry against the
// bytes that hold it; update sequence numbers must match (a torn record
// is corruption). Index walks visit each INDX record once and descend
// at most 32 levels, so a cyclic index cannot loop; directories list at
// most MaxDirEntries names; attribute lists are read up to 1 MiB and
// their extension records must name their base record. Paths descend
// at most 1024 directories, which ends a walk of a directory listed
// inside itself. Names holding '/' or NUL are corruption. Caches of
// records and listings are bounded. FuzzOpen walks and reads patched
// real volumes.
package ntfs
