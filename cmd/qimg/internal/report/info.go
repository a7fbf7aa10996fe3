// Package report builds what qimg's read-only commands print (info, map,
// snapshot -l, measure) in qemu-img 7.2's exact formats, from the images
// that packages qcow2 and raw open.
package report

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/qimg/qimg/cmd/qimg/internal/qfmt"
	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/format/vmdk"
)

// ImageInfo is qemu-img's ImageInfo for one image (one layer of a chain).
type ImageInfo struct {
	Filename    string
	Format      string
	VirtualSize int64
	ActualSize  int64 // bytes the file (and an external data file) occupies on disk; -1 if unknown
	ClusterSize int64 // 0 for formats without clusters
	DirtyFlag   bool
	Encrypted   bool
	// BackingFilename is the name stored in the image; FullBackingFilename
	// is it resolved against the image's directory as QEMU does.
	BackingFilename     string
	FullBackingFilename string
	BackingFormat       string
	Snapshots           []qcow2.Snapshot
	// FormatSpecific is the "data" of the format-specific information
	// and SpecificType its "type"; nil for raw.
	FormatSpecific qfmt.Dict
	SpecificType   string
}

// PathCombine is QEMU's path_combine: a relative name is taken relative to
// the directory part of base, by plain string concatenation (no cleaning),
// so that names print exactly as qemu-img prints them.
func PathCombine(base, name string) string {
	if name == "" || strings.HasPrefix(name, "/") {
		return name
	}
	i := strings.LastIndexByte(base, '/')
	if i < 0 {
		return name
	}
	return base[:i+1] + name
}

// DiskUsage is the space a file occupies: st_blocks × 512, as qemu-img's
// "disk size" and "actual-size".
func DiskUsage(path string) (int64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Blocks * 512, nil
}

// QCOW2Info describes an open qcow2 image (one layer: backing files are
// named, not opened).
func QCOW2Info(filename string, img *qcow2.Image) (*ImageInfo, error) {
	h := img.Header()
	info := &ImageInfo{
		Filename:     filename,
		Format:       "qcow2",
		VirtualSize:  img.Size(),
		ClusterSize:  h.ClusterSize(),
		DirtyFlag:    h.IncompatibleFeatures&qcow2.IncompatDirty != 0,
		Encrypted:    h.CryptMethod != 0,
		SpecificType: "qcow2",
	}
	usage, err := DiskUsage(filename)
	if err != nil {
		return nil, err
	}
	info.ActualSize = usage // QEMU 7.2 counts the qcow2 file only, not a data file
	if h.BackingFile != "" {
		info.BackingFilename = h.BackingFile
		info.FullBackingFilename = PathCombine(filename, h.BackingFile)
		info.BackingFormat = h.BackingFormat
	}
	if info.Snapshots, err = img.Snapshots(); err != nil {
		return nil, err
	}
	bitmaps, err := img.Bitmaps()
	if err != nil {
		return nil, err
	}
	info.FormatSpecific = qcow2Specific(&h, bitmaps)
	return info, nil
}

// qcow2Specific is ImageInfoSpecificQCow2, members in schema order.
func qcow2Specific(h *qcow2.Header, bitmaps []qcow2.Bitmap) qfmt.Dict {
	var d qfmt.Dict
	if h.Version == 2 {
		d = d.Add("compat", "0.10")
		d = d.Add("refcount-bits", int64(h.RefcountBits()))
	} else {
		d = d.Add("compat", "1.1")
		if h.DataFile != "" {
			d = d.Add("data-file", h.DataFile)
		}
		if h.IncompatibleFeatures&qcow2.IncompatDataFile != 0 {
			d = d.Add("data-file-raw", h.AutoclearFeatures&qcow2.AutoclearDataFileRaw != 0)
		}
		d = d.Add("extended-l2", h.ExtendedL2())
		d = d.Add("lazy-refcounts", h.CompatibleFeatures&qcow2.CompatLazyRefcounts != 0)
		d = d.Add("corrupt", h.IncompatibleFeatures&qcow2.IncompatCorrupt != 0)
		d = d.Add("refcount-bits", int64(h.RefcountBits()))
	}
	if h.CryptMethod != 0 {
		d = d.Add("encrypt", qfmt.Dict{}.Add("format", h.EncryptionName()))
	}
	if h.Version >= 3 && len(bitmaps) > 0 {
		d = d.Add("bitmaps", bitmapList(bitmaps))
	}
	return d.Add("compression-type", h.CompressionName())
}

