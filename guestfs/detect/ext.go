package detect

import (
	"encoding/binary"
	"strings"
)

// ext2/3/4 superblock: at 1024, magic 0xEF53 at +56.
const (
	extSuper = 1024
	extMagic = 0xEF53

	extCompatJournal = 0x4
	// Incompatible and read-only features an ext3 driver supports, as
	// libblkid counts them; anything beyond makes the file system ext4.
	ext3IncompatSupp  = 0x2 | 0x4 | 0x10 // filetype, recover, meta_bg
	ext3ROCompatSupp  = 0x1 | 0x2 | 0x4  // sparse_super, large_file, btree_dir
	extIncompatJnlDev = 0x8
)

func probeExt(d *device) (Content, bool) {
	sb := d.at(extSuper, 1024)
	if sb == nil || binary.LittleEndian.Uint16(sb[56:]) != extMagic {
		return Content{}, false
	}
	compat := binary.LittleEndian.Uint32(sb[92:])
	incompat := binary.LittleEndian.Uint32(sb[96:])
	roCompat := binary.LittleEndian.Uint32(sb[100:])
	c := Content{Label: cstring(sb[120:136]), UUID: uuid(sb[104:120])}
	switch {
	case incompat&extIncompatJnlDev != 0:
		c.Type = "jbd"
	case incompat&^ext3IncompatSupp != 0 || roCompat&^ext3ROCompatSupp != 0:
		c.Type = "ext4"
	case compat&extCompatJournal != 0:
		c.Type = "ext3"
	default:
		c.Type = "ext2"
	}
	c.Label = strings.TrimRight(c.Label, " ")
	return c, true
}
