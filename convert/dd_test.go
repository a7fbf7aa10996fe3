package convert

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/qimg/qimg/format/raw"
)

// TestDDPadsToSectors copies 15 bytes: the output is one sector, the
// bytes then zeros, as qemu-img dd writes it.
func TestDDPadsToSectors(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	data := bytes.Repeat([]byte("0123456789"), 100)
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := raw.Open(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out := filepath.Join(dir, "out")
	r, err := DD(context.Background(), src, out, DDOptions{BlockSize: 3, Count: 7, Skip: 2})
	if err != nil || r.Start != 6 || r.End != 21 {
		t.Fatalf("DD = %+v, %v", r, err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte(nil), data[6:21]...), make([]byte, 512-15)...)
	if !bytes.Equal(got, want) {
		t.Errorf("output %q..., want %q...", got[:20], want[:20])
	}
	if _, err := DD(context.Background(), src, out, DDOptions{Format: "vmdk"}); err == nil {
		t.Error("DD wrote a vmdk, which qemu-img dd lays out differently")
	}
}
