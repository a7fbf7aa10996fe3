package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/internal/qemutest"
)

const testPassword = "abc123"

// keyed is the --object and --image-opts arguments that open file (in
// dir) with the test password; id may name another secret.
func keyed(file, id string) []string {
	return []string{"--object", "secret,id=sec0,data=" + testPassword, "--image-opts",
		"driver=qcow2,file.filename=" + file + ",encrypt.key-secret=" + id}
}

// withKey puts the key arguments after the command name.
func withKey(cmd string, file string, rest ...string) []string {
	return append(append([]string{cmd}, keyed(file, "sec0")...), rest...)
}

// TestEncryptedWithKeyMatchesQemu: with the key, qimg reads what qemu-img
// and qemu-io encrypted as qemu-img does (info, check, map, compare,
// convert, dd), and a wrong or unknown key fails as in qemu-img.
func TestEncryptedWithKeyMatchesQemu(t *testing.T) {
	dir := t.TempDir()
	secret := "secret,id=sec0,data=" + testPassword
	qemutest.CreateEncrypted(t, "create", "-q", "-f", "qcow2", "--object", secret, "-o",
		"encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10", filepath.Join(dir, "luks.qcow2"), "4M")
	img(t, dir, "create", "-q", "-f", "qcow2", "--object", secret, "-o", "encrypt.format=aes,encrypt.key-secret=sec0", "aes.qcow2", "4M")
	for _, f := range []string{"luks.qcow2", "aes.qcow2"} {
		k := keyed(filepath.Join(dir, f), "sec0")
		qemutest.Run(t, "qemu-io", append(k[:3], "-c", "write -P 0xab 0 1M", "-c", "write -P 0x11 3M 4k",
			"-c", "write -P 0x22 70000 1000", k[3])...)
	}
	// The oracle of compare: the plain data.
	img(t, dir, "convert", "--object", secret, "--image-opts", "driver=qcow2,file.filename=luks.qcow2,encrypt.key-secret=sec0", "-O", "raw", "plain.raw")
	for _, f := range []string{"luks.qcow2", "aes.qcow2"} {
		for _, args := range [][]string{
			withKey("info", f),
			withKey("info", f, "--output=json"),
			withKey("check", f),
			withKey("check", f, "--output=json"),
			withKey("map", f, "--output=json"),
			withKey("map", f),
			withKey("compare", f, "driver=raw,file.filename=plain.raw"),
			withKey("convert", f, "-O", "raw", "out.raw"),
			withKey("dd", "", "bs=64k", "count=20", "of=dd.raw", "if=driver=qcow2,file.filename="+f+",encrypt.key-secret=sec0"),
			append([]string{"check"}, keyed(f, "nosuch")...),
			append([]string{"info"}, keyed(f, "nosuch")...),  // info needs no key
			{"convert", "-n", "-O", "qcow2", "plain.raw", f}, // no key for the target
			{"check", "--object", "secret,id=sec0,data=wrong", "--image-opts", "driver=qcow2,file.filename=" + f + ",encrypt.key-secret=sec0"},
			{"convert", "--object", "secret,id=sec0,data=wrong", "--image-opts", "driver=qcow2,file.filename=" + f + ",encrypt.key-secret=sec0", "-O", "raw", "bad.raw"},
			{"convert", "--object", secret, "--image-opts", "-f", "qcow2", "driver=qcow2,file.filename=" + f, "-O", "raw", "bad.raw"},
		} {
			if args[0] == "dd" {
				args = append(args[:3], args[5:]...) // dd takes the name as if=
			}
			r := same(t, dir, dir, args...)
			if strings.Contains(r.stderr, "wrong") || strings.Contains(r.stdout, testPassword) {
				t.Errorf("%v: the key reaches the output", args)
			}
		}
		// Legacy AES cannot tell a wrong key: both tools decrypt garbage.
		if _, err := os.Stat(filepath.Join(dir, "bad.raw")); err == nil && f == "luks.qcow2" {
			t.Errorf("a failed unlock left its output")
		}
		os.Remove(filepath.Join(dir, "bad.raw"))
	}
}

