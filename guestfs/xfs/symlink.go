package xfs

import (
	"bytes"
	"encoding/binary"
)

const (
	// maxLinkLen is XFS_SYMLINK_MAXLEN: no target is longer.
	maxLinkLen   = 1024
	symlinkMagic = 0x58534c4d // "XSLM", v5 remote symlink blocks
	remoteHdr    = 56         // v5 remote block header: symbolic links and attribute values
	remoteCRCOff = 12
)

// readlink returns a symbolic link's target: in the inode (local
// format) or in blocks of its own, which on v5 file systems each start
// with a header giving the piece's offset and length.
func (f *FS) readlink(in *Inode) (string, error) {
	if in.Size == 0 || in.Size > maxLinkLen {
		return "", f.corrupt("symbolic link %d of %d bytes", in.Ino, in.Size)
	}
	var target []byte
	if in.format == fmtLocal {
		target = in.dataFork[:in.Size]
	} else {
		var err error
		if target, err = f.remoteLink(in); err != nil {
			return "", err
		}
	}
	if bytes.IndexByte(target, 0) >= 0 {
		return "", f.corrupt("symbolic link %d: target holds NUL", in.Ino)
	}
	return string(target), nil
}

// remoteLink reads a target kept in blocks.
func (f *FS) remoteLink(in *Inode) ([]byte, error) {
	exts, err := f.forkExtents(in, false)
	if err != nil {
		return nil, err
	}
	return f.remoteValue(in, exts, 0, in.Size, symlinkMagic, "symbolic link")
}

// remoteValue reads size bytes kept in the fork blocks from file block
// fb on (a long symbolic link target, or a large attribute value). On v5
// file systems each block starts with a header (magic, the piece's
// offset and length, CRC, UUID, owner, address) and holds what is left
// of the block; on v4 the bytes are the blocks'.
func (f *FS) remoteValue(in *Inode, exts []extent, fb, size uint64, magic uint32, what string) ([]byte, error) {
	be := binary.BigEndian
	out := make([]byte, 0, size)
	for ; uint64(len(out)) < size; fb++ {
		i, ok := findExtent(exts, fb)
		if !ok || exts[i].unwritten {
			return nil, f.corrupt("inode %d: %s: block %d not mapped", in.Ino, what, fb)
		}
		blk := exts[i].blk + fb - exts[i].off
		b, err := f.readBlocks(blk, 1)
		if err != nil {
			return nil, err
		}
		if !f.sb.crc() {
			out = append(out, b[:min(uint64(len(b)), size-uint64(len(out)))]...)
			continue
		}
		if be.Uint32(b) != magic {
			return nil, f.corrupt("inode %d: %s block %d has magic 0x%08x", in.Ino, what, blk, be.Uint32(b))
		}
		if err := f.checkV5Block(b, remoteCRCOff, 40, 16, 32, blk, in.Ino, what+" block"); err != nil {
			return nil, err
		}
		off, n := uint64(be.Uint32(b[4:])), uint64(be.Uint32(b[8:]))
		if off != uint64(len(out)) || n == 0 || n > uint64(len(b)-remoteHdr) || n > size-off {
			return nil, f.corrupt("inode %d: %s block holds bytes %d+%d of %d", in.Ino, what, off, n, size)
		}
		out = append(out, b[remoteHdr:remoteHdr+n]...)
	}
	return out, nil
}
