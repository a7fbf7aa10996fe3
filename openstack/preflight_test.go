package openstack

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/internal/qemutest"
)

// TestPreflightAccepts: images qemu-img writes in every format Glance
// names are accepted, with Glance's name for the format, their virtual
// size and min_disk.
func TestPreflightAccepts(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ qemu, opts, glance string }{
		{"qcow2", "", "qcow2"},
		{"raw", "", "raw"},
		{"vmdk", "subformat=monolithicSparse", "vmdk"},
		{"vmdk", "subformat=streamOptimized", "vmdk"},
		{"vpc", "", "vhd"},
		{"vhdx", "", "vhdx"},
		{"vdi", "", "vdi"},
	} {
		path := filepath.Join(dir, tc.glance+strings.ReplaceAll(tc.opts, "=", "-"))
		args := []string{"create", "-q", "-f", tc.qemu}
		if tc.opts != "" {
			args = append(args, "-o", tc.opts)
		}
		qemutest.Img(t, append(args, path, "1100M")...)
		p, err := Preflight(context.Background(), path, "", "")
		if err != nil {
			t.Errorf("%s %s: %v", tc.qemu, tc.opts, err)
			continue
		}
		if p.DiskFormat != tc.glance || p.MinDisk() != 2 || p.VirtualSize < 1100<<20 {
			t.Errorf("%s %s: disk_format %s min_disk %d virtual %d", tc.qemu, tc.opts, p.DiskFormat, p.MinDisk(), p.VirtualSize)
		}
	}
}

// TestPreflightZstdWarns: zstd compression is allowed with a warning.
func TestPreflightZstdWarns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "z.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", "-o", "compression_type=zstd", path, "1M")
	p, err := Preflight(context.Background(), path, "qcow2", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "zstd") {
		t.Errorf("warnings %q", p.Warnings)
	}
}

// TestPreflightRefusesCorrupt: a qcow2 that check finds corrupt, and one
// with an unknown incompatible feature bit, are refused.
func TestPreflightRefusesCorrupt(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "unknown.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", unknown, "1M")
	// incompatible_features (byte 72..79): set bit 32, which no QEMU knows.
	qemutest.Run(t, "sh", "-c", `printf '\001' | dd of=`+unknown+` bs=1 seek=75 conv=notrunc status=none`)
	corrupt := filepath.Join(dir, "corrupt.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", corrupt, "1M")
	qemutest.IO(t, corrupt, "write -P 1 0 64k")
	// Point the first L1 entry into the header cluster.
	qemutest.Run(t, "sh", "-c", `printf '\200\000\000\000\000\000\002\000' | dd of=`+corrupt+` bs=1 seek=196608 conv=notrunc status=none`)
	for _, path := range []string{unknown, corrupt} {
		_, err := Preflight(context.Background(), path, "", "")
		if !errors.Is(err, ErrRefused) {
			t.Errorf("%s: %v, want ErrRefused", filepath.Base(path), err)
		}
		t.Log(err)
	}
}

// TestVerify: each disagreement between Glance's record and the data is
// found; an agreeing record passes.
func TestVerify(t *testing.T) {
	d := Digests{MD5: "m", SHA512: "s", Size: 10}
	good := Image{"id": "i", "size": int64(10), "checksum": "m", "os_hash_algo": "sha512", "os_hash_value": "s"}
	if err := verify(good, d); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"size": int64(9), "checksum": "x", "os_hash_value": "x"} {
		bad := Image{}
		for gk, gv := range good {
			bad[gk] = gv
		}
		bad[k] = v
		if err := verify(bad, d); !errors.Is(err, ErrHashMismatch) {
			t.Errorf("%s=%v: %v", k, v, err)
		}
	}
	if err := verify(Image{"id": "i", "size": int64(10)}, d); !errors.Is(err, ErrHashMismatch) {
		t.Errorf("no hashes at all: %v", err)
	}
}
