package build

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/qimg/qimg/guestfs/iso9660"
)

// isoBytes is an ISO 9660 image holding files (path: content), written
// by qimg's writer.
func isoBytes(t testing.TB, volume string, rockRidge bool, files map[string]string) []byte {
	t.Helper()
	b := iso9660.NewBuilder()
	for p, data := range files {
		if err := b.AddFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := iso9660.Write(&buf, b, iso9660.Options{VolumeID: volume, RockRidge: rockRidge, Time: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// makeISO writes an ISO holding files and opens it again.
func makeISO(t *testing.T, volume string, rockRidge bool, files map[string]string) *iso9660.FS {
	t.Helper()
	data := isoBytes(t, volume, rockRidge, files)
	fsys, err := iso9660.Open(bytes.NewReader(data), int64(len(data)), "test.iso")
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

// writeISOFile writes an ISO holding files to dir/name.
func writeISOFile(t *testing.T, dir, name string, files map[string]string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, isoBytes(t, "V", true, files), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFindLayout(t *testing.T) {
	for _, c := range []struct {
		files                 map[string]string
		volume                string
		rockRidge             bool
		name, kernel, answers string
		args                  string
	}{
		{map[string]string{"install.amd/vmlinuz": "k", "install.amd/initrd.gz": "i", "install.amd/gtk/vmlinuz": "k"}, "Debian 12.8.0 amd64 n", true,
			"debian-installer", "install.amd/vmlinuz", "preseed.cfg", "auto=true priority=critical"},
		{map[string]string{"casper/vmlinuz": "k", "casper/initrd": "i"}, "Ubuntu-Server 24.04 LTS amd64", true,
			"subiquity", "casper/vmlinuz", "", "autoinstall"},
		{map[string]string{"images/pxeboot/vmlinuz": "k", "images/pxeboot/initrd.img": "i", "images/install.img": "s"}, "Rocky-9-4-x86_64-dvd", true,
			"anaconda", "images/pxeboot/vmlinuz", "ks.cfg", `inst.stage2=hd:LABEL=Rocky-9-4-x86_64-dvd inst.ks=file:/ks.cfg`},
		// A label with spaces is escaped for dracut; names without
		// Rock Ridge are upper case and still found.
		{map[string]string{"images/pxeboot/vmlinuz": "k", "images/pxeboot/initrd.img": "i"}, "CentOS 7 x86_64", false,
			"anaconda", "IMAGES/PXEBOOT/VMLINUZ", "ks.cfg", `inst.stage2=hd:LABEL=CentOS\x207\x20x86_64 inst.ks=file:/ks.cfg`},
	} {
		l, err := FindLayout(makeISO(t, c.volume, c.rockRidge, c.files), "test.iso", c.volume)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if l.Name != c.name || l.Kernel != c.kernel || l.Answers != c.answers || l.Args != c.args {
			t.Errorf("%s: got %+v", c.name, l)
		}
	}
}

func TestFindLayoutUnknown(t *testing.T) {
	iso := makeISO(t, "X", true, map[string]string{"boot/vmlinuz": "k", "install.amd": "a file, not a directory"})
	if _, err := FindLayout(iso, "test.iso", "X"); !errors.Is(err, ErrNoLayout) {
		t.Fatalf("error %v, want ErrNoLayout", err)
	}
	l, err := CustomLayout(iso, "test.iso", "/BOOT/vmlinuz", "boot/vmlinuz", "answers.txt")
	if err != nil || l.Kernel != "boot/vmlinuz" || l.Answers != "answers.txt" || l.Args != "" {
		t.Fatalf("CustomLayout: %+v, %v", l, err)
	}
	for _, p := range []string{"boot/missing", "../etc/passwd", "boot", ""} {
		if _, err := CustomLayout(iso, "test.iso", p, "boot/vmlinuz", "a"); err == nil {
			t.Errorf("CustomLayout accepted kernel %q", p)
		}
	}
}
