package ext4

import (
	"encoding/binary"
)

// Group descriptor flags the writer keeps.
const (
	bgBlockUninit  = 0x2 // the block bitmap was never written: only metadata used
	descChecksumAt = 0x1E
)

// desc is one raw group descriptor, read through the transaction.
type desc []byte

// readDesc reads group g's descriptor as it stands in the transaction.
func (f *FS) readDesc(g uint32) (desc, error) {
	if _, err := f.group(g); err != nil { // checks it once
		return nil, err
	}
	d := make(desc, f.sb.descSize)
	if err := f.readAt(d, int64(f.descOffset(g))); err != nil {
		return nil, err
	}
	return d, nil
}

// lohi reads a descriptor field split in a low part at lo (of n bytes)
// and, in 64-byte descriptors, a high part at hi.
func (d desc) lohi(lo, hi, n int) uint64 {
	le := binary.LittleEndian
	get := func(off int) uint64 {
		if n == 2 {
			return uint64(le.Uint16(d[off:]))
		}
		return uint64(le.Uint32(d[off:]))
	}
	v := get(lo)
	if len(d) >= 64 {
		v |= get(hi) << (8 * n)
	}
	return v
}

func (d desc) setLohi(lo, hi, n int, v uint64) {
	le := binary.LittleEndian
	put := func(off int, x uint64) {
		if n == 2 {
			le.PutUint16(d[off:], uint16(x))
		} else {
			le.PutUint32(d[off:], uint32(x))
		}
	}
	put(lo, v)
	if len(d) >= 64 {
		put(hi, v>>(8*n))
	}
}

func (d desc) blockBitmap() uint64    { return d.lohi(0x0, 0x20, 4) }
func (d desc) inodeBitmap() uint64    { return d.lohi(0x4, 0x24, 4) }
func (d desc) inodeTable() uint64     { return d.lohi(0x8, 0x28, 4) }
func (d desc) freeBlocks() uint64     { return d.lohi(0xC, 0x2C, 2) }
func (d desc) freeInodes() uint64     { return d.lohi(0xE, 0x2E, 2) }
func (d desc) usedDirs() uint64       { return d.lohi(0x10, 0x30, 2) }
func (d desc) flags() uint16          { return binary.LittleEndian.Uint16(d[0x12:]) }
func (d desc) itableUnused() uint64   { return d.lohi(0x1C, 0x32, 2) }
func (d desc) setFreeBlocks(v uint64) { d.setLohi(0xC, 0x2C, 2, v) }
func (d desc) setFreeInodes(v uint64) { d.setLohi(0xE, 0x2E, 2, v) }
func (d desc) setUsedDirs(v uint64)   { d.setLohi(0x10, 0x30, 2, v) }
func (d desc) setItableUnused(v uint64) {
	d.setLohi(0x1C, 0x32, 2, v)
}
func (d desc) setFlags(v uint16) { binary.LittleEndian.PutUint16(d[0x12:], v) }

// setBitmapCsums stores the metadata_csum checksums of the group's
// bitmaps: CRC32c of the bits that describe the group (not the padding).
func (f *FS) setBitmapCsums(d desc, blockBitmap, inodeBitmap []byte) {
	s := f.sb
	if !s.metadataCsum() {
		return
	}
	if blockBitmap != nil {
		c := crc32c(s.csumSeed, blockBitmap[:s.blocksPerGroup/8])
		d.setLohi(0x18, 0x38, 2, uint64(c))
	}
	if inodeBitmap != nil {
		c := crc32c(s.csumSeed, inodeBitmap[:s.inodesPerGroup/8])
		d.setLohi(0x1A, 0x3A, 2, uint64(c))
	}
}

// writeDesc stores group g's descriptor with its checksum (metadata_csum's
// CRC32c or uninit_bg's CRC16) in the transaction, and forgets the
// reader's cached copy.
func (f *FS) writeDesc(g uint32, d desc) error {
	s := f.sb
	le := binary.LittleEndian
	var gn [4]byte
	le.PutUint32(gn[:], g)
	switch {
	case s.metadataCsum():
		c := crc32c(s.csumSeed, gn[:])
		c = crc32c(c, d[:descChecksumAt])
		c = crc32c(c, []byte{0, 0})
		c = crc32c(c, d[descChecksumAt+2:])
		le.PutUint16(d[descChecksumAt:], uint16(c))
	case s.hasRO(roCompatGdtCsum):
		c := crc16(0xFFFF, s.uuid[:])
		c = crc16(c, gn[:])
		c = crc16(c, d[:descChecksumAt])
		c = crc16(c, d[descChecksumAt+2:])
		le.PutUint16(d[descChecksumAt:], c)
	}
	if err := f.writeMeta(d, int64(f.descOffset(g))); err != nil {
		return err
	}
	f.groupMu.Lock()
	delete(f.groups, g)
	f.groupMu.Unlock()
	return nil
}

// crc16 is the CRC-16 (polynomial 0x8005, reflected) of uninit_bg group
// descriptors, continued from crc.
func crc16(crc uint16, p []byte) uint16 {
	for _, b := range p {
		crc ^= uint16(b)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}
