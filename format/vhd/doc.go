// Package vhd reads and writes Microsoft's VHD disk images (Virtual PC,
// Hyper-V, Azure; "vpc" to qemu-img), fixed and dynamic, without cgo or
// QEMU, following the VHD specification and, where QEMU 7.2's vpc driver
// decides differently from it, what qemu-img does. Its tests hold it to
// qemu-img: every image they read is made by qemu-img at test time, and
// what qimg reads must equal `qemu-img convert -O raw` byte for byte, with
// qemu-img info's virtual size and qemu-img map's runs.
//
// # Reading
//
// Open opens a file; NewReader reads an image held by any io.ReaderAt.
// The *Image implements image.Image: ReadAt (safe for concurrent use),
// Extent, Size and Close; Subformat says "fixed" or "dynamic".
//
//   - A fixed disk is the guest data followed by a 512-byte footer. Its
//     only footer is at the end, so Detect, like QEMU's probe, does not
//     recognise it: qemu-img and qimg probe it as raw (guest data plus
//     the footer) unless the format is forced (-f vpc). Open and
//     NewReader look for the footer at offset 0 first and then at the
//     end, as qemu-img -f vpc does.
//   - A dynamic disk has a footer copy at offset 0, a dynamic header, a
//     block allocation table (BAT) and blocks, each a sector bitmap
//     followed by the block's data. Unallocated blocks read as zeros, and
//     so do sectors whose bitmap bit is clear. Here qimg follows the
//     specification and Hyper-V rather than QEMU 7.2, which ignores the
//     bitmaps and reads whatever an allocated block holds; images written
//     by qemu-img set every bit of an allocated block, so both read them
//     the same way.
//   - A differencing disk is refused with an error wrapping
//     image.ErrUnsupported that names the parent (QEMU opens it as a
//     dynamic disk without its parent, which reads wrong data).
//
// The virtual size is QEMU's: Virtual PC sizes a disk by its CHS
// geometry, Hyper-V and most other tools by the footer's current_size,
// and QEMU picks one by the creator application field: current_size for
// "win " (Hyper-V), "qem2" (qemu-img with force_size), "d2v " (Disk2vhd),
// "CTXS" (XenConverter) and "tap\0" (XenServer), and for any disk whose
// geometry is the maximum 65535/16/255; the geometry for "vpc ", "qemu"
// and anything else. Sizes above 2040 GiB are refused, as by QEMU. The
// file is seen padded with zeros to whole sectors, as QEMU's file layer
// shows it.
//
// Extent reports block status with qemu-img map's meaning: an allocated
// block is data at its host offset (sectors with clear bitmap bits are
// zeros), unallocated blocks are zeros that are present, and a fixed disk
// is data throughout, marked also Zero where the file opened by Open has
// holes (QEMU's view of a fixed disk through its file).
//
// Every on-disk structure is checked before use, with QEMU's checks and
// in QEMU's order: footer checksum, block size (a power of two of at
// least 512), BAT size against the virtual size and against QEMU's limit,
// BAT and every allocated block inside the file. The BAT's memory is
// therefore bounded by the file size (and by a fixed limit of 64 Mi
// entries kept), and opening costs time in proportion to the BAT. qimg
// also verifies the dynamic header's checksum, which QEMU does not, and
// refuses disk types other than fixed, dynamic and differencing. Errors
// name the file and wrap an image.Err* class: image.ErrWrongFormat when
// there is no footer at all, image.ErrCorrupt for broken structures,
// image.ErrLimit for sizes beyond the limits.
//
// # Writing
//
// Create starts a new disk in an *os.File and returns a Writer, the
// sequential target of a conversion: WriteAt and WriteZeroes take guest
// data in increasing offset order, Flush makes what has been written a
// complete and durable VHD, and Close writes the metadata and closes the
// file. The result is laid out as `qemu-img convert -O vpc` lays it out,
// with the same header fields (creator "qemu", or "qem2" with ForceSize;
// creator version 5.3 and host "Wi2k"; a random UUID), so that qemu-img
// and Hyper-V accept it. The virtual size is qemu-img's: the size rounded
// up to whole sectors and, unless CreateOptions.ForceSize, up to the next
// size a CHS geometry describes exactly (VirtualSize computes it). Azure
// wants fixed disks whose size is a whole number of MiB: use ForceSize.
//
//   - Fixed: the guest data, written where it lies (zero runs stay holes
//     in the file), then the footer.
//   - Dynamic: 2 MiB blocks, allocated at the end of the file in the
//     order data arrives, only for blocks holding a non-zero byte; their
//     bitmaps have every bit set, as qemu-img writes them.
//
// qemu-img check does not support VHD (it exits 63), so the write tests
// judge images with qemu-img info, compare and map instead.
//
// # Layout of the package
//
//   - format.go: footer and dynamic header encoding, checksums, CHS
//     geometry and QEMU's size rules;
//   - reader.go: Open, NewReader, Detect, ReadAt and Extent;
//   - writer.go: Create and the Writer.
package vhd
