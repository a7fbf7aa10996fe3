// Package lvm reads LVM2 volume groups inside disk images, without a
// kernel, device mapper or root: the physical volumes' labels and
// metadata, and linear logical volumes as images of their own, which is
// what a CentOS or RHEL guest keeps its root file system on.
//
//	vgs, err := lvm.Scan(lvm.Device{Name: "disk.qcow2 partition 2", Image: part})
//	vg := vgs[0]
//	root, err := vg.Open(vg.LV("root")) // an image.Image: /dev/VG/root
//
// # The on-disk format
//
// A physical volume (PV) carries a 512-byte label in one of its first four
// sectors (pvcreate writes sector 1): "LABELONE", the label's own sector
// number, a CRC-32 of the rest of the sector, the offset of the PV header
// and the type "LVM2 001". The PV header holds the PV's UUID, the device
// size and two lists of (offset, size) areas: data areas, where extents
// live, and metadata areas (usually one, at 4 KiB).
//
// A metadata area starts with an mda_header (CRC, the magic
// " LVM2 x[5A%r0N*>", version 1, its position and size) whose first
// raw_locn points at the current metadata text; the rest of the area is
// a circular buffer, and a text that reaches its end continues after the
// header. The text, checked against the CRC in the raw_locn, describes
// the whole volume group in LVM's configuration syntax (ParseMetadata):
// its extent size, its PVs (UUID, pe_start, pe_count) and its LVs, each a
// list of segments mapping runs of the LV's extents to extents of PVs.
// Sizes in the text are in 512-byte sectors; this package turns them into
// bytes. Every PV of a group keeps a copy of the same text; Scan reads
// them all and keeps the newest (highest seqno).
//
// # What is read, and what is refused
//
// Linear LVs (segments of type "striped" with one stripe, which is what
// lvcreate makes by default), over one segment or several (an LV grown by
// lvextend) and over one PV or several. Other segment types are
// image.ErrUnsupported, named in the error. The VG's PVs are matched to
// the devices given to Scan by UUID; an LV on a PV that is not among them
// fails to open, naming the PV, while the group's other LVs stay readable.
//
// Everything read from disk is bounded before it is used: the metadata
// text is at most MaxMetadataSize, its nesting, number of values, PVs,
// LVs and segments are limited, extent arithmetic is checked for
// overflow and every segment must lie inside its PV. Damage is
// image.ErrCorrupt, excess image.ErrLimit, and errors name the device
// (image.FileError).
//
// Names follow libguestfs: DeviceName gives /dev/VG/LV.
package lvm
