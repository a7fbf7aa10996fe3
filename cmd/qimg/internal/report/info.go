// Package report builds what qimg's read-only commands print (info, map,
// snapshot -l) in qemu-img 7.2's exact formats, from any image through
// the optional features of package image (Describer, Mapper,
// BackingNamer), never from a concrete format type.
package report

import (
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/qimg/qimg/cmd/qimg/internal/qfmt"
	"github.com/qimg/qimg/image"
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
	Snapshots           []image.Snapshot
	// FormatSpecific is the "data" of the format-specific information
	// and SpecificType its "type"; nil for raw.
	FormatSpecific qfmt.Dict
	SpecificType   string
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

// Describe describes one open image (one layer: backing files are named,
// not opened) from what it says of itself (image.Describer) and the disk
// usage of its files.
func Describe(filename string, img image.Image) (*ImageInfo, error) {
	var d image.Description
	if desc, ok := img.(image.Describer); ok {
		var err error
		if d, err = desc.Describe(); err != nil {
			return nil, err
		}
	}
	info := &ImageInfo{
		Filename:     filename,
		Format:       d.Format,
		VirtualSize:  img.Size(),
		ClusterSize:  d.ClusterSize,
		DirtyFlag:    d.Dirty,
		Encrypted:    d.Encrypted,
		Snapshots:    d.Snapshots,
		SpecificType: d.SpecificType,
	}
	if d.Specific != nil {
		info.FormatSpecific = DictOf(d.Specific)
	}
	if d.BackingFile != "" {
		info.BackingFilename = d.BackingFile
		info.FullBackingFilename = image.ResolveName(filename, d.BackingFile)
		info.BackingFormat = d.BackingFormat
	}
	usage, err := DiskUsage(filename)
	if err != nil {
		return nil, err
	}
	// Disk usage counts other files the image names (a VMDK's extents),
	// as QEMU does; QEMU 7.2 does not count a qcow2 data file.
	seen := map[string]bool{filename: true}
	for _, name := range d.UsageFiles {
		p := image.ResolveName(filename, name)
		if seen[p] {
			continue
		}
		seen[p] = true
		u, err := DiskUsage(p)
		if err != nil {
			return nil, err
		}
		usage += u
	}
	info.ActualSize = usage
	return info, nil
}

// DictOf turns fields a package describes (image.Fields) into the dict
// qemu-img prints.
func DictOf(f image.Fields) qfmt.Dict {
	d := qfmt.Dict{}
	for _, m := range f {
		d = d.Add(m.Key, valueOf(m.Value))
	}
	return d
}

func valueOf(v any) any {
	switch x := v.(type) {
	case image.Fields:
		return DictOf(x)
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = valueOf(e)
		}
		return l
	}
	return v
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
func SnapshotDict(s image.Snapshot) qfmt.Dict {
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
func SnapshotTable(snaps []image.Snapshot) string {
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