// TestEncryptedWrittenByQimg: images qimg encrypts (create, then convert
// into them; convert -O qcow2 -o encrypt...) are what qemu-io and
// qemu-img decrypt, check clean, and qemu-img compare equal.
func TestEncryptedWrittenByQimg(t *testing.T) {
	dir := t.TempDir()
	secret := "secret,id=sec0,data=" + testPassword
	data := bytes.Repeat([]byte{0xab}, 1<<20)
	data = append(data, make([]byte, 1<<20)...)
	copy(data[1<<20+12345:], "an unaligned run of text")
	if err := os.WriteFile(filepath.Join(dir, "src.raw"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{
		"encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10",
		"encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10,encrypt.cipher-alg=aes-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv",
		"encrypt.format=aes,encrypt.key-secret=sec0",
		"encryption=on,encrypt.key-secret=sec0,cluster_size=4096",
	} {
		out := filepath.Join(dir, "out.qcow2")
		os.Remove(out)
		if r := qimgIn(t, dir, "convert", "--object", secret, "-O", "qcow2", "-o", o, "src.raw", "out.qcow2"); r.code != 0 {
			t.Fatalf("convert -o %s: %s", o, r.stderr)
		}
		opts := "driver=qcow2,file.filename=" + out + ",encrypt.key-secret=sec0"
		qemutest.Run(t, "qemu-io", "--object", secret, "--image-opts", opts, "-c", "read -P 0xab 0 1M", "-c", "read -P 0 1M 12345")
		qemutest.Run(t, "qemu-img", "check", "--object", secret, "--image-opts", opts)
		qemutest.Run(t, "qemu-img", "compare", "--object", secret, "--image-opts", opts, "driver=raw,file.filename="+filepath.Join(dir, "src.raw"))
		if info := qemutest.Img(t, "info", out); !strings.Contains(info, "encrypted: yes") {
			t.Fatalf("%s: not encrypted:\n%s", o, info)
		}
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte("unaligned run of text")) || bytes.Contains(raw, bytes.Repeat([]byte{0xab}, 4096)) {
			t.Fatalf("%s: plain data in the file", o)
		}
	}
	// qimg create, then a qemu-io write, then qimg reads it back.
	if r := qimgIn(t, dir, "create", "-q", "-f", "qcow2", "--object", secret, "-o", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10", "new.qcow2", "1M"); r.code != 0 {
		t.Fatalf("create: %s", r.stderr)
	}
	qemutest.Run(t, "qemu-io", "--object", secret, "--image-opts", "driver=qcow2,file.filename="+filepath.Join(dir, "new.qcow2")+",encrypt.key-secret=sec0", "-c", "write -P 0x5a 512 1536")
	same(t, dir, dir, withKey("compare", "new.qcow2", "driver=qcow2,file.filename=new.qcow2,encrypt.key-secret=sec0")...)
	same(t, dir, dir, withKey("compare", "new.qcow2", "new.qcow2")...)
	// convert -n into an existing encrypted image, its key given with
	// --target-image-opts; then the refusals around it.
	qemutest.CreateEncrypted(t, "create", "-q", "-f", "qcow2", "--object", secret, "-o",
		"encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10", filepath.Join(dir, "tgt.qcow2"), "2M")
	tgt := "driver=qcow2,file.filename=tgt.qcow2,encrypt.key-secret=sec0"
	same(t, dir, dir, "convert", "--object", secret, "-n", "--target-image-opts", "src.raw", tgt)
	qemutest.Run(t, "qemu-img", "compare", "--object", secret, "--image-opts", "driver=raw,file.filename="+filepath.Join(dir, "src.raw"),
		"driver=qcow2,file.filename="+filepath.Join(dir, "tgt.qcow2")+",encrypt.key-secret=sec0")
	qemutest.Run(t, "qemu-img", "check", "--object", secret, "--image-opts", "driver=qcow2,file.filename="+filepath.Join(dir, "tgt.qcow2")+",encrypt.key-secret=sec0")
	for _, args := range [][]string{
		{"convert", "-n", "--target-image-opts", "src.raw", "driver=qcow2,file.filename=tgt.qcow2"},
		{"convert", "--object", "secret,id=sec0,data=wrong", "-n", "--target-image-opts", "src.raw", tgt},
		{"convert", "--object", secret, "--target-image-opts", "src.raw", tgt},
		{"convert", "--object", secret, "-n", "-O", "qcow2", "--target-image-opts", "src.raw", tgt},
		{"create", "-q", "-f", "qcow2", "-o", "encrypt.format=luks", "nokey.qcow2", "1M"},
		{"create", "-q", "-f", "qcow2", "-o", "encrypt.format=foo,encrypt.key-secret=sec0", "--object", secret, "nokey.qcow2", "1M"},
		{"convert", "-c", "--object", secret, "-O", "qcow2", "-o", "encrypt.format=luks,encrypt.key-secret=sec0", "src.raw", "nokey.qcow2"},
		{"measure", "-O", "qcow2", "--size", "1G", "-o", "encrypt.format=luks"},
		{"measure", "-O", "qcow2", "--size", "1G", "--object", secret, "-o", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.cipher-alg=aes-128"},
		{"measure", "-O", "qcow2", "--object", secret, "-o", "encrypt.format=luks,encrypt.key-secret=sec0,cluster_size=4096",
			"--image-opts", "driver=qcow2,file.filename=new.qcow2,encrypt.key-secret=sec0"},
	} {
		same(t, dir, dir, args...)
	}
}

// TestEncryptedBackingKeys: an encrypted overlay of an encrypted base,
// each with its own key; backing.encrypt.key-secret gives the base's to
// every command that opens the backing file, and info refuses it as
// qemu-img does (it opens no backing file, so the option is unused).
func TestEncryptedBackingKeys(t *testing.T) {
	dir := t.TempDir()
	top, base := "secret,id=s0,data=topkey", "secret,id=s1,data=basekey"
	luks := "encrypt.format=luks,encrypt.iter-time=10,encrypt.key-secret="
	qemutest.CreateEncrypted(t, "create", "-q", "-f", "qcow2", "--object", base, "-o", luks+"s1", filepath.Join(dir, "base.qcow2"), "4M")
	qemutest.Run(t, "qemu-io", "--object", base, "--image-opts", "driver=qcow2,file.filename="+filepath.Join(dir, "base.qcow2")+",encrypt.key-secret=s1",
		"-c", "write -P 0x11 0 2M")
	qemutest.CreateEncrypted(t, "create", "-q", "-f", "qcow2", "--object", top, "--object", base, "-o", luks+"s0",
		"-b", "base.qcow2", "-F", "qcow2", "-u", filepath.Join(dir, "top.qcow2"), "4M")
	both := "driver=qcow2,file.filename=top.qcow2,encrypt.key-secret=s0,backing.encrypt.key-secret=s1"
	qemutest.Run(t, "qemu-io", "--object", top, "--object", base, "--image-opts",
		strings.Replace(both, "top.qcow2", filepath.Join(dir, "top.qcow2"), 1), "-c", "write -P 0x22 1M 512k")
	keys := []string{"--object", top, "--object", base}
	with := func(args ...string) []string { return append(append([]string{args[0]}, keys...), args[1:]...) }
	for _, args := range [][]string{
		with("convert", "--image-opts", both, "-O", "raw", "out.raw"),
		with("compare", "--image-opts", both, "driver=raw,file.filename=out.raw"),
		with("map", "--image-opts", both, "--output=json"),
		with("check", "--image-opts", both),
		with("measure", "-O", "qcow2", "--image-opts", both),
		with("dd", "--image-opts", "if="+both, "of=dd.raw", "bs=64k", "count=40"),
		with("info", "--image-opts", both),
		with("info", "--backing-chain", "--image-opts", both),
		with("map", "--image-opts", "driver=qcow2,file.filename=top.qcow2,encrypt.key-secret=s0", "--output=json"),
		with("map", "--image-opts", "driver=qcow2,file.filename=top.qcow2,encrypt.key-secret=s0,backing.encrypt.key-secret=nosuch", "--output=json"),
		with("map", "--image-opts", "driver=qcow2,file.filename=top.qcow2,encrypt.key-secret=s0,backing.backing.encrypt.key-secret=s1", "--output=json"),
		with("check", "--image-opts", "driver=qcow2,file.filename=top.qcow2,encrypt.key-secret=s0"),
		{"map", "--object", top, "--object", "secret,id=s1,data=wrong", "--image-opts", both, "--output=json"},
	} {
		r := same(t, dir, dir, args...)
		if strings.Contains(r.stderr, "basekey") || strings.Contains(r.stderr, "wrong") {
			t.Errorf("%v: a key reaches the output", args)
		}
	}
	// The data: the base's, the overlay's write over it.
	out, err := os.ReadFile(filepath.Join(dir, "out.raw"))
	if err != nil {
		t.Fatal(err)
	}
	if out[0] != 0x11 || out[1<<20] != 0x22 || out[3<<20/2] != 0x11 || out[3<<20] != 0 {
		t.Fatalf("converted data: % x % x % x % x", out[0], out[1<<20], out[3<<20/2], out[3<<20])
	}
}

// TestUnusedBackingKey: a backing key option for a level the chain does
// not have fails as in qemu-img (message and exit code), whatever the
// command, instead of being ignored.
func TestUnusedBackingKey(t *testing.T) {
	dir := t.TempDir()
	key := "secret,id=s0,data=k0"
	qemutest.Img(t, "create", "-q", "-f", "qcow2", filepath.Join(dir, "base.qcow2"), "1M")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", filepath.Join(dir, "top.qcow2"), "1M")
	qemutest.Img(t, "create", "-q", "-f", "vpc", filepath.Join(dir, "v.vhd"), "1M")
	for _, opts := range []string{
		"driver=qcow2,file.filename=base.qcow2,backing.encrypt.key-secret=s0",
		"driver=qcow2,file.filename=base.qcow2,backing.backing.encrypt.key-secret=s0",
		"driver=qcow2,file.filename=top.qcow2,backing.backing.encrypt.key-secret=s0",
		"file.filename=top.qcow2,backing.encrypt.key-secret=s0,backing.backing.backing.encrypt.key-secret=s0",
		"driver=vpc,file.filename=v.vhd,backing.encrypt.key-secret=s0",
		"driver=raw,file.filename=base.qcow2,backing.encrypt.key-secret=s0",
	} {
		for _, args := range [][]string{
			{"map", "--output=json"},
			{"check"},
			{"convert", "-O", "raw", "--image-opts", opts, "out.raw"},
			{"compare", "--image-opts", opts, "driver=qcow2,file.filename=base.qcow2"},
			{"dd", "--image-opts", "if=" + opts, "of=dd.raw"},
		} {
			full := append([]string{args[0], "--object", key}, args[1:]...)
			if len(args) < 3 {
				full = append(full, "--image-opts", opts)
			}
			same(t, dir, dir, full...)
		}
	}
}

// TestEncryptedCiphers: qcow2 images with LUKS suites other than AES,
// made by qemu-img, read as qemu-img reads them; made by qimg, what
// qemu-io decrypts and qemu-img checks clean and compares equal; and what
// qemu-img refuses to create, refused as it refuses it.
func TestEncryptedCiphers(t *testing.T) {
	dir := t.TempDir()
	secret := "secret,id=sec0,data=" + testPassword
	const luks = "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10,"
	suites := []string{
		"encrypt.cipher-alg=serpent-256,encrypt.ivgen-alg=essiv,encrypt.hash-alg=ripemd160",
		"encrypt.cipher-alg=twofish-192,encrypt.cipher-mode=xts,encrypt.ivgen-alg=plain,encrypt.hash-alg=sha1",
		"encrypt.cipher-alg=cast5-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv,encrypt.ivgen-hash-alg=md5",
	}
	for _, s := range suites {
		qemutest.CreateEncrypted(t, "create", "-q", "-f", "qcow2", "--object", secret, "-o", luks+s, filepath.Join(dir, "q.qcow2"), "4M")
		k := keyed(filepath.Join(dir, "q.qcow2"), "sec0")
		qemutest.Run(t, "qemu-io", append(k[:3], "-c", "write -P 0x5a 0 1M", "-c", "write -P 0x11 3M 4k", k[3])...)
		img(t, dir, "convert", "--object", secret, "--image-opts", "driver=qcow2,file.filename=q.qcow2,encrypt.key-secret=sec0", "-O", "raw", "plain.raw")
		for _, args := range [][]string{
			withKey("info", "q.qcow2"),
			withKey("info", "q.qcow2", "--output=json"),
			withKey("check", "q.qcow2"),
			withKey("compare", "q.qcow2", "driver=raw,file.filename=plain.raw"),
			withKey("convert", "q.qcow2", "-O", "raw", "out.raw"),
		} {
			same(t, dir, dir, args...)
		}
		// qimg writes one: what qemu reads back.
		os.Remove(filepath.Join(dir, "w.qcow2"))
		if r := qimgIn(t, dir, "convert", "--object", secret, "-O", "qcow2", "-o", luks+s, "plain.raw", "w.qcow2"); r.code != 0 {
			t.Fatalf("convert -o %s: %s", s, r.stderr)
		}
		opts := "driver=qcow2,file.filename=" + filepath.Join(dir, "w.qcow2") + ",encrypt.key-secret=sec0"
		qemutest.Run(t, "qemu-io", "--object", secret, "--image-opts", opts, "-c", "read -P 0x5a 0 1M", "-c", "read -P 0x11 3M 4k")
		qemutest.Run(t, "qemu-img", "check", "--object", secret, "--image-opts", opts)
		qemutest.Run(t, "qemu-img", "compare", "--object", secret, "--image-opts", opts, "driver=raw,file.filename="+filepath.Join(dir, "plain.raw"))
		if info := qemutest.Img(t, "info", filepath.Join(dir, "w.qcow2")); !strings.Contains(info, "encrypted: yes") {
			t.Fatalf("%s: not encrypted:\n%s", s, info)
		}
	}
	for _, s := range []string{
		"encrypt.cipher-alg=cast5-128",
		"encrypt.cipher-alg=cast5-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv",
		"encrypt.cipher-alg=serpent-128,encrypt.ivgen-alg=essiv,encrypt.ivgen-hash-alg=sha1",
		"encrypt.cipher-alg=3des",
		"encrypt.cipher-alg=sm4",
		"encrypt.hash-alg=whirlpool",
	} {
		same(t, dir, dir, "create", "-q", "-f", "qcow2", "--object", secret, "-o", luks+s, "bad.qcow2", "1M")
	}
}
