package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/internal/qemutest"
)

// TestUntrustedRefusesBackingFiles: an image naming a host file as its
// backing file would copy that file into the output of convert; with
// --untrusted every command that would open it refuses, and the output is
// not created. Without the flag qimg follows the name like qemu-img.
func TestUntrustedRefusesBackingFiles(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret.raw")
	if err := os.WriteFile(secret, []byte(strings.Repeat("top secret\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	qemutest.Img(t, "create", "-q", "-f", "qcow2", "-b", secret, "-F", "raw", filepath.Join(dir, "evil.qcow2"), "1M")
	for _, args := range [][]string{
		{"convert", "-O", "raw", "evil.qcow2", "out.raw"},
		{"compare", "evil.qcow2", "secret.raw"},
		{"map", "evil.qcow2"},
		{"measure", "-O", "qcow2", "evil.qcow2"},
		{"info", "--backing-chain", "evil.qcow2"},
	} {
		r := qimgIn(t, dir, append([]string{"--untrusted"}, args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, "secret.raw") {
			t.Errorf("--untrusted %v: exit %d, stderr %q; want a refusal naming the backing file", args, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out.raw")); !os.IsNotExist(err) {
		t.Fatalf("refused convert left an output: %v", err)
	}
	if r := qimgIn(t, dir, "info", "evil.qcow2"); r.code != 0 {
		t.Fatalf("plain info must still work (it never opens the backing file): %+v", r)
	}
	if r := qimgIn(t, dir, "convert", "-O", "raw", "evil.qcow2", "out.raw"); r.code != 0 {
		t.Fatalf("without --untrusted the chain is followed like qemu-img: %+v", r)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "out.raw"))
	if !strings.HasPrefix(string(got), "top secret") {
		t.Fatal("convert did not read through the backing file")
	}
}

// TestUntrustedVMDKExtents: a VMDK descriptor names its extent files; one
// naming a host file outside its directory is followed like qemu-img
// does, but refused with --untrusted.
func TestUntrustedVMDKExtents(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(t.TempDir(), "secret.raw")
	if err := os.WriteFile(secret, []byte(strings.Repeat("top secret\n", 93)), 0o600); err != nil {
		t.Fatal(err)
	}
	desc := "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n" +
		"RW 2 FLAT \"" + secret + "\" 0\n\nddb.virtualHWVersion = \"4\"\nddb.geometry.cylinders = \"1\"\n" +
		"ddb.geometry.heads = \"16\"\nddb.geometry.sectors = \"63\"\nddb.adapterType = \"ide\"\n"
	if err := os.WriteFile(filepath.Join(dir, "evil.vmdk"), []byte(desc), 0o644); err != nil {
		t.Fatal(err)
	}
	r := qimgIn(t, dir, "--untrusted", "convert", "-O", "raw", "evil.vmdk", "out.raw")
	if r.code == 0 {
		t.Fatalf("--untrusted converted a VMDK whose extent is %s", secret)
	}
	if _, err := os.Stat(filepath.Join(dir, "out.raw")); !os.IsNotExist(err) {
		t.Fatalf("refused convert left an output: %v", err)
	}
	if r := qimgIn(t, dir, "convert", "-O", "raw", "evil.vmdk", "out.raw"); r.code != 0 {
		t.Fatalf("without --untrusted the extent is followed like qemu-img: %+v", r)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "out.raw")); !strings.HasPrefix(string(got), "top secret") {
		t.Fatal("convert did not read the extent file")
	}
}
