package ext4

import (
	"encoding/binary"

	"github.com/qimg/qimg/image"
)

// The jbd2 journal (ext3/ext4's has_journal) lives in an inode's blocks
// and is big-endian. Its superblock is its first block; transactions are
// descriptor blocks (tags naming file system blocks), copies of those
// blocks, and a commit block, all stamped with the transaction's
// sequence number.
const (
	jMagic        = 0xC03B3998
	jDescriptor   = 1
	jCommit       = 2
	jSuperV1      = 3
	jSuperV2      = 4
	jRevoke       = 5
	jFlagEscape   = 1
	jFlagSameUUID = 2
	jFlagLastTag  = 8

	jIncompatRevoke  = 0x1
	jIncompat64bit   = 0x2
	jIncompatAsync   = 0x4
	jIncompatCsumV2  = 0x8
	jIncompatCsumV3  = 0x10
	jIncompatFastCmt = 0x20
	jIncompatKnown   = jIncompatRevoke | jIncompat64bit | jIncompatAsync | jIncompatCsumV2 | jIncompatCsumV3
)

// journal is an open jbd2 journal.
type journal struct {
	f        *FS
	in       *Inode
	sb       []byte // its superblock block, as read
	blocks   uint64 // s_maxlen
	first    uint64 // s_first: the first block of the log
	seq      uint32 // s_sequence: the next transaction's number
	start    uint64 // s_start: where the log begins, 0 when empty
	incompat uint32
	seed     uint32 // checksum seed (csum v2/v3)
}

func (j *journal) csum() bool { return j.incompat&(jIncompatCsumV2|jIncompatCsumV3) != 0 }

// tagSize is the bytes of one descriptor tag.
func (j *journal) tagSize() int {
	if j.incompat&jIncompatCsumV3 != 0 {
		return 16
	}
	n := 8
	if j.incompat&jIncompatCsumV2 != 0 {
		n += 2
	}
	if j.incompat&jIncompat64bit != 0 {
		n += 4
	}
	return n
}

// openJournal reads the journal superblock of a has_journal file system.
func (f *FS) openJournal() (*journal, error) {
	if f.sb.journalIno == 0 {
		return nil, nil
	}
	in, err := f.inode(f.sb.journalIno)
	if err != nil {
		return nil, err
	}
	j := &journal{f: f, in: in}
	b, err := j.read(0)
	if err != nil {
		return nil, err
	}
	be := binary.BigEndian
	if be.Uint32(b) != jMagic || (be.Uint32(b[4:]) != jSuperV1 && be.Uint32(b[4:]) != jSuperV2) {
		return nil, f.corrupt("journal superblock: bad magic")
	}
	j.sb = b
	j.blocks, j.first = uint64(be.Uint32(b[0x10:])), uint64(be.Uint32(b[0x14:]))
	j.seq, j.start = be.Uint32(b[0x18:]), uint64(be.Uint32(b[0x1C:]))
	if be.Uint32(b[0xC:]) != uint32(f.sb.blockSize) || j.first == 0 || j.first >= j.blocks || j.blocks > in.Size/uint64(f.sb.blockSize) || j.start >= j.blocks {
		return nil, f.corrupt("journal superblock: %d blocks from %d, start %d", j.blocks, j.first, j.start)
	}
	if be.Uint32(b[4:]) == jSuperV2 {
		j.incompat = be.Uint32(b[0x28:])
	}
	if bad := j.incompat &^ jIncompatKnown; bad != 0 {
		return nil, image.FileErrorf(f.name, "ext4: journal feature 0x%x (fast commits?) is not supported for writing: %w", bad, image.ErrUnsupported)
	}
	if j.csum() {
		j.seed = crc32c(^uint32(0), b[0x30:0x40])
	}
	return j, nil
}

// pblk maps a journal block to the file system block holding it.
func (j *journal) pblk(n uint64) (uint64, error) {
	p, _, err := j.f.mapBlock(j.in, uint32(n))
	if err != nil {
		return 0, err
	}
	if p == 0 {
		return 0, j.f.corrupt("journal block %d is a hole", n)
	}
	return p, nil
}

func (j *journal) read(n uint64) ([]byte, error) {
	p, err := j.pblk(n)
	if err != nil {
		return nil, err
	}
	return j.f.readBlock(p)
}

