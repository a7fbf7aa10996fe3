package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/internal/qemutest"
)

// readCommands are the commands compared on images qemu-img refuses to
// open whole; info is listed separately, since it reads metadata only.
func readCommands(f string) [][]string {
	return [][]string{
		{"map", f},
		{"map", "--output=json", f},
		{"compare", f, "r.raw"},
		{"compare", "r.raw", f},
		{"convert", "-O", "raw", f, "out.raw"},
		{"convert", "-O", "qcow2", f, "out.qcow2"},
		{"measure", "-O", "qcow2", f},
	}
}

// infoCommands describe an image without reading guest data.
func infoCommands(f string) [][]string {
	return [][]string{
		{"info", f},
		{"info", "--output=json", f},
		{"info", "--backing-chain", f},
		{"info", "--backing-chain", "--output=json", f},
	}
}

// checkCommands read one image but, in qemu-img, open its whole chain.
func checkCommands(f string) [][]string {
	return [][]string{
		{"check", f},
		{"check", "--output=json", f},
		{"check", "-r", "all", f},
		{"snapshot", "-l", f},
	}
}

// sameNoOutput is same for commands that must fail without leaving a
// conversion output behind.
func sameNoOutput(t *testing.T, dir string, args ...string) {
	t.Helper()
	same(t, dir, dir, args...)
	for _, out := range []string{"out.raw", "out.qcow2"} {
		if _, err := os.Stat(filepath.Join(dir, out)); err == nil {
			t.Errorf("%v left %s", args, out)
			os.Remove(filepath.Join(dir, out))
		}
	}
}

// TestMissingBackingAndDataFileMatchQemu: an overlay whose backing file
// is gone and an image whose external data file is gone. qemu-img info
// still describes both (it opens neither file); every other command
// refuses the image, naming it and then the missing file.
func TestMissingBackingAndDataFileMatchQemu(t *testing.T) {
	dir := t.TempDir()
	img(t, dir, "create", "-q", "-f", "raw", "r.raw", "1M")
	img(t, dir, "create", "-q", "-f", "qcow2", "base.qcow2", "1M")
	img(t, dir, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "overlay.qcow2")
	img(t, dir, "create", "-q", "-f", "qcow2", "-b", "overlay.qcow2", "-F", "qcow2", "top.qcow2")
	img(t, dir, "create", "-q", "-f", "qcow2", "-o", "data_file=d.raw", "data.qcow2", "1M")
	img(t, dir, "create", "-q", "-f", "qcow2", "-b", "data.qcow2", "-F", "qcow2", "topd.qcow2")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	img(t, dir, "create", "-q", "-f", "qcow2", "sub/base.qcow2", "1M")
	img(t, dir, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "sub/ov.qcow2")
	for _, f := range []string{"base.qcow2", "d.raw", "sub/base.qcow2"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"overlay.qcow2", "data.qcow2", "top.qcow2", "topd.qcow2", "sub/ov.qcow2", filepath.Join(dir, "sub/ov.qcow2")} {
		for _, args := range append(infoCommands(f), readCommands(f)...) {
			sameNoOutput(t, dir, args...)
		}
	}
	// check and snapshot open the whole chain, as qemu-img does: a file
	// missing deeper down (top.qcow2, topd.qcow2) is reported too.
	for _, f := range []string{"overlay.qcow2", "data.qcow2", "sub/ov.qcow2", "top.qcow2", "topd.qcow2"} {
		for _, args := range checkCommands(f) {
			same(t, dir, dir, args...)
		}
	}
}

