// Package format is the one place that opens, probes and creates disk
// images of every format qimg knows (qcow2, raw, vmdk, vpc, vhdx, vdi),
// each implemented by a sibling package under format/.
//
// Open probes the format (as qemu-img does: anything unrecognised is raw)
// and follows backing chains: a qcow2 image's backing file may be of any
// format qemu-img accepts there, relative names resolve against the
// directory of the image naming them, and chains deeper than
// image.MaxChainDepth (which includes every loop) are refused. The
// image.BackingPolicy in OpenOptions decides whether named files are
// followed, refused (for untrusted input) or ignored (one layer alone).
// OpenChain opens a chain layer by layer instead, for callers that must
// tell the layers apart (qemu-img map, info --backing-chain).
//
// Create writes a new image of a writable format into a file, for
// conversion and for new overlays.
//
// The format packages share one shape: Open(path[, *Options]) opens a
// file, with options by pointer (nil for the defaults); NewReader(r, size,
// name[, *Options]) reads an image held in any io.ReaderAt and never opens
// other host files; writers take the file first, then its name, then the
// size where it is an argument, then options by value (the zero value for
// qemu-img's defaults): qcow2.CreateFile(f, name, opts), vhd.Create(f,
// name, size, opts), vmdk.CreateStream(f, name, size, opts).
//
// Features beyond reading (resize, backing file names, self-description,
// compressed writes, commit, rebase) are the optional interfaces of
// package image: callers find them by type assertion on the image Open
// returns, never by its concrete type, so a new format plugs in here
// without touching its users.
package format
