package luks

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/qimg/qimg/image"
)

// Sizes fixed by the LUKS1 specification.
const (
	HeaderSize    = 592 // the header and its eight key slot descriptors
	SectorSize    = 512
	NumSlots      = 8
	Stripes       = 4000 // anti-forensic stripes of every slot
	saltLen       = 32
	digestLen     = 20
	nameLen       = 32
	uuidLen       = 40
	slotEnabled   = 0x00AC71F3
	slotDisabled  = 0x0000DEAD
	headerSectors = 4096 / SectorSize // key material starts after 4 KiB
	minIterations = 1000              // QEMU's floor for new slots and digests
)

// MaxIterations bounds the PBKDF2 iteration count of a slot or of the
// master key digest that qimg runs. QEMU's default iter-time of two seconds
// gives a few million on current machines; a hostile header could ask for
// four billion, which would take hours.
const MaxIterations = 1 << 25

var magic = []byte{'L', 'U', 'K', 'S', 0xBA, 0xBE}

// Slot is one key slot descriptor.
type Slot struct {
	Active     bool
	Iterations uint32
	Salt       [saltLen]byte
	KeyOffset  uint32 // in sectors, from the start of the header
	Stripes    uint32
	state      uint32 // the raw active field
}

// Header is a decoded LUKS1 header.
type Header struct {
	CipherName    string // "aes"
	CipherMode    string // "xts-plain64", "cbc-essiv:sha256"
	HashSpec      string // "sha256"
	PayloadOffset uint32 // in sectors
	KeyBytes      uint32 // master key length
	Digest        [digestLen]byte
	DigestSalt    [saltLen]byte
	DigestIters   uint32
	UUID          string
	Slots         [NumSlots]Slot

	suite suite // the algorithms the names above select
}

// IsLUKS reports whether b starts with a LUKS1 header's magic and version.
func IsLUKS(b []byte) bool {
	return len(b) >= 8 && bytes.Equal(b[:6], magic) && binary.BigEndian.Uint16(b[6:]) == 1
}

// ParseHeader decodes and checks the header at the start of b (at least
// HeaderSize bytes), as QEMU checks it when opening an image, with QEMU's
// messages. Errors are image.ErrCorrupt, or image.ErrUnsupported for
// algorithms qimg does not implement.
func ParseHeader(b []byte) (*Header, error) {
	if len(b) < HeaderSize {
		return nil, corrupt("LUKS header truncated (%d bytes)", len(b))
	}
	if !bytes.Equal(b[:6], magic) {
		return nil, corrupt("Volume is not in LUKS format")
	}
	be := binary.BigEndian
	if v := be.Uint16(b[6:]); v != 1 {
		return nil, image.Errorf(image.ErrUnsupported, "LUKS version %d is not supported", v)
	}
	h := &Header{
		PayloadOffset: be.Uint32(b[104:]),
		KeyBytes:      be.Uint32(b[108:]),
		DigestIters:   be.Uint32(b[164:]),
		UUID:          cString(b[168 : 168+uuidLen]),
	}
	var err error
	if h.CipherName, err = field(b[8:40], "cipher name"); err != nil {
		return nil, err
	}
	if h.CipherMode, err = field(b[40:72], "cipher mode"); err != nil {
		return nil, err
	}
	if h.HashSpec, err = field(b[72:104], "hash spec"); err != nil {
		return nil, err
	}
	copy(h.Digest[:], b[112:132])
	copy(h.DigestSalt[:], b[132:164])
	for i := range h.Slots {
		s := b[208+48*i:]
		h.Slots[i] = Slot{state: be.Uint32(s), Iterations: be.Uint32(s[4:]), KeyOffset: be.Uint32(s[40:]), Stripes: be.Uint32(s[44:])}
		h.Slots[i].Active = h.Slots[i].state == slotEnabled
		copy(h.Slots[i].Salt[:], s[8:40])
	}
	if err := h.check(); err != nil {
		return nil, err
	}
	if h.suite, err = parseSuite(h.CipherName, h.CipherMode, h.HashSpec, int(h.KeyBytes)); err != nil {
		return nil, err
	}
	return h, nil
}

