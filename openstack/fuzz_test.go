package openstack

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzPreflight: any file content gets a plan or an error, never a panic
// or a hang; a refusal never reads outside the file (RefuseBacking).
func FuzzPreflight(f *testing.F) {
	qcow2Head := []byte{'Q', 'F', 'I', 0xfb, 0, 0, 0, 3}
	f.Add(qcow2Head)
	f.Add([]byte("# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"/etc/passwd\" 0\n"))
	f.Add([]byte("conectix"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "img")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p, err := Preflight(ctx, path, "", "")
		if err == nil && (p.DiskFormat == "" || p.Size != int64(len(data))) {
			t.Errorf("plan %+v for %d bytes", p, len(data))
		}
	})
}
