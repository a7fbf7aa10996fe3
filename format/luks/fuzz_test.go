package luks

// Fuzz targets for the LUKS header, which comes from the image file: an
// attacker controls every field. Parsing must never panic, and unlocking
// must stay within the bounds the package documents (key material of at
// most 64*4000 bytes, iteration counts capped).

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/qimg/qimg/image"
)

func fuzzSeeds(f *testing.F) {
	v, err := Create(Options{IterTime: 1}, []byte("pw"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(v.Region[:HeaderSize])
	cbc, err := Create(Options{IterTime: 1, CipherAlg: "aes-128", CipherMode: "cbc", IVGenAlg: "essiv", HashAlg: "sha1"}, []byte("pw"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(cbc.Region[:HeaderSize])
	for _, o := range []Options{
		{IterTime: 1, CipherAlg: "serpent-192", IVGenAlg: "essiv", HashAlg: "ripemd160"},
		{IterTime: 1, CipherAlg: "cast5-128", CipherMode: "cbc", IVGenAlg: "essiv", IVGenHashAlg: "md5"},
		{IterTime: 1, CipherAlg: "twofish-256", CipherMode: "cbc", IVGenAlg: "plain"},
	} {
		v, err := Create(o, []byte("pw"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v.Region[:HeaderSize])
	}
}

func checkClass(t *testing.T, err error) {
	t.Helper()
	for _, c := range []error{image.ErrCorrupt, image.ErrUnsupported, image.ErrLimit, image.ErrEncrypted, image.ErrInvalidArgument} {
		if errors.Is(err, c) {
			return
		}
	}
	t.Fatalf("unclassified error: %v", err)
}

func FuzzParseHeader(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			checkClass(t, err)
			return
		}
		_ = h.Info()
		again, err := ParseHeader(h.Encode())
		if err != nil {
			t.Fatalf("re-parsing an encoded header: %v", err)
		}
		if again.String() != h.String() || again.PayloadOffset != h.PayloadOffset || again.Slots != h.Slots {
			t.Fatalf("encode/parse round trip differs: %+v vs %+v", again, h)
		}
	})
}

// FuzzUnlock runs the whole unlock on hostile headers whose iteration
// counts are kept small (the cap itself is tested by TestIterationCap).
func FuzzUnlock(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		if h.DigestIters > 1<<13 {
			return
		}
		for _, s := range h.Slots {
			if s.Active && s.Iterations > 1<<13 {
				return
			}
		}
		region := append(bytes.Clone(b), make([]byte, 64)...)
		_, err = h.Unlock([]byte("pw"), func(p []byte, off int64) error {
			if off < 0 || off > int64(len(region)) || int64(len(p)) > int64(len(region))-off {
				return image.Errorf(image.ErrCorrupt, "outside the region")
			}
			copy(p, region[off:])
			return nil
		})
		if err != nil {
			checkClass(t, err)
		}
	})
}

// TestIterationCap: a header asking for billions of PBKDF2 iterations is
// refused at once, not run.
func TestIterationCap(t *testing.T) {
	v, err := Create(Options{IterTime: 1}, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int{164, 208 + 4} { // master key digest, slot 0
		b := bytes.Clone(v.Region)
		binary.BigEndian.PutUint32(b[off:], 0xffffffff)
		h, err := ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.Unlock([]byte("pw"), regionReader(b))
		if !errors.Is(err, image.ErrLimit) {
			t.Fatalf("field at %d: %v, want image.ErrLimit", off, err)
		}
	}
}

// TestHostileHeaders: QEMU's checks, with its messages.
func TestHostileHeaders(t *testing.T) {
	v, err := Create(Options{IterTime: 1}, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	for _, c := range []struct {
		patch func(b []byte)
		want  string
	}{
		{func(b []byte) { b[0] = 'X' }, "Volume is not in LUKS format"},
		{func(b []byte) { be.PutUint16(b[6:], 2) }, "LUKS version 2 is not supported"},
		{func(b []byte) { copy(b[8:40], bytes.Repeat([]byte{'a'}, 32)) }, "LUKS header cipher name is not NUL terminated"},
		{func(b []byte) { be.PutUint32(b[104:], 1) }, "LUKS payload is overlapping with the header"},
		{func(b []byte) { be.PutUint32(b[164:], 0) }, "LUKS key iteration count is zero"},
		{func(b []byte) { be.PutUint32(b[108:], 0xffffffff) }, "LUKS master key of 4294967295 bytes is not supported"},
		{func(b []byte) { be.PutUint32(b[208+3*48+44:], 5) }, "Keyslot 3 is corrupted (stripes 5 != 4000)"},
		{func(b []byte) { be.PutUint32(b[208+2*48:], 1) }, "Keyslot 2 state (active/disable) is corrupted"},
		{func(b []byte) { be.PutUint32(b[208+4:], 0) }, "Keyslot 0 iteration count is zero"},
		{func(b []byte) { be.PutUint32(b[208+40:], 1) }, "Keyslot 0 is overlapping with the LUKS header"},
		{func(b []byte) { be.PutUint32(b[208+7*48+40:], 0xfffffff0) }, "Keyslot 7 is overlapping with the encrypted payload"},
		{func(b []byte) { copy(b[208+5*48+40:208+5*48+44], b[208+4*48+40:]) }, "Keyslots 4 and 5 are overlapping in the header"},
		{func(b []byte) { copy(b[8:12], "foo\x00") }, "Algorithm foo with key size 64 bytes not supported"},
		{func(b []byte) { copy(b[40:52], "xts\x00") }, "Unexpected cipher mode string format xts"},
		{func(b []byte) { copy(b[72:80], "sha2566\x00") }, "Hash algorithm sha2566 not supported"},
	} {
		b := bytes.Clone(v.Region[:HeaderSize])
		c.patch(b)
		_, err := ParseHeader(b)
		if err == nil || err.Error() != c.want {
			t.Errorf("got %v, want %q", err, c.want)
			continue
		}
		checkClass(t, err)
	}
}
