package build

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/guestfs/iso9660"
)

// The answer file follows the initrd as a cpio archive that starts on a
// four-byte boundary (where the kernel looks for the next archive), here
// after an initrd of three bytes; cpio reads it back.
func TestPrepareAppendsAnswersToInitrd(t *testing.T) {
	dir := t.TempDir()
	iso := writeISOFile(t, dir, "d-i.iso", map[string]string{"install.amd/vmlinuz": "KERNEL", "install.amd/initrd.gz": "abc"})
	answers := "d-i debian-installer/exit/poweroff boolean true\n"
	m, err := prepare(context.Background(), Options{ISO: iso, Answers: "preseed.cfg"}, []byte(answers), dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.seed != "" || m.args("quiet") != "auto=true priority=critical quiet console=ttyS0,115200n8" {
		t.Errorf("media %+v, args %q", m, m.args("quiet"))
	}
	if k, _ := os.ReadFile(m.kernel); string(k) != "KERNEL" {
		t.Errorf("kernel %q", k)
	}
	initrd, err := os.ReadFile(m.initrd)
	if err != nil {
		t.Fatal(err)
	}
	if string(initrd[:4]) != "abc\x00" || string(initrd[4:10]) != newcMagic {
		t.Fatalf("initrd starts %q", initrd[:12])
	}
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	cmd := exec.Command("cpio", "-i", "--quiet", "--no-absolute-filenames")
	cmd.Dir, cmd.Stdin = out, bytes.NewReader(initrd[4:])
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v %s", err, b)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "preseed.cfg")); string(got) != answers {
		t.Errorf("preseed.cfg in the initrd holds %q", got)
	}
}

// Subiquity's answers go on a NoCloud seed as user-data; the initrd is
// the ISO's own.
func TestPrepareSubiquitySeed(t *testing.T) {
	dir := t.TempDir()
	iso := writeISOFile(t, dir, "ubuntu.iso", map[string]string{"casper/vmlinuz": "K", "casper/initrd": "I"})
	userData := "#cloud-config\nautoinstall:\n  version: 1\n  shutdown: poweroff\n"
	m, err := prepare(context.Background(), Options{ISO: iso, Answers: "user-data"}, []byte(userData), dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.layout.Name != "subiquity" || m.seed == "" || !strings.HasPrefix(m.args(""), "autoinstall ") {
		t.Fatalf("media %+v", m)
	}
	if _, err := os.Stat(m.initrd); err == nil {
		t.Errorf("an initrd was written for subiquity")
	}
	f, err := os.Open(m.seed)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	seedFS, err := iso9660.Open(f, st.Size(), m.seed)
	if err != nil {
		t.Fatal(err)
	}
	ud, err := seedFS.Open("user-data")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(ud)
	if seedFS.VolumeID() != "cidata" || string(got) != userData {
		t.Errorf("seed %q holds user-data %q", seedFS.VolumeID(), got)
	}
}

// d-i's markers stop an install at an error dialog, as its newt frontend
// draws one on the serial console (line-drawing characters around it),
// and not at a progress screen.
func TestDebianInstallerFailures(t *testing.T) {
	m := media{layout: Layout{Name: "debian-installer"}}
	matches := func(line string) bool {
		for _, f := range m.failures(nil) {
			if f.Pattern.MatchString(line) {
				return true
			}
		}
		return false
	}
	for _, line := range []string{
		"\x1b(0lqqqqqqqqqqqqqqqqqu\x1b(B [!!] Download installer components \x1b(0tqqqqqqqqqqqqqqqqqqk",
		"[!!] Partition disks",
		"An installation step failed. You can try to run the failing item again",
	} {
		if !matches(line) {
			t.Errorf("%q: not a failure", line)
		}
	}
	for _, line := range []string{
		"\x1b(0lqqqqqqqqqqqqqqqqqqqqu\x1b(B Loading additional components \x1b(0tqqqqqqqqqqqqqqqqqqqqk",
		"[.] Choose language",
		"Retrieving apt-mirror-setup",
	} {
		if matches(line) {
			t.Errorf("%q: a failure", line)
		}
	}
}
