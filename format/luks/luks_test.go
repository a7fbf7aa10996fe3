package luks

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

func regionReader(region []byte) ReadFunc {
	return func(b []byte, off int64) error {
		if off < 0 || off > int64(len(region)) || int64(len(b)) > int64(len(region))-off {
			return image.Errorf(image.ErrCorrupt, "read past the region")
		}
		copy(b, region[off:])
		return nil
	}
}

func TestCreateUnlock(t *testing.T) {
	for _, o := range []Options{
		{IterTime: 1},
		{IterTime: 1, CipherAlg: "aes-128", CipherMode: "cbc", IVGenAlg: "essiv", HashAlg: "sha1"},
		{IterTime: 1, CipherAlg: "aes-256", CipherMode: "cbc", IVGenAlg: "plain", HashAlg: "sha512"},
	} {
		v, err := Create(o, []byte("pw"))
		if err != nil {
			t.Fatal(err)
		}
		h, err := ParseHeader(v.Region)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		if _, err := h.Unlock([]byte("wrong"), regionReader(v.Region)); !errors.Is(err, ErrWrongPassword) || !errors.Is(err, image.ErrEncrypted) {
			t.Fatalf("wrong password: %v", err)
		}
		c, err := h.Unlock([]byte("pw"), regionReader(v.Region))
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte("0123456789abcdef"), 64)
		enc := bytes.Clone(data)
		v.Cipher.Encrypt(enc, 77)
		if bytes.Equal(enc, data) {
			t.Fatal("not encrypted")
		}
		c.Decrypt(enc, 77)
		if !bytes.Equal(enc, data) {
			t.Fatalf("%+v: round trip differs", o)
		}
	}
}

// TestQemuVolume unlocks a LUKS volume made by qemu-img and decrypts what
// qemu-io wrote into it.
func TestQemuVolume(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "v.luks")
	secret := "secret,id=sec0,data=s3cret"
	for _, o := range []string{
		// CBC with ESSIV is tested on qcow2 images (format/qcow2).
		"key-secret=sec0,iter-time=10,cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=plain,hash-alg=sha1",
	} {
		qemutest.CreateEncrypted(t, "create", "-q", "-f", "luks", "--object", secret, "-o", o, p, "1M")
		qemutest.Run(t, "qemu-io", "--object", secret, "--image-opts", "driver=luks,file.filename="+p+",key-secret=sec0",
			"-c", "write -P 0xab 4096 4096")
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		h, err := ParseHeader(raw)
		if err != nil {
			t.Fatal(err)
		}
		c, err := h.Unlock([]byte("s3cret"), regionReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", o, err)
		}
		payload := raw[h.PayloadBytes():]
		sector := payload[4096 : 4096+SectorSize]
		c.Decrypt(sector, 4096/SectorSize)
		if !bytes.Equal(sector, bytes.Repeat([]byte{0xab}, SectorSize)) {
			t.Fatalf("%s: decrypted sector %x", o, sector[:32])
		}
	}
}
