// Package vmdk reads VMware VMDK disk images in every subformat qemu-img
// writes, and writes streamOptimized VMDKs (the kind OVA/OVF packages and
// ESXi imports use), without cgo or QEMU. Its tests hold it to qemu-img
// 7.2: every image read is built by qemu-img at test time and must read
// as `qemu-img convert -O raw` does and map as `qemu-img map` does; every
// stream written must pass `qemu-img check` and `qemu-img compare`.
//
// # What is read
//
//   - monolithicSparse: one hosted sparse extent ("KDMV" magic) with a
//     grain directory and grain tables, an embedded descriptor and a
//     redundant grain directory (which a reader does not need and ignores);
//     zeroed grains (grain table entry 1, qemu-img's zeroed_grain=on);
//   - streamOptimized: a sparse extent whose grains are deflate
//     (zlib) compressed behind grain markers, with the grain directory
//     either where the header says (as QEMU writes it) or at the end of the
//     stream (gdOffset = GD_AT_END, as VMware writes it), found through the
//     footer before the end-of-stream marker;
//   - monolithicFlat, twoGbMaxExtentSparse, twoGbMaxExtentFlat, vmfs and
//     custom disks: a text descriptor ("# Disk DescriptorFile") whose extent
//     lines (RW or RDONLY, size in sectors, SPARSE, FLAT, VMFS or ZERO,
//     "file name", offset) name the files holding the data.
//
// Not supported, with errors wrapping image.ErrUnsupported: delta disks
// (a descriptor with parentFileNameHint, as `qemu-img create -b` makes),
// ESX sparse extents ("COWD", VMFSSPARSE), seSparse, raw device mappings,
// NOACCESS extents and VMDK versions above 3.
//
// # API
//
// Detect tells from the first bytes of a file whether it is a VMDK; it is
// how package format probes. Open opens a VMDK file (a sparse extent or
// a descriptor) with Options (nil for the safe defaults); NewReader reads a single
// sparse or streamOptimized extent held in any io.ReaderAt and never opens
// other files. The *Image they return implements image.Image: ReadAt may
// run from many goroutines, Extent reports unallocated grains as holes
// (not Data, Zero), zeroed grains as allocated zeros, stored grains as
// Data (Compressed in a streamOptimized extent) and flat extents as Data,
// with Zero over holes of their files, as qemu-img map does. Subformat and
// Info describe the image as qemu-img info does.
//
// CreateStream starts a streamOptimized VMDK in an *os.File; its
// StreamWriter takes writes in increasing offset order (WriteAt,
// WriteZeroes), compresses grains on a pool of goroutines while keeping
// them in file order, and on Close writes the grain tables, grain
// directory, footer and end-of-stream marker. The header values and the
// descriptor are those of `qemu-img convert -O vmdk -o
// subformat=streamOptimized`, in VMware's stream layout.
//
// # Extent files: security policy
//
// A descriptor names the files that hold the disk's data, so a VMDK from
// elsewhere chooses which host files are read and returned as guest data,
// exactly like a qcow2 backing file: a descriptor naming /etc/shadow or
// /dev/sda would copy it into whatever the disk is converted to. By
// default, extent names must be relative and resolve (after symbolic
// links) inside the descriptor's own directory, and must be regular files;
// anything else fails with image.ErrBackingRefused. Options.AllowAnyPath
// lifts this for images you trust, as QEMU does for all images. A
// descriptor may name at most Options.MaxExtents extents
// (DefaultMaxExtents), each an open file.
//
// # Hostile input
//
// Every header field is checked before anything is allocated from it:
// grain size and grain table size against QEMU's limits, the grain
// directory against the file size, the capacity against overflow; grain
// tables and grains must lie inside the file. A compressed grain is
// inflated into a buffer of one grain and a stream that inflates to more
// is corrupt, so a compression bomb costs one grain of memory. Descriptors
// are read up to 1 MiB. Errors name the file and wrap an image.Err* class;
// the parsers are fuzzed (FuzzNewReader, FuzzDescriptor).
//
// # Check
//
// Check does what QEMU's vmdk_co_check does: it walks the grains of every
// extent and stops at the first allocated grain (or flat extent) that
// starts at or past the end of its file, with QEMU's message, one
// corruption and syscall.EINVAL, which qemu-img check reports as "Check
// failed: Invalid argument". A grain table past the end of the file reads
// as zeros there, as in QEMU.
//
// # Caches
//
// Grain tables are kept in an LRU cache of 256 tables, decompressed grains
// in one of 8 MiB, so that 4 KiB sequential reads inflate each grain once;
// a read covering a whole compressed grain inflates straight into the
// caller's buffer. Grains that follow each other in the file are read in
// one call.
package vmdk
