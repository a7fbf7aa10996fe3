package qcow2_test

import (
	"path/filepath"
	"testing"

	"github.com/qimg/qimg/format/qcow2"
)

// TestHostFile: guest bytes are verbatim in the image file, or in the
// external data file, and never in an encrypted image's.
func TestHostFile(t *testing.T) {
	dir := t.TempDir()
	plain, withData := filepath.Join(dir, "p.qcow2"), filepath.Join(dir, "d.qcow2")
	data := filepath.Join(dir, "d.data")
	for p, o := range map[string]qcow2.CreateOptions{plain: {Size: 1 << 20}, withData: {Size: 1 << 20, DataFile: data}} {
		if err := qcow2.Create(p, o); err != nil {
			t.Fatal(err)
		}
	}
	for p, want := range map[string]string{plain: plain, withData: data, newLUKS(t): ""} {
		img, err := qcow2.Open(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if f := img.HostFile(); f != nil {
			got = f.Name()
		}
		img.Close()
		if got != want {
			t.Errorf("%s: host file %q, want %q", p, got, want)
		}
	}
}