func (j *journal) write(n uint64, b []byte) error {
	p, err := j.pblk(n)
	if err != nil {
		return err
	}
	_, err = j.f.dev.WriteAt(b, int64(p)*j.f.sb.blockSize)
	return err
}

// header starts a journal block of the given type.
func (j *journal) header(kind uint32) []byte {
	b := make([]byte, j.f.sb.blockSize)
	be := binary.BigEndian
	be.PutUint32(b, jMagic)
	be.PutUint32(b[4:], kind)
	be.PutUint32(b[8:], j.seq)
	return b
}

// writeSuper stores the journal superblock with start and seq.
func (j *journal) writeSuper() error {
	be := binary.BigEndian
	b := j.sb
	be.PutUint32(b[0x18:], j.seq)
	be.PutUint32(b[0x1C:], uint32(j.start))
	if j.csum() {
		be.PutUint32(b[0xFC:], 0)
		be.PutUint32(b[0xFC:], crc32c(^uint32(0), b[:1024]))
	}
	return j.write(0, b)
}

// capacity is how many blocks one transaction may log.
func (j *journal) capacity() uint64 {
	perDesc := j.perDescriptor()
	usable := j.blocks - j.first - 1 // less the commit block
	return usable * uint64(perDesc) / uint64(perDesc+1)
}

// perDescriptor is how many tags one descriptor block holds.
func (j *journal) perDescriptor() int {
	room := int(j.f.sb.blockSize) - 12 - 16 // header, the first tag's UUID
	if j.csum() {
		room -= 4
	}
	return room / j.tagSize()
}

// fits refuses a transaction of n blocks larger than the journal.
func (j *journal) fits(n int) error {
	if uint64(n) > j.capacity() {
		return image.FileErrorf(j.f.name, "ext4: the change touches %d metadata blocks; the journal holds %d: split it: %w", n, j.capacity(), image.ErrLimit)
	}
	return nil
}

// logTransaction writes blocks (file system block → contents) as one
// transaction from the start of the log, and makes it the log's start:
// from then on, replaying the journal applies all of it.
func (j *journal) logTransaction(nums []uint64, blocks map[uint64][]byte) error {
	if err := j.fits(len(nums)); err != nil {
		return err
	}
	be := binary.BigEndian
	pos := j.first
	ts := j.tagSize()
	for i := 0; i < len(nums); {
		d := j.header(jDescriptor)
		off := 12
		chunk := nums[i:min(len(nums), i+j.perDescriptor())]
		for k, b := range chunk {
			data := blocks[b]
			flags := uint32(0)
			if k > 0 {
				flags |= jFlagSameUUID
			}
			if k == len(chunk)-1 {
				flags |= jFlagLastTag
			}
			if be.Uint32(data) == jMagic {
				flags |= jFlagEscape
			}
			t := d[off:]
			be.PutUint32(t, uint32(b))
			switch {
			case j.incompat&jIncompatCsumV3 != 0:
				be.PutUint32(t[4:], flags)
				be.PutUint32(t[8:], uint32(b>>32))
				be.PutUint32(t[12:], j.blockCsum(data))
			default:
				if j.incompat&jIncompatCsumV2 != 0 {
					be.PutUint16(t[4:], uint16(j.blockCsum(data)))
				}
				be.PutUint16(t[6:], uint16(flags))
				if j.incompat&jIncompat64bit != 0 {
					be.PutUint32(t[8:], uint32(b>>32))
				}
			}
			off += ts
			if k == 0 {
				copy(d[off:], j.sb[0x30:0x40])
				off += 16
			}
		}
		if j.csum() {
			be.PutUint32(d[len(d)-4:], crc32c(j.seed, d))
		}
		if err := j.write(pos, d); err != nil {
			return err
		}
		pos++
		for _, b := range chunk {
			data := blocks[b]
			if be.Uint32(data) == jMagic {
				data = append([]byte{0, 0, 0, 0}, data[4:]...)
			}
			if err := j.write(pos, data); err != nil {
				return err
			}
			pos++
		}
		i += len(chunk)
	}
	c := j.header(jCommit)
	if j.csum() {
		c[0xC], c[0xD] = 4, 4 // crc32c, 4 bytes
		be.PutUint32(c[0x10:], crc32c(j.seed, c))
	}
	return j.write(pos, c)
}