// bitmapList is a list of Qcow2BitmapInfo, members in schema order.
func bitmapList(bitmaps []qcow2.Bitmap) []qfmt.Dict {
	list := make([]qfmt.Dict, len(bitmaps))
	for i, b := range bitmaps {
		flags := []any{}
		if b.InUse {
			flags = append(flags, "in-use")
		}
		if b.Auto {
			flags = append(flags, "auto")
		}
		list[i] = qfmt.Dict{}.Add("name", b.Name).Add("granularity", b.Granularity).Add("flags", flags)
	}
	return list
}

// RawInfo describes a raw image file whose virtual size (raw.Image.Size:
// whole sectors) is size.
func RawInfo(filename string, size int64) (*ImageInfo, error) {
	return BasicInfo(filename, "raw", size, 0)
}

// VMDKInfo describes a VMDK as qemu-img info does: the first extent's
// grain size as cluster size, and the descriptor's CIDs, create type and
// extents as format-specific data.
func VMDKInfo(filename string, img *vmdk.Image) (*ImageInfo, error) {
	vi := img.Info()
	var clusterSize int64
	extents := []any{}
	for i, e := range vi.Extents {
		if i == 0 {
			clusterSize = e.ClusterSize
		}
		d := qfmt.Dict{}.Add("virtual-size", e.VirtualSize).Add("filename", e.Filename)
		if e.ClusterSize > 0 {
			d = d.Add("cluster-size", e.ClusterSize)
		}
		if e.Compressed {
			d = d.Add("compressed", true)
		}
		extents = append(extents, d.Add("format", e.Type))
	}
	in, err := BasicInfo(filename, "vmdk", img.Size(), clusterSize)
	if err != nil {
		return nil, err
	}
	// Disk usage counts the extent files a descriptor names, as QEMU does.
	seen := map[string]bool{filename: true}
	for _, e := range vi.Extents {
		p := PathCombine(filename, e.Filename)
		if e.Filename == "" || seen[p] {
			continue
		}
		seen[p] = true
		usage, err := DiskUsage(p)
		if err != nil {
			return nil, err
		}
		in.ActualSize += usage
	}
	in.SpecificType = "vmdk"
	in.FormatSpecific = qfmt.Dict{}.Add("cid", int64(vi.CID)).Add("parent-cid", int64(vi.ParentCID)).
		Add("create-type", vi.CreateType).Add("extents", extents)
	return in, nil
}

// BasicInfo describes an image of a format qemu-img shows no
// format-specific data for: size, disk usage and cluster (block) size.
func BasicInfo(filename, format string, size, clusterSize int64) (*ImageInfo, error) {
	usage, err := DiskUsage(filename)
	if err != nil {
		return nil, err
	}
	return &ImageInfo{Filename: filename, Format: format, VirtualSize: size, ActualSize: usage, ClusterSize: clusterSize}, nil
}

// Dict is the ImageInfo as qemu-img info --output=json prints it.
func (i *ImageInfo) Dict() qfmt.Dict {
	d := qfmt.Dict{}.Add("filename", i.Filename).Add("format", i.Format).Add("dirty-flag", i.DirtyFlag)
	if i.ActualSize >= 0 {
		d = d.Add("actual-size", i.ActualSize)
	}
	d = d.Add("virtual-size", i.VirtualSize)
	if i.ClusterSize != 0 {
		d = d.Add("cluster-size", i.ClusterSize)
	}
	if i.Encrypted {
		d = d.Add("encrypted", true)
	}
	if i.BackingFilename != "" {
		d = d.Add("backing-filename", i.BackingFilename)
		d = d.Add("full-backing-filename", i.FullBackingFilename)
		if i.BackingFormat != "" {
			d = d.Add("backing-filename-format", i.BackingFormat)
		}
	}
	if len(i.Snapshots) > 0 {
		var l []any
		for _, s := range i.Snapshots {
			l = append(l, SnapshotDict(s))
		}
		d = d.Add("snapshots", l)
	}
	if i.FormatSpecific != nil {
		d = d.Add("format-specific", qfmt.Dict{}.Add("type", i.SpecificType).Add("data", i.FormatSpecific))
	}
	return d
}

