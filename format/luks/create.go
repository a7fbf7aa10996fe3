package luks

import (
	"crypto/rand"
	"fmt"
	"hash"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/qimg/qimg/image"
)

// defaultIterTime is QEMU's encrypt.iter-time default, in milliseconds.
const defaultIterTime = 2000

// Volume is a new LUKS header with its key material, ready to be written:
// Region holds the header and every slot's material (PayloadBytes bytes,
// unused slots zero), and Cipher encrypts the payload.
type Volume struct {
	Header *Header
	Region []byte
	Cipher *Cipher
}

// Create makes a new header as QEMU does: a random master key, its PBKDF2
// digest, and key slot 0 holding it for password, the other seven slots
// disabled. Iteration counts are measured on this machine as QEMU measures
// them, so that unlocking takes about o.IterTime milliseconds.
func Create(o Options, password []byte) (*Volume, error) {
	s, spec, err := o.suite()
	if err != nil {
		return nil, err
	}
	iterTime := o.IterTime
	if iterTime == 0 {
		iterTime = defaultIterTime
	}
	if iterTime < 0 || iterTime > 1<<31 {
		return nil, image.Errorf(image.ErrInvalidArgument, "encrypt.iter-time %d is out of range", iterTime)
	}
	n := s.keyBytes()
	h := &Header{CipherName: s.alg.name, CipherMode: spec, HashSpec: s.hashName, KeyBytes: uint32(n), suite: s, UUID: newUUID()}
	master := random(n)
	defer clear(master)
	rand.Read(h.DigestSalt[:])
	newHash := s.hash()
	if h.DigestIters, err = iterations(newHash, master, digestLen, iterTime, 8); err != nil {
		return nil, err
	}
	digest, err := derive(newHash, master, h.DigestSalt[:], h.DigestIters, digestLen)
	if err != nil {
		return nil, err
	}
	copy(h.Digest[:], digest)
	per := h.materialSectors()
	for i := range h.Slots {
		h.Slots[i] = Slot{Stripes: Stripes, KeyOffset: uint32(headerSectors + uint64(i)*per), state: slotDisabled}
	}
	h.PayloadOffset = uint32(headerSectors + NumSlots*per)
	region := make([]byte, h.PayloadBytes())
	if err := h.storeKey(0, password, master, iterTime, region); err != nil {
		return nil, err
	}
	copy(region, h.Encode())
	c, err := newCipher(s, master)
	if err != nil {
		return nil, err
	}
	return &Volume{Header: h, Region: region, Cipher: c}, nil
}

// PayloadBytes is the size of the header and key material Create would
// make with o: what a qcow2 image reserves for it (qemu-img measure).
func (o Options) PayloadBytes() (int64, error) {
	s, _, err := o.suite()
	if err != nil {
		return 0, err
	}
	h := &Header{KeyBytes: uint32(s.keyBytes())}
	return (headerSectors + NumSlots*int64(h.materialSectors())) * SectorSize, nil
}

// storeKey fills slot i for password: its salt and iteration count, and
// its split, encrypted copy of master inside region.
func (h *Header) storeKey(i int, password, master []byte, iterTime int64, region []byte) error {
	s := &h.Slots[i]
	newHash := h.suite.hash()
	rand.Read(s.Salt[:])
	var err error
	if s.Iterations, err = iterations(newHash, password, len(master), iterTime, 1); err != nil {
		return err
	}
	slotKey, err := derive(newHash, password, s.Salt[:], s.Iterations, len(master))
	if err != nil {
		return err
	}
	defer clear(slotKey)
	c, err := newCipher(h.suite, slotKey)
	if err != nil {
		return err
	}
	off := int64(s.KeyOffset) * SectorSize
	material := region[off : off+int64(len(master))*Stripes]
	rand.Read(material[:len(master)*(Stripes-1)])
	afSplit(newHash, material, master, Stripes)
	c.Encrypt(material, 0)
	s.Active, s.state = true, slotEnabled
	return nil
}

// iterations is QEMU's count: PBKDF2 iterations per second of CPU time
// for this secret and output length, scaled to iterTime milliseconds,
// divided by share (8 for the master key digest, as cryptsetup does), at
// least minIterations.
func iterations(newHash func() hash.Hash, secret []byte, outLen int, iterTime, share int64) (uint32, error) {
	perSec, err := measure(newHash, secret, outLen, iterTime)
	if err != nil {
		return 0, err
	}
	n := uint64(perSec) * uint64(iterTime) / 1000 / uint64(share)
	if n > 1<<32-1 {
		return 0, image.Errorf(image.ErrInvalidArgument, "PBKDF iterations %d larger than %d", n, uint32(1<<32-1))
	}
	return uint32(max(n, minIterations)), nil
}

// measure times PBKDF2 on the calling thread's CPU clock, doubling the
// count until a run takes at least 50 ms (QEMU waits for 500 ms; the
// rate is the same and creation is faster), or ten times iterTime ms when
// that is shorter: a rate measured over ten times the unlock time is
// accurate enough for it. It returns iterations per second.
func measure(newHash func() hash.Hash, secret []byte, outLen int, iterTime int64) (int64, error) {
	enough := min(50*time.Millisecond, time.Duration(iterTime)*10*time.Millisecond)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	salt := make([]byte, saltLen)
	for n := 1 << 12; ; n *= 2 {
		start, err := threadCPU()
		if err != nil {
			return 0, err
		}
		if _, err := derive(newHash, secret, salt, uint32(n), outLen); err != nil {
			return 0, err
		}
		end, err := threadCPU()
		if err != nil {
			return 0, err
		}
		if d := end - start; d >= enough && d > 0 || n >= 1<<30 {
			return int64(float64(n) / d.Seconds()), nil
		}
	}
}

// threadCPU is the CPU time the calling thread has used.
func threadCPU() (time.Duration, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0, fmt.Errorf("measuring PBKDF2 speed: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// newUUID is a random (version 4) UUID in its usual text form.
func newUUID() string {
	u := random(16)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
