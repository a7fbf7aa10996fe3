package partition

import (
	"fmt"
	"io"
	"strconv"

	"github.com/qimg/qimg/image"
)

// Schemes a Table can have.
const (
	SchemeMBR  = "mbr"  // DOS partition table, with logical partitions
	SchemeGPT  = "gpt"  // GUID partition table behind a protective MBR
	SchemeNone = "none" // no table: the whole disk is one device
)

// Table is the partition table of a disk image.
type Table struct {
	// Scheme is SchemeMBR, SchemeGPT or SchemeNone.
	Scheme string
	// SectorSize is the unit of the table's addresses: 512, or 4096 for
	// a GPT written for a disk of 4 KiB logical sectors.
	SectorSize int64
	// DiskGUID is the GPT disk GUID in upper case, as sfdisk shows it.
	DiskGUID string
	// DiskSignature is the MBR's 32-bit disk identifier (sfdisk's
	// "label-id"); Linux builds MBR PARTUUIDs from it.
	DiskSignature uint32
	// Partitions are in the order of their numbers.
	Partitions []Partition
	// UsedBackup means the primary GPT (header or entry array) was
	// damaged and Partitions come from the backup at the end of the
	// disk; PrimaryErr says what was wrong.
	UsedBackup bool
	PrimaryErr error
	// BackupErr says what is wrong with the backup GPT when the primary
	// was used: it is missing, damaged or disagrees with the primary.
	// Reading goes on, as Linux does, but the disk deserves a repair.
	BackupErr error
}

// Partition is one entry of a table. Start and Size are in bytes.
type Partition struct {
	// Number is what Linux and libguestfs number it: the slot (1-4) of
	// an MBR primary, 5, 6, ... for logical partitions in chain order,
	// the entry index plus one in a GPT.
	Number      int
	Start, Size int64
	// Type is spelled as sfdisk spells it: the MBR type byte in lower
	// case hex without leading zeros ("83", "5", "b"), or the GPT type
	// GUID in upper case.
	Type string
	// UUID is the PARTUUID Linux shows: the GPT unique GUID in upper
	// case, or for MBR the disk signature and the number ("12345678-05").
	UUID string
	// Name is the GPT partition name (UTF-16LE on disk); empty for MBR.
	Name string
	// Attributes are the GPT attribute bits (bit 0 required, bit 2
	// legacy BIOS bootable, bits 48-63 for the type's owner).
	Attributes uint64
	// Bootable is the MBR active flag (0x80).
	Bootable bool
	// Extended marks the MBR extended partition, the container of the
	// logical ones (its Open covers all of it, where Linux's device
	// shows only its first 1 KiB); Logical marks those.
	Extended, Logical bool
}

// Limits on what a table may ask for, so that a hostile image costs
// little memory and time.
const (
	// MaxGPTEntryArray bounds the bytes of a GPT partition entry array
	// (a standard one is 16 KiB).
	MaxGPTEntryArray = 1 << 20
	// MaxEBRChain bounds the links of an MBR extended partition's chain.
	MaxEBRChain = 128
)

// Read reads the partition table of img; name is the image's name for
// error messages. A disk without a table is not an error: its Table has
// SchemeNone and no partitions. A damaged table is an error wrapping
// image.ErrCorrupt (or image.ErrLimit) that names the image and the
// structure at fault.
func Read(img image.Image, name string) (*Table, error) {
	r := &reader{img: img, name: name, size: img.Size(), ss: 512}
	t, err := r.table()
	if err != nil {
		return nil, image.FileErrorf(name, "%w", err)
	}
	return t, nil
}

// table reads the MBR and goes on to the table it announces.
func (r *reader) table() (*Table, error) {
	none := &Table{Scheme: SchemeNone, SectorSize: 512}
	if r.size < 512 {
		return none, nil
	}
	b, err := r.sector(0, 512, "MBR")
	if err != nil {
		return nil, err
	}
	m, ok := parseMBR(b)
	switch {
	case !ok:
		return none, nil
	case m.protective():
		return r.readGPT()
	default:
		return r.readMBR(m)
	}
}

// reader carries what every structure's reader needs.
type reader struct {
	img  image.Image
	name string
	size int64
	ss   int64 // sector size of the table being read
}

// corrupt makes an error wrapping image.ErrCorrupt; Read adds the image's
// name, so that messages nested in others name it once.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), image.ErrCorrupt)
}

// sector reads n bytes at off, naming what in a failure. Reads past the
// disk are corruption: the table points there.
func (r *reader) sector(off, n int64, what string) ([]byte, error) {
	if off < 0 || n < 0 || off > r.size || n > r.size-off {
		return nil, corrupt("%s at byte %d (+%d) lies outside the disk of %d bytes", what, off, n, r.size)
	}
	buf := make([]byte, n)
	if _, err := r.img.ReadAt(buf, off); err != nil && err != io.EOF {
		return nil, fmt.Errorf("reading %s at byte %d: %w", what, off, err)
	}
	return buf, nil
}

// DeviceName is the name libguestfs gives partition n of its first disk:
// /dev/sda1, /dev/sda5; 0 names the whole disk, /dev/sda.
func DeviceName(n int) string {
	if n <= 0 {
		return "/dev/sda"
	}
	return "/dev/sda" + strconv.Itoa(n)
}

// Device is the partition's libguestfs name, /dev/sdaN.
func (p Partition) Device() string { return DeviceName(p.Number) }

// Open returns the partition as an image of its own, a window of img
// (which stays open and must outlive it).
func (p Partition) Open(img image.Image) (image.Image, error) {
	return image.NewSection(img, p.Start, p.Size)
}

// Partition returns the partition numbered n.
func (t *Table) Partition(n int) (Partition, bool) {
	for _, p := range t.Partitions {
		if p.Number == n {
			return p, true
		}
	}
	return Partition{}, false
}

// Devices lists the devices libguestfs would show for the disk: one per
// partition, or the whole disk (/dev/sda) when there are none.
func (t *Table) Devices() []string {
	if len(t.Partitions) == 0 {
		return []string{DeviceName(0)}
	}
	names := make([]string, len(t.Partitions))
	for i, p := range t.Partitions {
		names[i] = p.Device()
	}
	return names
}