// SnapshotDict is SnapshotInfo.
func SnapshotDict(s qcow2.Snapshot) qfmt.Dict {
	d := qfmt.Dict{}.Add("id", s.ID).Add("name", s.Name).
		Add("vm-state-size", int64(s.VMStateSize)).
		Add("date-sec", s.Date.Unix()).Add("date-nsec", int64(s.Date.Nanosecond())).
		Add("vm-clock-sec", int64(s.VMClock/time.Second)).Add("vm-clock-nsec", int64(s.VMClock%time.Second))
	if s.Icount != -1 {
		d = d.Add("icount", s.Icount)
	}
	return d
}

// Human is the ImageInfo as qemu-img info prints it (bdrv_image_info_dump).
func (i *ImageInfo) Human() string {
	var b strings.Builder
	disk := "unavailable"
	if i.ActualSize >= 0 {
		disk = qfmt.SizeToStr(uint64(i.ActualSize))
	}
	fmt.Fprintf(&b, "image: %s\nfile format: %s\nvirtual size: %s (%d bytes)\ndisk size: %s\n",
		i.Filename, i.Format, qfmt.SizeToStr(uint64(i.VirtualSize)), i.VirtualSize, disk)
	if i.Encrypted {
		b.WriteString("encrypted: yes\n")
	}
	if i.ClusterSize != 0 {
		fmt.Fprintf(&b, "cluster_size: %d\n", i.ClusterSize)
	}
	if i.DirtyFlag {
		b.WriteString("cleanly shut down: no\n")
	}
	if i.BackingFilename != "" {
		fmt.Fprintf(&b, "backing file: %s", i.BackingFilename)
		if i.FullBackingFilename != i.BackingFilename {
			fmt.Fprintf(&b, " (actual path: %s)", i.FullBackingFilename)
		}
		b.WriteString("\n")
		if i.BackingFormat != "" {
			fmt.Fprintf(&b, "backing file format: %s\n", i.BackingFormat)
		}
	}
	if len(i.Snapshots) > 0 {
		b.WriteString("Snapshot list:\n")
		b.WriteString(SnapshotTable(i.Snapshots))
	}
	if i.FormatSpecific != nil {
		b.WriteString("Format specific information:\n")
		qfmt.DumpHuman(&b, i.FormatSpecific, 1)
	}
	return b.String()
}

// SnapshotTable is bdrv_snapshot_dump's header line and one line per
// snapshot, dates in local time as qemu-img prints them.
func SnapshotTable(snaps []qcow2.Snapshot) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK", "ICOUNT")
	for _, s := range snaps {
		secs := int64(s.VMClock / time.Second)
		clock := fmt.Sprintf("%02d:%02d:%02d.%03d", secs/3600, (secs/60)%60, secs%60,
			int64(s.VMClock/time.Millisecond)%1000)
		icount := ""
		if s.Icount != -1 {
			icount = fmt.Sprint(s.Icount)
		}
		fmt.Fprintf(&b, "%-9s %-16s %8s%20s%13s%11s\n", s.ID, s.Name, qfmt.SizeToStr(s.VMStateSize),
			s.Date.Local().Format("2006-01-02 15:04:05"), clock, icount)
	}
	return b.String()
}

// Exists reports whether a file exists (used to tell a missing backing
// file from other errors).
func Exists(path string) bool { _, err := os.Stat(path); return err == nil }