// blockCsum is a tag's checksum of a logged block.
func (j *journal) blockCsum(data []byte) uint32 {
	var s [4]byte
	binary.BigEndian.PutUint32(s[:], j.seq)
	return crc32c(crc32c(j.seed, s[:]), data)
}

// replay reads the log from its start and returns the blocks of every
// complete transaction, later ones winning, revoked ones left out: what
// the kernel and e2fsck write back on recovery. It reads at most the
// journal's length, so a hostile log cannot loop.
func (j *journal) replay() (map[uint64][]byte, uint32, error) {
	out := map[uint64][]byte{}
	seq := j.seq
	if j.start == 0 {
		return out, seq, nil
	}
	revoked := map[uint64]uint32{}
	type pending struct {
		fsBlock uint64
		jBlock  uint64
		escape  bool
	}
	// Pass one finds the complete transactions and their revocations.
	var txs [][]pending
	pos, cur := j.start, []pending{}
	next := func(p uint64) uint64 {
		if p+1 >= j.blocks {
			return j.first
		}
		return p + 1
	}
	be := binary.BigEndian
	for steps := uint64(0); steps < j.blocks; steps++ {
		b, err := j.read(pos)
		if err != nil {
			return nil, 0, err
		}
		if be.Uint32(b) != jMagic || be.Uint32(b[8:]) != seq+uint32(len(txs)) {
			break
		}
		switch be.Uint32(b[4:]) {
		case jDescriptor:
			tags, err := j.tags(b)
			if err != nil {
				return nil, 0, err
			}
			for _, t := range tags {
				pos = next(pos)
				steps++
				cur = append(cur, pending{t.block, pos, t.escape})
			}
		case jCommit:
			txs = append(txs, cur)
			cur = []pending{}
		case jRevoke:
			n := min(int(be.Uint32(b[12:])), len(b))
			size := 4
			if j.incompat&jIncompat64bit != 0 {
				size = 8
			}
			for off := 16; off+size <= n; off += size {
				blk := uint64(be.Uint32(b[off:]))
				if size == 8 {
					blk = be.Uint64(b[off:])
				}
				revoked[blk] = seq + uint32(len(txs))
			}
		default:
			steps = j.blocks
		}
		pos = next(pos)
	}
	for i, tx := range txs {
		for _, p := range tx {
			if r, ok := revoked[p.fsBlock]; ok && int32(r-(seq+uint32(i))) >= 0 {
				continue
			}
			if !j.f.validRange(p.fsBlock, 1) && p.fsBlock != 0 {
				return nil, 0, j.f.corrupt("journal names block %d, out of range", p.fsBlock)
			}
			data, err := j.read(p.jBlock)
			if err != nil {
				return nil, 0, err
			}
			if p.escape {
				be.PutUint32(data, jMagic)
			}
			out[p.fsBlock] = data
		}
	}
	return out, seq + uint32(len(txs)), nil
}

type tag struct {
	block  uint64
	escape bool
}

// tags decodes a descriptor block's tags.
func (j *journal) tags(b []byte) ([]tag, error) {
	be := binary.BigEndian
	end := len(b)
	if j.csum() {
		end -= 4
	}
	var out []tag
	ts := j.tagSize()
	for off := 12; off+ts <= end; {
		t := b[off:]
		var flags uint32
		blk := uint64(be.Uint32(t))
		if j.incompat&jIncompatCsumV3 != 0 {
			flags = be.Uint32(t[4:])
			if j.incompat&jIncompat64bit != 0 {
				blk |= uint64(be.Uint32(t[8:])) << 32
			}
		} else {
			flags = uint32(be.Uint16(t[6:]))
			if j.incompat&jIncompat64bit != 0 {
				blk |= uint64(be.Uint32(t[8:])) << 32
			}
		}
		out = append(out, tag{blk, flags&jFlagEscape != 0})
		off += ts
		if flags&jFlagSameUUID == 0 {
			off += 16
		}
		if flags&jFlagLastTag != 0 {
			return out, nil
		}
	}
	if len(out) == 0 {
		return nil, j.f.corrupt("journal descriptor without tags")
	}
	return out, nil
}