// TestEncryptedMatchesQemu: without a key qemu-img only describes an
// encrypted image; every command that would read or check it refuses,
// naming the missing key parameter, even when the image holds no data
// (which qimg would otherwise convert to zeros without reading a byte).
func TestEncryptedMatchesQemu(t *testing.T) {
	dir := t.TempDir()
	secret := []string{"--object", "secret,id=sec0,data=abc123"}
	img(t, dir, "create", "-q", "-f", "raw", "r.raw", "1M")
	// qemu-img 7.2 still creates legacy AES images.
	img(t, dir, append([]string{"create", "-q", "-f", "qcow2", "-o", "encrypt.format=aes,encrypt.key-secret=sec0"}, append(secret, "aes.qcow2", "1M")...)...)
	img(t, dir, append([]string{"create", "-q", "-f", "qcow2", "-o", "encrypt.format=aes,encrypt.key-secret=sec0"}, append(secret, "aesdata.qcow2", "1M")...)...)
	qemutest.Run(t, "qemu-io", append(secret, "--image-opts", "-c", "write -P 7 0 64k",
		"driver=qcow2,file.filename="+filepath.Join(dir, "aesdata.qcow2")+",encrypt.key-secret=sec0")...)
	qemutest.CreateEncrypted(t, append([]string{"create", "-q", "-f", "qcow2", "-o", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10"},
		append(secret, filepath.Join(dir, "luks.qcow2"), "1M")...)...)
	// A plain image with data whose header claims AES: what an old tool
	// or a hostile file may hold.
	img(t, dir, "create", "-q", "-f", "qcow2", "patched.qcow2", "1M")
	qio(t, dir, "qcow2", "patched.qcow2", "write -P 3 0 64k")
	patchCryptMethod(t, filepath.Join(dir, "patched.qcow2"), 1)
	img(t, dir, "create", "-q", "-f", "qcow2", "-b", "aes.qcow2", "-F", "qcow2", "overaes.qcow2")
	// An encrypted overlay whose backing file is gone: qemu-img asks for
	// the key first.
	img(t, dir, append([]string{"create", "-q", "-f", "qcow2", "-u", "-b", "gone.qcow2", "-F", "qcow2", "-o", "encrypt.format=aes,encrypt.key-secret=sec0"}, append(secret, "aesgone.qcow2", "1M")...)...)
	for _, f := range []string{"aes.qcow2", "aesdata.qcow2", "luks.qcow2", "patched.qcow2", "overaes.qcow2", "aesgone.qcow2"} {
		for _, args := range append(checkCommands(f), readCommands(f)...) {
			sameNoOutput(t, dir, args...)
		}
	}
	// info shows the header without a key, LUKS's key slots included.
	for _, f := range []string{"aes.qcow2", "aesdata.qcow2", "luks.qcow2", "patched.qcow2", "overaes.qcow2"} {
		for _, args := range infoCommands(f) {
			same(t, dir, dir, args...)
		}
	}
}

// patchCryptMethod sets the crypt_method field of a qcow2 header.
func patchCryptMethod(t *testing.T, path string, m byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{0, 0, 0, m}, 32); err != nil {
		t.Fatal(err)
	}
}

// TestTruncatedVMDKMatchesQemu cuts VMDK images made by qemu-img in the
// middle of their grains. Metadata commands (info, map, measure) print
// what qemu-img prints; reads fail. For a streamOptimized image qemu-img
// fails them too, and compare's text and exit code (4) match; convert
// exits 1 like qemu-img but says why in qimg's words (qemu-img prints one
// "error while reading" line per failed parallel request). A truncated
// monolithicSparse image qemu-img reads as zeros past the end of the file;
// qimg refuses it instead of losing the data silently.
func TestTruncatedVMDKMatchesQemu(t *testing.T) {
	dir := t.TempDir()
	src := qemutest.RandomFile(t, dir, 4<<20)
	for _, c := range []struct{ file, sub string }{{"o.vmdk", "streamOptimized"}, {"s.vmdk", "monolithicSparse"}} {
		img(t, dir, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat="+c.sub, src, c.file)
		st, err := os.Stat(filepath.Join(dir, c.file))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(filepath.Join(dir, c.file), st.Size()/2); err != nil {
			t.Fatal(err)
		}
		for _, args := range append(infoCommands(c.file), []string{"map", c.file}, []string{"map", "--output=json", c.file},
			[]string{"measure", "-O", "qcow2", c.file}) {
			same(t, dir, dir, args...)
		}
	}
	for _, args := range [][]string{{"compare", "o.vmdk", "random.raw"}, {"compare", "-F", "vmdk", "random.raw", "o.vmdk"}} {
		same(t, dir, dir, args...)
	}
	if q, i := qemuIn(t, dir, "qemu-img", "convert", "-O", "raw", "o.vmdk", "q.raw"), qimgIn(t, dir, "convert", "-O", "raw", "o.vmdk", "i.raw"); q.code != 1 || i.code != 1 || !strings.Contains(i.stderr, "o.vmdk") {
		t.Errorf("convert of a truncated stream: qemu-img %+v, qimg %+v", q, i)
	}
	if r := qimgIn(t, dir, "compare", "s.vmdk", "random.raw"); r.code != 4 || !strings.HasPrefix(r.stderr, "qimg: Error while reading offset ") || !strings.Contains(r.stderr, " of s.vmdk: Invalid argument") {
		t.Errorf("compare of a truncated monolithicSparse image: %+v", r)
	}
	if r := qimgIn(t, dir, "convert", "-O", "raw", "s.vmdk", "i.raw"); r.code != 1 || !strings.Contains(r.stderr, "s.vmdk") || !strings.Contains(r.stderr, "past end of file") {
		t.Errorf("convert of a truncated monolithicSparse image: %+v", r)
	}
}
