package qcow2_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/format/luks"
	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

const cryptPassword = "s3cret-pw"

var cryptSecret = []string{"--object", "secret,id=sec0,data=" + cryptPassword}

// qemuOpts is the --image-opts string that opens p with the key.
func qemuOpts(p string) string {
	return "driver=qcow2,file.filename=" + p + ",encrypt.key-secret=sec0"
}

// qemuRaw decrypts p with qemu-img convert.
func qemuRaw(t *testing.T, p string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "plain.raw")
	qemutest.Run(t, "qemu-img", append(append([]string{"convert"}, cryptSecret...), "--image-opts", qemuOpts(p), "-O", "raw", out)...)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReadQemuEncrypted decrypts images qemu-img and qemu-io encrypted,
// and compares with what qemu-img decrypts.
func TestReadQemuEncrypted(t *testing.T) {
	for _, c := range []struct{ name, opts string }{
		{"luks", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10"},
		{"luks-cbc-essiv", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10,encrypt.cipher-alg=aes-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv,encrypt.hash-alg=sha512"},
		{"luks-serpent-xts-essiv", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10,encrypt.cipher-alg=serpent-128,encrypt.ivgen-alg=essiv,encrypt.ivgen-hash-alg=md5"},
		{"luks-cast5-cbc", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10,encrypt.cipher-alg=cast5-128,encrypt.cipher-mode=cbc,encrypt.hash-alg=ripemd160"},
		{"aes", "encrypt.format=aes,encrypt.key-secret=sec0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "e.qcow2")
			qemutest.CreateEncrypted(t, append(append([]string{"create", "-q", "-f", "qcow2", "-o", c.opts + ",cluster_size=4096"}, cryptSecret...), p, "1M")...)
			qemutest.Run(t, "qemu-io", append(cryptSecret, "--image-opts", qemuOpts(p),
				"-c", "write -P 7 0 8k", "-c", "write -P 0x5a 70000 3000", "-c", "write -z 4k 2k")...)
			want := qemuRaw(t, p)
			img, err := qcow2.Open(p, chained(p, &qcow2.OpenOptions{Key: []byte(cryptPassword)}))
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			if got := readAll(t, img); !bytes.Equal(got, want) {
				t.Fatal("qimg decrypts other bytes than qemu-img")
			}
			// Unaligned small reads go through whole sectors.
			small := make([]byte, 5)
			if _, err := img.ReadAt(small, 69999); err != nil || !bytes.Equal(small, want[69999:70004]) {
				t.Fatalf("small read: %x %v", small, err)
			}
		})
	}
}

func TestWrongKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "e.qcow2")
	qemutest.CreateEncrypted(t, append(append([]string{"create", "-q", "-f", "qcow2", "-o", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10"}, cryptSecret...), p, "1M")...)
	before, _ := os.ReadFile(p)
	_, err := qcow2.Open(p, chained(p, &qcow2.OpenOptions{Key: []byte("nope"), Writable: true}))
	if !errors.Is(err, luks.ErrWrongPassword) || !strings.Contains(err.Error(), "Invalid password, cannot unlock any keyslot") {
		t.Fatalf("wrong key: %v", err)
	}
	if strings.Contains(err.Error(), "nope") {
		t.Fatalf("the key is in the error: %v", err)
	}
	after, _ := os.ReadFile(p)
	if !bytes.Equal(before, after) {
		t.Fatal("a failed unlock changed the image")
	}
}

// TestWriteEncrypted writes encrypted images with qimg and has qemu-io,
// qemu-img compare and qemu-img check judge them.
func TestWriteEncrypted(t *testing.T) {
	for _, format := range []string{qcow2.EncryptLUKS, qcow2.EncryptAES} {
		t.Run(format, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "w.qcow2")
			err := qcow2.Create(p, qcow2.CreateOptions{Size: 4 << 20, ClusterSize: 65536,
				Encrypt: &qcow2.Encryption{Format: format, Key: []byte(cryptPassword), LUKS: luks.Options{IterTime: 10}}})
			if err != nil {
				t.Fatal(err)
			}
			img, err := qcow2.Open(p, &qcow2.OpenOptions{Writable: true, Key: []byte(cryptPassword)})
			if err != nil {
				t.Fatal(err)
			}
			ab := bytes.Repeat([]byte{0xab}, 1<<20)
			writes := []struct {
				off int64
				b   []byte
			}{
				{0, ab},                                  // whole clusters
				{2<<20 + 100, []byte("unaligned write")}, // partial, new cluster
				{2<<20 + 70000, bytes.Repeat([]byte{1}, 1000)},
				{512, bytes.Repeat([]byte{2}, 1024)}, // in place, sector aligned
				{3000, []byte("in place, unaligned")},
			}
			want := make([]byte, 4<<20)
			for _, w := range writes {
				if _, err := img.WriteAt(w.b, w.off); err != nil {
					t.Fatal(err)
				}
				copy(want[w.off:], w.b)
			}
			if err := img.WriteCompressed(ab[:65536], 3<<20); !errors.Is(err, image.ErrUnsupported) {
				t.Fatalf("compressed write: %v", err)
			}
			if got := readAll(t, img); !bytes.Equal(got, want) {
				t.Fatal("qimg reads back other bytes")
			}
			if err := img.Close(); err != nil {
				t.Fatal(err)
			}
			if got := qemuRaw(t, p); !bytes.Equal(got, want) {
				t.Fatal("qemu-img decrypts other bytes than qimg wrote")
			}
			qemutest.Run(t, "qemu-io", append(cryptSecret, "--image-opts", qemuOpts(p), "-c", "read -P 0xab 4k 1020k")...)
			qemutest.Run(t, "qemu-img", append(append([]string{"check"}, cryptSecret...), "--image-opts", qemuOpts(p))...)
			info := qemutest.Img(t, "info", p)
			if !strings.Contains(info, "format: "+format) {
				t.Fatalf("qemu-img info:\n%s", info)
			}
		})
	}
}

// newLUKS makes a 1 MiB LUKS image with qimg, quick to unlock.
func newLUKS(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "l.qcow2")
	err := qcow2.Create(p, qcow2.CreateOptions{Size: 1 << 20,
		Encrypt: &qcow2.Encryption{Format: qcow2.EncryptLUKS, Key: []byte(cryptPassword), LUKS: luks.Options{IterTime: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// cryptoExtAt returns the file offset of the crypto header extension's
// data (offset, length) in a v3 image made by qimg.
func cryptoExtAt(t *testing.T, b []byte) int {
	t.Helper()
	off := int(binary.BigEndian.Uint32(b[100:]))
	for off+8 <= len(b) {
		typ, n := binary.BigEndian.Uint32(b[off:]), int(binary.BigEndian.Uint32(b[off+4:]))
		if typ == 0x0537be77 {
			return off + 8
		}
		if typ == 0 {
			break
		}
		off += 8 + (n+7)&^7
	}
	t.Fatal("no crypto header extension")
	return 0
}

// TestHostileCryptoHeader: a hostile crypto header extension or LUKS
// header fails Open with a classified error, quickly, key or no key.
func TestHostileCryptoHeader(t *testing.T) {
	p := newLUKS(t)
	good, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	ext := cryptoExtAt(t, good)
	region := int(binary.BigEndian.Uint64(good[ext:]))
	be := binary.BigEndian
	for _, c := range []struct {
		name  string
		patch func(b []byte)
		class error
	}{
		{"unaligned offset", func(b []byte) { be.PutUint64(b[ext:], uint64(region+512)) }, image.ErrCorrupt},
		{"offset past the end", func(b []byte) { be.PutUint64(b[ext:], 1<<50) }, image.ErrCorrupt},
		{"huge length", func(b []byte) { be.PutUint64(b[ext+8:], 1<<62) }, image.ErrCorrupt},
		{"short length", func(b []byte) { be.PutUint64(b[ext+8:], 100) }, image.ErrCorrupt},
		{"region shorter than the key material", func(b []byte) { be.PutUint64(b[ext+8:], 8192) }, image.ErrCorrupt},
		{"not LUKS", func(b []byte) { b[region] = 'X' }, image.ErrCorrupt},
		{"slot iterations", func(b []byte) { be.PutUint32(b[region+208+4:], 0xffffffff) }, image.ErrLimit},
		{"stripes", func(b []byte) { be.PutUint32(b[region+208+44:], 0xffffffff) }, image.ErrCorrupt},
		{"key bytes", func(b []byte) { be.PutUint32(b[region+108:], 0xffffffff) }, image.ErrUnsupported},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := bytes.Clone(good)
			c.patch(b)
			hp := filepath.Join(t.TempDir(), "h.qcow2")
			if err := os.WriteFile(hp, b, 0o644); err != nil {
				t.Fatal(err)
			}
			img, err := qcow2.Open(hp, &qcow2.OpenOptions{Key: []byte(cryptPassword)})
			if err == nil {
				img.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, c.class) || !strings.Contains(err.Error(), hp) {
				t.Fatalf("%v, want %v naming the file", err, c.class)
			}
		})
	}
}

// TestMetadataOnlyNotUnlocked: an image opened for its metadata is not
// unlocked even with a key (qemu-img info checks no key), so its guest
// data can never be read as if it were plain.
func TestMetadataOnlyNotUnlocked(t *testing.T) {
	p := newLUKS(t)
	img, err := qcow2.Open(p, &qcow2.OpenOptions{Key: []byte("not even the right one"), MetadataOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if _, err := img.ReadAt(make([]byte, 512), 0); !errors.Is(err, image.ErrEncrypted) {
		t.Fatalf("ReadAt: %v, want image.ErrEncrypted", err)
	}
	d, err := img.Describe()
	if err != nil || !d.Encrypted {
		t.Fatalf("Describe: %+v %v", d, err)
	}
}
