package build

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// GNU cpio is the judge: it lists and extracts what writeNewc writes,
// names, modes and contents, for data of every length modulo four.
func TestNewcReadByCPIO(t *testing.T) {
	entries := []cpioEntry{
		{Name: "etc", Mode: fs.ModeDir | 0o755},
		{Name: "etc/a", Mode: 0o600, Data: []byte("1")},
		{Name: "preseed.cfg", Mode: 0o644, Data: []byte("d-i qimg/marker string M\n")},
		{Name: "empty", Mode: 0o644, Data: []byte{}},
		{Name: "abcd", Mode: 0o755, Data: []byte("abcd")},
		{Name: "x", Mode: 0o644, Data: bytes.Repeat([]byte{0, 1, 2}, 1000)},
	}
	var b bytes.Buffer
	if err := writeNewc(&b, entries); err != nil {
		t.Fatal(err)
	}
	if b.Len()%4 != 0 {
		t.Errorf("archive of %d bytes is not padded to four", b.Len())
	}
	list := exec.Command("cpio", "-t", "--quiet")
	list.Stdin = bytes.NewReader(b.Bytes())
	out, err := list.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t: %v %s", err, out)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	if got := strings.Fields(string(out)); strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("cpio -t lists %q, want %q", got, names)
	}
	dir := t.TempDir()
	extract := exec.Command("cpio", "-i", "--quiet", "--no-absolute-filenames")
	extract.Dir, extract.Stdin = dir, bytes.NewReader(b.Bytes())
	if out, err := extract.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v %s", err, out)
	}
	for _, e := range entries {
		st, err := os.Stat(filepath.Join(dir, e.Name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode()&(fs.ModeDir|fs.ModePerm) != e.Mode {
			t.Errorf("%s: mode %v, want %v", e.Name, st.Mode(), e.Mode)
		}
		if e.Mode.IsDir() {
			continue
		}
		if got, _ := os.ReadFile(filepath.Join(dir, e.Name)); !bytes.Equal(got, e.Data) {
			t.Errorf("%s: %d bytes differ from the %d written", e.Name, len(got), len(e.Data))
		}
	}
}

func TestNewcRefusesBadNames(t *testing.T) {
	for _, name := range []string{"", "/abs", "../up", "a/../b", "a/", ".", "TRAILER!!!", "a\x00b"} {
		if err := writeNewc(&bytes.Buffer{}, []cpioEntry{{Name: name, Mode: 0o644}}); err == nil {
			t.Errorf("writeNewc accepted %q", name)
		}
	}
	if err := writeNewc(&bytes.Buffer{}, []cpioEntry{{Name: "d", Mode: fs.ModeDir, Data: []byte("x")}}); err == nil {
		t.Error("writeNewc accepted a directory with data")
	}
}
