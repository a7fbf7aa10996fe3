// Package vhdx reads Hyper-V's VHDX disk images ([MS-VHDX] version 1),
// dynamic and fixed, as qemu-img 7.2 reads them, so that they can be
// converted to other formats. It never writes.
//
// # The format, and what this package reads from it
//
// A VHDX file starts with a 1 MiB header section: the file identifier
// ("vhdxfile"), two copies of the header and two copies of the region
// table, each protected by a CRC-32C. Of the two headers the valid one
// with the higher sequence number is current; one bad header is tolerated,
// as the specification requires (a header update may have been torn). Of
// the region tables the first valid copy is used (QEMU 7.2 reads only the
// first and refuses the image if it is damaged). The region table locates
// the metadata region and the block allocation table (BAT).
//
// The metadata region holds the file parameters (payload block size, the
// leave-blocks-allocated flag that marks a fixed disk, the has-parent flag
// of a differencing disk), the virtual disk size, the logical and physical
// sector sizes and the page 83 data (the disk's SCSI identifier). Params
// returns them.
//
// The BAT has one entry per payload block of the virtual disk, with a
// sector-bitmap entry after every chunk-ratio payload entries (chunk ratio
// = 2^23 × logical sector size / block size); sector bitmaps only matter
// for differencing disks and are skipped. A payload entry's state says
// where the block's data is:
//
//   - FULLY_PRESENT (6): in the file, at the entry's offset (in MiB);
//   - NOT_PRESENT (0), UNDEFINED (1), ZERO (2), UNMAPPED (3, and 5 as
//     written by pre-1.0 implementations): nowhere; the block reads as
//     zeros, exactly as QEMU reads it, and Extent reports it as a zero run
//     (Data false) so that conversions skip it;
//   - PARTIALLY_PRESENT (7) is only meaningful in a differencing disk, and
//     4 is undefined: reading such a block fails with image.ErrCorrupt
//     (QEMU fails the read with EIO), but the image still opens.
//
// # What is refused
//
//   - A header whose log GUID is non-zero with a non-empty log: the log
//     may hold metadata updates that were never applied, so the BAT and
//     metadata on disk may be stale. qimg does not replay logs; Open fails
//     with an error wrapping image.ErrUnsupported that says how to replay
//     it (open the image once read-write in Hyper-V or QEMU). QEMU itself
//     replays such a log when the image is opened read-write, and refuses
//     a read-only open only if it finds valid log entries; qimg does not
//     look for entries and refuses whenever a log is announced.
//   - Differencing disks (has-parent): image.ErrUnsupported.
//   - Required regions or metadata items this package does not know:
//     image.ErrUnsupported, as the specification requires.
//
// # Hostile files
//
// Every size and offset is checked before it is used: the BAT must fit in
// its region and in the file before it is read (so memory is bounded by
// the file size), regions must not overlap each other, the header section
// or the log, metadata items must lie inside the metadata region, and
// every FULLY_PRESENT block must lie inside the file outside those
// structures (QEMU's open-time check). Errors name the file and wrap one
// of the image.Err* classes.
//
// # Check
//
// Check does what QEMU's vhdx_co_check does, with its messages (QEMU
// prints them through error_report; they are CheckResult.Reports): every
// FULLY_PRESENT BAT entry, sector bitmap entries included, is checked for
// offset overflow and for a start or end past the end of the file, and
// payload blocks against the log and every region of the region table,
// each finding one corruption. OpenForCheck and NewCheckReader leave
// those BAT entries, which Open refuses, to Check, as qemu-img check opens
// the image.
//
// # Block status
//
// Extent reports FULLY_PRESENT blocks as data with their host offset and
// every other block as a zero run. Runs are marked Allocated, since a
// non-differencing VHDX defines every byte itself. qemu-img 7.2 has no
// block-status support for VHDX and reports the whole disk as data
// without offsets; qimg map prints the same, and conversions still skip
// the zero runs Extent reports.
package vhdx
