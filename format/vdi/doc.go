// Package vdi reads VirtualBox's VDI disk images (header version 1.1),
// dynamic and static, as qemu-img 7.2 reads them, so that they can be
// converted to other formats. It never writes.
//
// # The format, and what this package reads from it
//
// A VDI file starts with a 512-byte header: a 64-byte pre-header text
// ("<<< Oracle VM VirtualBox Disk Image >>>" or another creator's), the
// signature 0xbeda107f (little-endian, at offset 0x40), the version, the
// image type (1 dynamic, 2 static), the offsets of the block map and of
// the data area, the geometry and sector size, the disk size, the block
// size and "block extra" size, the number of blocks in the image and
// allocated, and the image, snapshot, link and parent UUIDs.
//
// The block map has one little-endian 32-bit entry per block: the index of
// the block in the data area (the block is at offset_data + index ×
// block_size), or 0xffffffff for a block never written, or 0xfffffffe for
// a block that was discarded. Both of the last two read as zeros, as in
// QEMU; Extent reports them as zero runs (Data false, so conversions skip
// them) and every run as Allocated, which is what qemu-img map prints for
// VDI ("present": true, "zero": true, "data": false). A static image has
// every block allocated; qemu-img map additionally reports the host
// file's holes in a static image as zero, which Extent does not (it only
// sees the image through an io.ReaderAt): qimg map asks the file for them,
// as it does for a qcow2 image with preallocated metadata.
//
// # What is refused
//
// QEMU's rules, with QEMU's classification where it has one: versions
// other than 1.1, sector sizes other than 512, block sizes other than
// 1 MiB, block map or data offsets that are not sector aligned, a non-null
// link or parent UUID (differencing images and snapshots) and image types
// other than dynamic and static are image.ErrUnsupported; so is a non-zero
// block extra size, which VirtualBox would honour and QEMU silently
// ignores (reading such an image like QEMU would return wrong data). A
// disk size beyond QEMU's maximum (0x3fffffff blocks) is image.ErrLimit.
// A disk larger than its block map, a block map past the end of the file
// or overlapping the header or the data area, and a block whose start
// lies past the end of the file are image.ErrCorrupt (QEMU reads such a
// block as zeros; qimg refuses a file that was evidently cut short). A
// block that starts inside the file but ends past it (a truncated last
// block) reads as zeros past the end, as in QEMU.
//
// # Check
//
// Check verifies the block map as qemu-img check does (QEMU's
// vdi_co_check), with its messages: indexes too large, blocks used twice,
// and the allocated count against the header. OpenForCheck and
// NewCheckReader open an image whose blocks lie past the end of the file,
// as qemu-img check and info do; there such blocks read as zeros.
//
// Every size is checked against the file size before anything is
// allocated, so memory is bounded by the file size. Errors name the file
// and wrap one of the image.Err* classes.
package vdi
