package ext4

import (
	"encoding/binary"
)

// sealXattrBlock writes an attribute block's metadata_csum: CRC32c of
// its block number and contents with the checksum field zeroed.
func (f *FS) sealXattrBlock(b []byte, blk uint64) {
	if !f.sb.metadataCsum() {
		return
	}
	le := binary.LittleEndian
	var nr [8]byte
	le.PutUint64(nr[:], blk)
	le.PutUint32(b[0x10:], 0)
	le.PutUint32(b[0x10:], crc32c(crc32c(f.sb.csumSeed, nr[:]), b))
}

// dropXattrBlock lets go of an inode's attribute block: one reference
// less, freed with the last.
func (f *FS) dropXattrBlock(in *Inode) error {
	blk := in.FileACL
	in.FileACL = 0
	b, err := f.metaBlock(blk)
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	if le.Uint32(b) != xattrMagic {
		return f.corrupt("inode %d attribute block %d: bad header", in.Ino, blk)
	}
	refs := le.Uint32(b[4:])
	if refs > 1 {
		le.PutUint32(b[4:], refs-1)
		f.sealXattrBlock(b, blk)
		return nil
	}
	return f.freeBlocks(blk, 1)
}