// field decodes a NUL-terminated name, which QEMU requires to be
// terminated inside its field.
func field(b []byte, what string) (string, error) {
	n := bytes.IndexByte(b, 0)
	if n < 0 {
		return "", corrupt("LUKS header %s is not NUL terminated", what)
	}
	return string(b[:n]), nil
}

func cString(b []byte) string {
	if n := bytes.IndexByte(b, 0); n >= 0 {
		b = b[:n]
	}
	return string(b)
}

// check is QEMU's qcrypto_block_luks_check_header: the key slots must lie
// between the header and the payload without overlapping each other.
func (h *Header) check() error {
	if h.PayloadOffset < headerSectors {
		return corrupt("LUKS payload is overlapping with the header")
	}
	if h.DigestIters == 0 {
		return corrupt("LUKS key iteration count is zero")
	}
	if h.KeyBytes == 0 || h.KeyBytes > 64 {
		return image.Errorf(image.ErrUnsupported, "LUKS master key of %d bytes is not supported", h.KeyBytes)
	}
	for i, s := range h.Slots {
		if s.Stripes != Stripes {
			return corrupt("Keyslot %d is corrupted (stripes %d != %d)", i, s.Stripes, Stripes)
		}
		if s.state != slotEnabled && s.state != slotDisabled {
			return corrupt("Keyslot %d state (active/disable) is corrupted", i)
		}
		if s.Active && s.Iterations == 0 {
			return corrupt("Keyslot %d iteration count is zero", i)
		}
		if s.KeyOffset < headerSectors {
			return corrupt("Keyslot %d is overlapping with the LUKS header", i)
		}
		if uint64(s.KeyOffset)+h.materialSectors() > uint64(h.PayloadOffset) {
			return corrupt("Keyslot %d is overlapping with the encrypted payload", i)
		}
		for j := i + 1; j < NumSlots; j++ {
			o := h.Slots[j]
			a, b, n := uint64(s.KeyOffset), uint64(o.KeyOffset), h.materialSectors()
			if a+n > b && b+n > a {
				return corrupt("Keyslots %d and %d are overlapping in the header", i, j)
			}
		}
	}
	return nil
}

// materialSectors is the room one slot's key material takes, in sectors:
// the split key rounded up to whole sectors and then to 4 KiB, as
// cryptsetup lays it out.
func (h *Header) materialSectors() uint64 {
	n := (uint64(h.KeyBytes)*Stripes + SectorSize - 1) / SectorSize
	return (n + headerSectors - 1) / headerSectors * headerSectors
}

// PayloadBytes is the size of the header and all key material: where the
// encrypted data starts in a LUKS volume, and the length of the region a
// qcow2 image reserves for it.
func (h *Header) PayloadBytes() int64 { return int64(h.PayloadOffset) * SectorSize }

// Encode serialises the header into HeaderSize bytes.
func (h *Header) Encode() []byte {
	b := make([]byte, HeaderSize)
	be := binary.BigEndian
	copy(b, magic)
	be.PutUint16(b[6:], 1)
	copy(b[8:39], h.CipherName)
	copy(b[40:71], h.CipherMode)
	copy(b[72:103], h.HashSpec)
	be.PutUint32(b[104:], h.PayloadOffset)
	be.PutUint32(b[108:], h.KeyBytes)
	copy(b[112:], h.Digest[:])
	copy(b[132:], h.DigestSalt[:])
	be.PutUint32(b[164:], h.DigestIters)
	copy(b[168:168+uuidLen-1], h.UUID)
	for i, s := range h.Slots {
		d := b[208+48*i:]
		state := uint32(slotDisabled)
		if s.Active {
			state = slotEnabled
		}
		be.PutUint32(d, state)
		be.PutUint32(d[4:], s.Iterations)
		copy(d[8:40], s.Salt[:])
		be.PutUint32(d[40:], s.KeyOffset)
		be.PutUint32(d[44:], s.Stripes)
	}
	return b
}

func corrupt(format string, args ...any) error {
	return image.Errorf(image.ErrCorrupt, format, args...)
}

// String describes the header without any secret.
func (h *Header) String() string {
	return fmt.Sprintf("LUKS1 %s-%s %s, %d key bytes", h.CipherName, h.CipherMode, h.HashSpec, h.KeyBytes)
}
