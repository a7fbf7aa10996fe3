package zstdenc

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/qimg/qimg/internal/qemutest"
)

// TestLibzstdDecodes has the zstd command (libzstd, as QEMU links it)
// decode the frames of every input, concatenated.
func TestLibzstdDecodes(t *testing.T) {
	qemutest.Need(t, "zstd")
	var e Encoder
	var frames, want []byte
	var err error
	for _, in := range append(syntheticInputs(), loadCorpus(t)...) {
		if frames, err = e.Encode(frames, in); err != nil {
			t.Fatal(err)
		}
		want = append(want, in...)
	}
	name := filepath.Join(t.TempDir(), "frames.zst")
	if err := os.WriteFile(name, frames, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command("zstd", "-d", "-c", name).Output()
	if err != nil {
		t.Fatalf("zstd -d: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("zstd -d gave %d bytes that differ from the %d encoded", len(got), len(want))
	}
}
