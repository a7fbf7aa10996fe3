package qcow2

import (
	"encoding/binary"
	"errors"
	"io"
	"time"

	"github.com/qimg/qimg/image"
)

// snapshotMinEntry is the size of a snapshot table entry's fixed part.
const snapshotMinEntry = 40

// maxSnapshotTable bounds the bytes read for the snapshot table (QEMU's
// QCOW_MAX_SNAPSHOTS_SIZE).
const maxSnapshotTable = 64 << 20

// Snapshot is one internal snapshot as listed by qemu-img snapshot -l.
type Snapshot struct {
	ID          string
	Name        string
	L1Offset    uint64
	L1Size      uint32
	Date        time.Time
	VMClock     time.Duration
	VMStateSize uint64
	DiskSize    uint64 // virtual size when taken; 0 if not recorded
	Icount      int64  // -1 if not recorded
	ExtraData   []byte
	entryOffset int64
	entryLength int64
}

// Snapshots reads the snapshot table. Each entry is bounds-checked, and the
// table as a whole may not exceed 64 MiB.
func (img *Image) Snapshots() ([]Snapshot, error) { return img.readSnapshots(false) }

// readSnapshots reads the snapshot table. Normally it must lie inside the
// file; for Check (zeroFill) the bytes past the end of the file read as
// zeros, as QEMU's block layer returns them, so that a check can report
// the entries qemu-img check reports rather than refuse the image.
func (img *Image) readSnapshots(zeroFill bool) ([]Snapshot, error) {
	h := img.hdr
	if h.NbSnapshots == 0 {
		return nil, nil
	}
	off := int64(h.SnapshotsOffset)
	limit := int64(maxSnapshotTable)
	// read fills buf (freshly zeroed when short is allowed) from the table.
	read := func(buf []byte, at int64, shortOK bool) error {
		if zeroFill {
			return img.readAt(buf, uint64(at))
		}
		n, err := img.file.ReadAt(buf, at)
		if errors.Is(err, io.EOF) && (shortOK || n == len(buf)) {
			err = nil
		}
		return err
	}
	if !zeroFill {
		limit = min(img.fileSize-off, limit)
	}
	var snaps []Snapshot
	pos := int64(0)
	be := binary.BigEndian
	var fixed [snapshotMinEntry]byte
	for i := uint32(0); i < h.NbSnapshots; i++ {
		if pos+snapshotMinEntry > limit {
			return nil, img.errorf(image.ErrCorrupt, "snapshot table entry %d runs past the end of the table", i)
		}
		if err := read(fixed[:], off+pos, false); err != nil {
			return nil, img.errorf(image.ErrCorrupt, "reading snapshot %d: %v", i, err)
		}
		s := Snapshot{
			L1Offset:    be.Uint64(fixed[0:]),
			L1Size:      be.Uint32(fixed[8:]),
			Date:        time.Unix(int64(be.Uint32(fixed[16:])), int64(be.Uint32(fixed[20:]))),
			VMClock:     time.Duration(be.Uint64(fixed[24:])),
			VMStateSize: uint64(be.Uint32(fixed[32:])),
			Icount:      -1,
			entryOffset: off + pos,
		}
		idLen, nameLen := int64(be.Uint16(fixed[12:])), int64(be.Uint16(fixed[14:]))
		extraLen := int64(be.Uint32(fixed[36:]))
		total := snapshotMinEntry + extraLen + idLen + nameLen
		if extraLen > 1024 || pos+total > limit {
			return nil, img.errorf(image.ErrCorrupt, "snapshot %d entry (%d bytes of extra data) runs past the end of the table", i, extraLen)
		}
		rest := make([]byte, total-snapshotMinEntry)
		if err := read(rest, off+pos+snapshotMinEntry, true); err != nil {
			return nil, img.errorf(image.ErrCorrupt, "reading snapshot %d: %v", i, err)
		}
		s.ExtraData = rest[:extraLen]
		if extraLen >= 8 {
			s.VMStateSize = be.Uint64(rest)
		}
		if extraLen >= 16 {
			s.DiskSize = be.Uint64(rest[8:])
		}
		if extraLen >= 24 {
			s.Icount = int64(be.Uint64(rest[16:]))
		}
		s.ID = string(rest[extraLen : extraLen+idLen])
		s.Name = string(rest[extraLen+idLen:])
		total = (total + 7) &^ 7
		s.entryLength = total
		pos += total
		snaps = append(snaps, s)
	}
	return snaps, nil
}

// snapshotL1 reads a snapshot's L1 table after checking its placement.
func (img *Image) snapshotL1(s Snapshot) ([]uint64, error) {
	if int64(s.L1Size)*8 > maxL1Bytes {
		return nil, img.errorf(image.ErrLimit, "snapshot %q L1 table of %d entries exceeds 32 MiB", s.ID, s.L1Size)
	}
	if s.L1Size == 0 {
		return nil, nil
	}
	if err := img.checkTable("snapshot "+s.ID+" L1 table", s.L1Offset, int64(s.L1Size)*8, false); err != nil {
		return nil, err
	}
	buf := make([]byte, int64(s.L1Size)*8)
	if _, err := img.file.ReadAt(buf, int64(s.L1Offset)); err != nil {
		return nil, img.errorf(image.ErrCorrupt, "reading snapshot %q L1 table: %v", s.ID, err)
	}
	l1 := make([]uint64, s.L1Size)
	for i := range l1 {
		l1[i] = binary.BigEndian.Uint64(buf[i*8:])
	}
	return l1, nil
}
