// Package qcow2 reads and writes QEMU's qcow2 disk images (versions 2 and
// 3, "compat=0.10" and "compat=1.1") without cgo or QEMU, following
// docs/interop/qcow2.rst and, where the specification is silent, what QEMU
// 7.2 does. Its tests hold it to qemu-img and qemu-io: the read tests
// (read_test.go) build every image with qemu-img or qemu-io, and what qimg
// reads must equal `qemu-img convert -O raw` byte for byte and
// `qemu-img map` run for run.
//
// # What a qcow2 image can contain, and what is supported
//
//   - cluster sizes from 512 bytes to 2 MiB, refcount widths of 1 to 64
//     bits, lazy refcounts (a dirty image is read as is; opening it for
//     writing first repairs its refcounts, as QEMU does);
//   - normal, zero (with and without a host cluster), unallocated and
//     compressed clusters, compressed with zlib (deflate) or zstd;
//   - extended L2 entries, where each cluster is 32 subclusters with their
//     own allocated and zero bits;
//   - backing chains of qcow2 and raw files, with or without the backing
//     format extension (without it the format is probed);
//   - external data files, raw (data_file_raw) or not;
//   - internal snapshots, listed by Snapshots (the active layer is what
//     ReadAt reads);
//   - persistent dirty bitmaps, listed by Bitmaps and changed by
//     EditBitmaps as qemu-img bitmap changes them;
//   - unknown header extensions and unknown compatible and autoclear
//     feature bits, which are ignored as the specification requires (a
//     writer clears unknown autoclear bits). An unknown incompatible bit
//     makes Open fail with image.ErrUnsupported naming the bit (and its
//     name, when the image's feature name table has one).
//
// Encrypted images: with OpenOptions.Key (the secret qemu-img's
// encrypt.key-secret names) LUKS images (crypt_method 2, the LUKS1 header
// of package luks in clusters named by the crypto header extension) are
// read and written, and legacy AES-CBC images (crypt_method 1) too; data
// clusters are encrypted per 512-byte sector, the IV from the host offset
// for LUKS and from the guest offset for AES, as QEMU does (crypt.go).
// CreateOptions.Encrypt makes new ones. Without a key they open so that
// their header can be shown, but ReadAt fails with an error wrapping
// image.ErrEncrypted; a wrong LUKS key fails Open with
// luks.ErrWrongPassword before anything is written.
//
// # API
//
// Open opens an image file; OpenFile takes an already opened File; and
// NewReader reads an image held by any io.ReaderAt (a download, a file
// inside an archive). Each returns an *Image, which implements
// image.WritableImage: ReadAt reads guest bytes, Extent reports block
// status (data, zero, allocated, depth in the chain, host offset) with the
// semantics of qemu-img map, and Size is the virtual size. Header returns
// the decoded header and its extensions; Snapshots the snapshot table.
// Reads and Extent calls may run from many goroutines at once.
//
// Create makes a new image like `qemu-img create -f qcow2`, from
// CreateOptions that mirror qemu-img's -o options. An image opened with
// OpenOptions.Writable accepts WriteAt, WriteZeroes, Discard,
// WriteCompressed and Resize; writes are serialised. Close writes pending
// metadata; Flush also syncs to stable storage. Check verifies (and repairs) refcounts like qemu-img check;
// Measure computes what qemu-img measure prints; Amend changes the
// version, refcount width, lazy refcounts and size like qemu-img amend.
//
// # Layout of the package
//
//   - header.go: the fixed header, header extensions, feature bits
//     (ParseHeader, Header.Encode);
//   - image.go: opening, option handling, the backing and data file
//     policy, closing;
//   - l2.go, cache.go: L2 entry bits, compressed cluster descriptors and
//     the LRU caches of L2 tables and decompressed clusters;
//   - read.go: mapping guest offsets to clusters and subclusters, ReadAt,
//     and Extent;
//   - compress.go: the zlib and zstd codecs for single clusters;
//   - write.go, zero.go, compressed_write.go, resize.go, refcount.go:
//     the write path and cluster allocation; compressed_tails.go: the
//     partly filled host clusters that later compressed clusters fill;
//   - create.go, create_options.go, measure.go: new images (options
//     validated as qemu-img validates -o) and their size;
//   - describe.go: what the image says of itself through the optional
//     interfaces of package image (info's description, backing name, host
//     layout for map);
//   - crypt.go, create_crypt.go: encrypted guest data and new encrypted
//     images;
//   - snapshot.go: the internal snapshot table;
//   - bitmaps.go: persistent dirty bitmaps (listed, marked in use by writers);
//     bitmap_dir.go, bitmap_data.go, bitmap_edit.go: their directory,
//     their contents, and EditBitmaps (qemu-img bitmap's changes);
//   - rebase.go, commit.go: moving an overlay onto another backing file,
//     and writing it into its backing file;
//   - amend.go: qemu-img amend's options, checked before anything
//     changes; amend_version.go: compat 0.10 ↔ 1.1 (zero clusters
//     expanded on a downgrade); amend_refcount.go: a new refcount width;
//   - check.go: Check (image.Checker) and one check pass;
//     check_walk.go: counting the references every structure makes;
//     check_refcount.go: comparing them with the stored refcounts,
//     repairing them or rebuilding the refcount structure;
//     check_copied.go: the COPIED flags; check_stored.go: reading and
//     writing the stored refcounts.
//
// # Backing and data files: security policy
//
// An image names its backing file and external data file itself, and
// relative names are resolved against the directory of the image that
// names them, as QEMU does for backing files. For an image from an
// untrusted source this means the image chooses which host files qimg
// opens and returns as guest data (a backing file of /etc/shadow reads
// the host's password hashes into the "disk"). OpenOptions.Backing
// selects the policy:
//
//   - image.FollowBacking (the default) opens what the image names, like QEMU;
//     use it only for images you created or trust;
//   - image.RefuseBacking makes Open fail with image.ErrBackingRefused if the
//     image names any backing or data file; use it for untrusted input;
//   - image.IgnoreBacking reads one layer alone: unallocated clusters read as
//     zeros.
//
// Backing files are opened only through OpenOptions.OpenBacking, which
// package format supplies: there a backing file may be of any format, and
// chains are walked and bounded (image.MaxChainDepth, which also stops
// loops) in one place for every caller. A caller can also pass its own, to
// confine backing files to a directory or a list. Without OpenBacking an
// image that names a backing file opens only with IgnoreBacking; NewReader
// never opens host files on its own. Offsets and lengths
// read from an image are checked against the file before they are used,
// so that a hostile image yields an error (image.ErrCorrupt or
// image.ErrLimit) rather than a crash or an unbounded allocation.
//
// QEMU 7.2 resolves a relative external data file name against its
// working directory rather than the image's directory; qimg uses the
// image's directory, as for backing files, so that the result does not
// depend on where it runs.
//
// # Crash safety
//
// Writes follow QEMU's ordering so that a writer killed at any point
// leaves an image whose only damage is leaked clusters (which
// `qemu-img check -r leaks` reclaims), never a reference to a cluster
// whose refcount says it is free:
//
//  1. refcounts of newly allocated clusters are written first, refcount
//     blocks before the refcount table that points to them, and the
//     header last when the table moves;
//  2. then guest data goes to the new (or exclusively owned) clusters;
//  3. then the L2 entries that point to them, and the L1 entry last when
//     the L2 table itself is new;
//  4. only then are the refcounts of replaced clusters decremented.
//
// A cluster is free for reuse once its refcount reaches zero, which step 4
// delays until nothing on disk refers to it; allocation takes the first
// free run that fits (skipping clusters known to hold metadata, whatever
// their refcount) before growing the file.
//
// Writes are issued in this order, which protects against a process that
// dies: what reached the kernel stays ordered. Against power loss only
// Flush helps: it syncs the image (and its data file), after which
// everything written is durable. Close writes pending metadata without
// syncing, like qemu-img's default cache mode. An image opened read-only
// never writes to any file of its chain.
package qcow2
