// Package iso9660 writes and reads ISO 9660 (ECMA-119) images with the
// Rock Ridge and Joliet extensions: the cloud-init NoCloud seed (volume
// "cidata" holding user-data, meta-data, network-config), the OpenStack
// config drive (volume "config-2" holding openstack/latest/...), and the
// installer images guests boot from.
//
// Write lays out a tree collected by a Builder in memory and writes it
// sequentially, metadata first, then file data read from the sources
// given to the Builder. Every image has the primary tree with ECMA-119
// names (8.3 upper case with ";1", made unique per directory) for
// readers that know nothing else; Options.RockRidge adds POSIX names of
// any length, modes, times and symbolic links to it (SUSP/RRIP, IEEE
// P1281/P1282), and Options.Joliet adds a second tree of UCS-2 names
// (level 3) with its own directories at every depth, sharing the file
// data. Directories deeper than ECMA-119's 8 levels are written where
// they are, without Rock Ridge relocation, as xorriso does by default.
// Files are single extents, so at most 4 GiB - 1 bytes (MaxFileSize).
// With a fixed Options.Time the output is the same byte for byte.
//
// Open reads an image into an FS, an io/fs.FS (with ReadDirFS, StatFS
// and ReadLinkFS): names come from Rock Ridge when the image has it,
// else from Joliet, else from the primary tree without versions. It
// reads what this package, xorriso and genisoimage write, including
// relocated deep directories and multi-extent files. Open reads the
// whole directory tree at once and bounds what a hostile image can ask:
// directory sizes, nesting, record counts, continuation chains, the
// metadata read in all, and loops.
package iso9660
