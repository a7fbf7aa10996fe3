package image

import (
	"context"
	"time"
)

// The interfaces below are features some formats have. Callers find them
// by type assertion on an Image, so a new format gains a feature by
// implementing one method set, and no caller switches on concrete types.

// Progress receives how much of a long operation is done, in bytes of
// guest data out of total.
type Progress = func(done, total int64)

// Describer is an image that describes itself for qemu-img info.
type Describer interface {
	Describe() (Description, error)
}

// BackingNamer is an image that may name a backing file (a layer of a
// chain). An empty name means the image has none.
type BackingNamer interface {
	// BackingFile is the backing file's name as stored in the image and
	// its format (possibly empty: probe it).
	BackingFile() (name, format string)
}

// Layered is an image opened with its backing file, which it returns (nil
// when it has none or the backing file was not opened).
type Layered interface {
	Backing() Image
}

// Resizer is a writable image whose virtual size can change.
type Resizer interface {
	// Resize sets the virtual size. Shrinking discards data past the new
	// end and must be asked for with shrink.
	Resize(size int64, shrink bool) error
}

// CompressedWriter is a writable image that stores compressed clusters
// (qcow2). Compression runs in the caller's goroutines, which is what makes
// it parallel; the write itself is serialised by the image.
type CompressedWriter interface {
	WritableImage
	// ClusterSize is the unit of compression: Compress takes one whole
	// cluster and WriteCompressedData stores one at a cluster-aligned off.
	ClusterSize() int64
	// Compress compresses one cluster; nil means it does not shrink and
	// should be written plainly.
	Compress(cluster []byte) ([]byte, error)
	// WriteCompressedData stores the cluster at off, compressed when comp
	// is not nil and plainly (plain) otherwise.
	WriteCompressedData(plain, comp []byte, off int64) error
}

// Rebaser is an overlay whose backing file can change.
type Rebaser interface {
	// SetBacking only changes the names in the header (qemu-img rebase -u).
	SetBacking(name, format string) error
	// Rebase copies into the overlay what reads differently through
	// newBase than through the current backing file, then names newBase
	// (name, format) in the header. A nil newBase means no backing file.
	Rebase(ctx context.Context, newBase Image, name, format string, progress Progress) error
}

// Committer is an overlay that can write its data into its backing file.
type Committer interface {
	// Commit writes the overlay's data into base (its backing file, opened
	// for writing) and, unless keep, empties the overlay.
	Commit(ctx context.Context, base WritableImage, keep bool, progress Progress) error
}

// BitmapHolder is an image that may hold persistent dirty bitmaps, which
// qemu-img measure counts.
type BitmapHolder interface {
	// PersistentBitmapsSize is the room the bitmaps need in a qcow2 image
	// of clusterSize; ok is false when the image cannot hold bitmaps.
	PersistentBitmapsSize(clusterSize int64) (size int64, ok bool, err error)
}

// Mapper is an image that says where its data lives on the host, for
// qemu-img map. Images without it keep their data in one file whose name
// they were opened with.
type Mapper interface {
	HostLayout() (HostLayout, error)
}

// HostLayout is how an image's guest ranges map to host files.
type HostLayout struct {
	// Passthrough: guest offsets are offsets in the one file (raw).
	Passthrough bool
	// NoBlockStatus: the whole image is reported as data without host
	// offsets, as QEMU's driver for the format does (VHDX).
	NoBlockStatus bool
	// Files names the files that hold data, by guest range, in order:
	// each holds the data below its End (a VMDK's extents). Empty means
	// the image's own file.
	Files []HostFile
	// HoleFile, when set, is the file whose holes (SEEK_HOLE) show zeros
	// inside runs the image maps as data: a qcow2 image with preallocated
	// metadata, a static VDI.
	HoleFile string
}

// HostFile is one file holding an image's data below guest offset End.
type HostFile struct {
	End  int64
	Name string
}

// Description is what an image says about itself: qemu-img info's fields
// beyond the virtual size.
type Description struct {
	// Format is the format's name, as qemu-img spells it.
	Format string
	// ClusterSize is the allocation unit (cluster, grain, block), or 0.
	ClusterSize int64
	Dirty       bool // not cleanly closed (qcow2 dirty bit)
	Encrypted   bool
	// BackingFile and BackingFormat are as stored in the image.
	BackingFile, BackingFormat string
	// UsageFiles are other files whose disk usage counts as the image's
	// (a VMDK's extent files), as names relative to the image.
	UsageFiles []string
	Snapshots  []Snapshot
	// SpecificType and Specific are qemu-img's format-specific
	// information ("type" and "data"); Specific is nil when the format
	// has none.
	SpecificType string
	Specific     Fields
}

// Snapshot is an internal snapshot as qemu-img lists it.
type Snapshot struct {
	ID, Name    string
	VMStateSize uint64
	Date        time.Time
	VMClock     time.Duration
	Icount      int64 // -1 if not recorded
}

// Fields is an ordered set of named values, as QEMU's QAPI structures are
// printed. A value is a bool, int64, string, Fields or []any of those.
type Fields []Field

// Field is one named value of Fields.
type Field struct {
	Key   string
	Value any
}

// Add returns f with one more field.
func (f Fields) Add(key string, value any) Fields { return append(f, Field{key, value}) }
