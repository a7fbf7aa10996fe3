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

// remoteLink reads a target kept in blocks. Each extent is one buffer:
// on v5 file systems it starts with a header (magic, the piece's offset
// and length, CRC of the whole extent, UUID, owner, address).
func (f *FS) remoteLink(in *Inode) ([]byte, error) {
	exts, err := f.forkExtents(in, false)
	if err != nil {
		return nil, err
	}
	be := binary.BigEndian
	hdr := uint64(0)
	if f.sb.crc() {
		hdr = remoteHdr
	}
	// No extent of a link needs more blocks than the longest target.
	maxBlocks := (maxLinkLen + uint64(f.sb.blockSize) - hdr - 1) / (uint64(f.sb.blockSize) - hdr)
	out := make([]byte, 0, in.Size)
	for _, e := range exts {
		if e.unwritten || e.count > maxBlocks || uint64(len(out)) >= in.Size {
			return nil, f.corrupt("symbolic link %d: extent of %d blocks at %d", in.Ino, e.count, e.off)
		}
		b, err := f.readBlocks(e.blk, e.count)
		if err != nil {
			return nil, err
		}
		if !f.sb.crc() {
			out = append(out, b[:min(uint64(len(b)), in.Size-uint64(len(out)))]...)
			continue
		}
		if be.Uint32(b) != symlinkMagic {
			return nil, f.corrupt("symbolic link %d: block %d has magic 0x%08x", in.Ino, e.blk, be.Uint32(b))
		}
		if err := f.checkV5Block(b, remoteCRCOff, 40, 16, 32, e.blk, in.Ino, "symbolic link block"); err != nil {
			return nil, err
		}
		off, n := uint64(be.Uint32(b[4:])), uint64(be.Uint32(b[8:]))
		if off != uint64(len(out)) || n == 0 || n > uint64(len(b))-hdr || n > in.Size-off {
			return nil, f.corrupt("symbolic link %d: extent holds bytes %d+%d of %d", in.Ino, off, n, in.Size)
		}
		out = append(out, b[hdr:hdr+n]...)
	}
	if uint64(len(out)) != in.Size {
		return nil, f.corrupt("symbolic link %d: %d of %d bytes mapped", in.Ino, len(out), in.Size)
	}
	return out, nil
}

// remoteValue reads an attribute value of size bytes kept in the fork's
// blocks from file block fb on. On v5 file systems each block starts
// with a header (magic, the piece's offset and length, CRC, UUID, owner,
// address) and holds what is left of the block; on v4 the bytes are the
// blocks'.
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
