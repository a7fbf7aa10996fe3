package redo

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/qimg/qimg/image"
)

// The log file, little-endian:
//
//	header   headerSize bytes: magic, version, nonce, the Target, CRC
//	data     the bytes of every write, appended as they come
//	table    entrySize bytes per extent, sorted by device offset:
//	         device offset, length, position of its bytes in the file
//	         (-1: zeros)
//	footer   footerSize bytes: magic, the header's nonce, where the table
//	         is and how many entries it has, CRCs of the data, the table
//	         and the header, and its own CRC
//
// The table and footer are written at Commit; a log without a valid
// footer (one whose nonce is not the header's, or whose place does not
// end the file) is incomplete.
const (
	headerSize = 512
	entrySize  = 24
	footerSize = 64
	version    = 1
	// maxName bounds the Target's strings, so the header has room.
	maxName = 200
)

var (
	headerMagic = []byte("QIMGREDO")
	footerMagic = []byte("QIMGDONE")
	castagnoli  = crc32.MakeTable(crc32.Castagnoli)
	le          = binary.LittleEndian
)

// Target is what a log's writes are for: a device of an image. A log is
// replayed only onto the device it names.
type Target struct {
	// Device is the device's name in the image ("/dev/sda1").
	Device string
	// Offset is where the device starts in the image; -1 when it is not
	// one window of it (a logical volume).
	Offset int64
	// Size is the device's size in bytes; writes lie inside it.
	Size int64
	// ImageSize is the image's virtual size.
	ImageSize int64
	// ID says what the device holds ("ext2 UUID=..."), and for a
	// logical volume which one.
	ID string
}

func (t Target) String() string {
	where := fmt.Sprintf("at offset %d", t.Offset)
	if t.Offset < 0 {
		where = "(a logical volume)"
	}
	return fmt.Sprintf("%s %s of %d bytes, %s, in an image of %d bytes", t.Device, where, t.Size, t.ID, t.ImageSize)
}

func (t Target) check() error {
	if len(t.Device) > maxName || len(t.ID) > maxName {
		return fmt.Errorf("redo: target names longer than %d bytes: %w", maxName, image.ErrInvalidArgument)
	}
	if t.Size < 0 || t.ImageSize < 0 || t.Offset < -1 {
		return fmt.Errorf("redo: target %v: negative size or offset: %w", t, image.ErrInvalidArgument)
	}
	return nil
}

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// encodeHeader lays out the header of a log for t.
func encodeHeader(t Target, nonce uint64) []byte {
	b := make([]byte, headerSize)
	copy(b, headerMagic)
	le.PutUint32(b[8:], version)
	le.PutUint64(b[16:], nonce)
	le.PutUint64(b[24:], uint64(t.ImageSize))
	le.PutUint64(b[32:], uint64(t.Offset))
	le.PutUint64(b[40:], uint64(t.Size))
	le.PutUint16(b[48:], uint16(len(t.Device)))
	le.PutUint16(b[50:], uint16(len(t.ID)))
	n := copy(b[52:], t.Device)
	copy(b[52+n:], t.ID)
	le.PutUint32(b[headerSize-4:], crc(b[:headerSize-4]))
	return b
}

// header is a parsed header.
type header struct {
	target Target
	nonce  uint64
	crc    uint32
}

// decodeHeader parses a header whose magic is right.
func decodeHeader(b []byte) (header, error) {
	var h header
	if v := le.Uint32(b[8:]); v != version {
		return h, fmt.Errorf("version %d (this qimg writes and reads version %d): %w", v, version, image.ErrUnsupported)
	}
	h.crc = le.Uint32(b[headerSize-4:])
	if crc(b[:headerSize-4]) != h.crc {
		return h, fmt.Errorf("header checksum mismatch: %w", image.ErrCorrupt)
	}
	h.nonce = le.Uint64(b[16:])
	t := &h.target
	t.ImageSize = int64(le.Uint64(b[24:]))
	t.Offset = int64(le.Uint64(b[32:]))
	t.Size = int64(le.Uint64(b[40:]))
	dn, in := int(le.Uint16(b[48:])), int(le.Uint16(b[50:]))
	if dn > maxName || in > maxName {
		return h, fmt.Errorf("header names of %d and %d bytes (at most %d): %w", dn, in, maxName, image.ErrCorrupt)
	}
	t.Device = string(b[52 : 52+dn])
	t.ID = string(b[52+dn : 52+dn+in])
	if err := t.check(); err != nil {
		return h, fmt.Errorf("header: %w", image.ErrCorrupt)
	}
	return h, nil
}

// footer is what ends a complete log.
type footer struct {
	nonce                        uint64
	tableOff, count              int64
	dataCRC, tableCRC, headerCRC uint32
}

func (f footer) encode() []byte {
	b := make([]byte, footerSize)
	copy(b, footerMagic)
	le.PutUint64(b[8:], f.nonce)
	le.PutUint64(b[16:], uint64(f.tableOff))
	le.PutUint64(b[24:], uint64(f.count))
	le.PutUint32(b[32:], f.dataCRC)
	le.PutUint32(b[36:], f.tableCRC)
	le.PutUint32(b[40:], f.headerCRC)
	le.PutUint32(b[footerSize-4:], crc(b[:footerSize-4]))
	return b
}

// decodeFooter parses the last footerSize bytes of a file of size bytes
// whose header is h. found is false when they are not its footer (the
// log never committed); an error means they are, but the file around
// them is not what that footer says.
func decodeFooter(b []byte, h header, size int64) (f footer, found bool, err error) {
	if !bytes.Equal(b[:8], footerMagic) || crc(b[:footerSize-4]) != le.Uint32(b[footerSize-4:]) {
		return f, false, nil
	}
	f = footer{nonce: le.Uint64(b[8:]), tableOff: int64(le.Uint64(b[16:])), count: int64(le.Uint64(b[24:])),
		dataCRC: le.Uint32(b[32:]), tableCRC: le.Uint32(b[36:]), headerCRC: le.Uint32(b[40:])}
	if f.nonce != h.nonce {
		return f, false, nil // bytes of another log, written as data: this one never committed
	}
	if f.headerCRC != h.crc {
		return f, true, fmt.Errorf("the header changed after the commit: %w", image.ErrCorrupt)
	}
	room := size - footerSize - f.tableOff
	if f.tableOff < headerSize || room < 0 || f.count < 0 || f.count > room/entrySize || room != f.count*entrySize {
		return f, true, fmt.Errorf("the footer puts %d table entries at %d in a file of %d bytes: %w", f.count, f.tableOff, size, image.ErrCorrupt)
	}
	return f, true, nil
}

func encodeEntry(b []byte, e extent) {
	le.PutUint64(b, uint64(e.off))
	le.PutUint64(b[8:], uint64(e.n))
	le.PutUint64(b[16:], uint64(e.pos))
}

func decodeEntry(b []byte) extent {
	return extent{int64(le.Uint64(b)), int64(le.Uint64(b[8:])), int64(le.Uint64(b[16:]))}
}
