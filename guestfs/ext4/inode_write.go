package ext4

import (
	"encoding/binary"
	"time"
)

// inodeOffset is the byte offset of inode ino in its group's table.
func (f *FS) inodeOffset(ino uint32) (int64, error) {
	s := f.sb
	if ino == 0 || ino > s.inodesCount {
		return 0, f.corrupt("inode %d of %d", ino, s.inodesCount)
	}
	gr, err := f.group((ino - 1) / s.inodesPerGroup)
	if err != nil {
		return 0, err
	}
	return int64(gr.inodeTable)*s.blockSize + int64((ino-1)%s.inodesPerGroup)*int64(s.inodeSize), nil
}

// newInode makes an in-memory inode for a just allocated number: zeroed,
// with the extra fields ext4 keeps in large inodes, times now.
func (f *FS) newInode(ino uint32, mode uint16, uid, gid uint32, now time.Time) *Inode {
	in := &Inode{Ino: ino, Mode: mode, UID: uid, GID: gid, Links: 1,
		Atime: now, Mtime: now, Ctime: now, Crtime: now, raw: make([]byte, f.sb.inodeSize)}
	if f.sb.inodeSize > 128 {
		in.ExtraIsize = min(f.sb.wantExtraIsize, uint16(f.sb.inodeSize-128))
	}
	// Generations only need to differ between lives of an inode number.
	in.Generation = uint32(now.UnixNano()) ^ ino*2654435761
	return in
}

// putTime stores t at the seconds field sec and, if the inode has room,
// the nanoseconds and epoch bits at extra.
func putTime(in *Inode, t time.Time, sec, extra int) {
	le := binary.LittleEndian
	le.PutUint32(in.raw[sec:], uint32(t.Unix()))
	if extra+4 <= 128+int(in.ExtraIsize) {
		epoch := uint32((t.Unix()-int64(int32(t.Unix())))>>32) & 3
		le.PutUint32(in.raw[extra:], uint32(t.Nanosecond())<<2|epoch)
	}
}

// encode stores the inode's fields into its raw bytes.
func (f *FS) encode(in *Inode) error {
	le := binary.LittleEndian
	r := in.raw
	le.PutUint16(r[0x0:], in.Mode)
	le.PutUint16(r[0x2:], uint16(in.UID))
	le.PutUint16(r[0x78:], uint16(in.UID>>16))
	le.PutUint16(r[0x18:], uint16(in.GID))
	le.PutUint16(r[0x7A:], uint16(in.GID>>16))
	le.PutUint32(r[0x4:], uint32(in.Size))
	le.PutUint32(r[0x6C:], uint32(in.Size>>32))
	le.PutUint32(r[0x14:], in.Dtime)
	le.PutUint16(r[0x1A:], in.Links)
	blocks := in.Blocks
	flags := in.Flags &^ FlagHugeFile
	if blocks>>32 != 0 {
		if !f.sb.hasRO(roCompatHugeFile) {
			return f.corrupt("inode %d: %d sectors need huge_file", in.Ino, blocks)
		}
		if blocks>>48 != 0 {
			flags |= FlagHugeFile
			blocks /= uint64(f.sb.blockSize / 512)
		}
	}
	le.PutUint32(r[0x1C:], uint32(blocks))
	if f.sb.hasRO(roCompatHugeFile) {
		le.PutUint16(r[0x74:], uint16(blocks>>32))
	}
	le.PutUint32(r[0x20:], flags)
	copy(r[0x28:0x64], in.block[:])
	le.PutUint32(r[0x64:], in.Generation)
	le.PutUint32(r[0x68:], uint32(in.FileACL))
	le.PutUint16(r[0x76:], uint16(in.FileACL>>32))
	if len(r) > 128 {
		le.PutUint16(r[0x80:], in.ExtraIsize)
	}
	putTime(in, in.Atime, 0x8, 0x8C)
	putTime(in, in.Ctime, 0xC, 0x84)
	putTime(in, in.Mtime, 0x10, 0x88)
	if 0x98 <= 128+int(in.ExtraIsize) {
		putTime(in, in.Crtime, 0x90, 0x94)
	}
	if f.sb.metadataCsum() {
		sum, hi := f.inodeCsum(in)
		le.PutUint16(r[0x7C:], uint16(sum))
		if hi {
			le.PutUint16(r[0x82:], uint16(sum>>16))
		}
	}
	return nil
}

// writeInode stores the inode in the transaction and the reader's cache.
func (f *FS) writeInode(in *Inode) error {
	if err := f.encode(in); err != nil {
		return err
	}
	off, err := f.inodeOffset(in.Ino)
	if err != nil {
		return err
	}
	if err := f.writeMeta(in.raw, off); err != nil {
		return err
	}
	c := *in
	c.raw = append([]byte(nil), in.raw...)
	f.inodes.Put(in.Ino, &c, 1)
	return nil
}
