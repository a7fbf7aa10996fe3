package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/internal/hivetest"
	"github.com/qimg/qimg/internal/imagetest"
)

// TestInspectLinuxJSON inspects package inspect's Alpine example root
// (ext4 on the whole disk) as a compressed qcow2.
func TestInspectLinuxJSON(t *testing.T) {
	dir := t.TempDir()
	if err := imagetest.Gunzip("../../guestfs/inspect/testdata/alpine.img.gz", filepath.Join(dir, "alpine.raw")); err != nil {
		t.Fatal(err)
	}
	img(t, dir, "convert", "-c", "-O", "qcow2", "alpine.raw", "alpine.qcow2")
	r := qimgIn(t, dir, "inspect", "--output=json", "alpine.qcow2")
	if r.code != 0 {
		t.Fatalf("inspect: %+v", r)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d operating systems:\n%s", len(got), r.stdout)
	}
	for k, v := range map[string]any{
		"root": "/dev/sda", "type": "linux", "distro": "alpinelinux", "product_name": "Alpine Linux v3.19",
		"major_version": 3.0, "minor_version": 19.0, "arch": "x86_64", "hostname": "example",
		"package_format": "apk", "package_management": "apk",
	} {
		if got[0][k] != v {
			t.Errorf("%s = %v, want %v", k, got[0][k], v)
		}
	}
	mps, _ := json.Marshal(got[0]["mountpoints"])
	if string(mps) != `[{"device":"/dev/sda","mountpoint":"/"}]` {
		t.Errorf("mountpoints %s", mps)
	}
}

// TestInspectWindows inspects an NTFS root (package ntfs's test image
// with hives written by internal/hivetest, copied in by ntfscp) in a
// qcow2, and prints the human report.
func TestInspectWindows(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "win.raw")
	if err := imagetest.Gunzip("../../guestfs/ntfs/testdata/tree.img.gz", raw); err != nil {
		t.Fatal(err)
	}
	sw := &hivetest.Key{Name: "ROOT"}
	sw.Path(`Microsoft\Windows NT\CurrentVersion`).Values = []hivetest.Value{
		hivetest.SZ("ProductName", "Windows Server 2022 Datacenter"),
		hivetest.SZ("CurrentVersion", "6.3"),
		hivetest.DWord("CurrentMajorVersionNumber", 10),
		hivetest.DWord("CurrentMinorVersionNumber", 0),
		hivetest.SZ("CurrentBuildNumber", "20348"),
		hivetest.SZ("EditionID", "ServerDatacenter"),
		hivetest.SZ("InstallationType", "Server"),
	}
	sys := &hivetest.Key{Name: "ROOT"}
	sys.Path("Select").Values = []hivetest.Value{hivetest.DWord("Current", 1)}
	sys.Path(`ControlSet001\Control\ComputerName\ComputerName`).Values = []hivetest.Value{hivetest.SZ("ComputerName", "WIN-2022")}
	sys.Path(`ControlSet001\Control\Session Manager\Environment`).Values = []hivetest.Value{hivetest.SZ("PROCESSOR_ARCHITECTURE", "AMD64")}
	for name, k := range map[string]*hivetest.Key{"SOFTWARE": sw, "SYSTEM": sys} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, hivetest.Build(k, hivetest.Options{List: "lf"}), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("ntfscp", "-q", raw, p, "/Windows/System32/config/"+name).CombinedOutput(); err != nil {
			t.Fatalf("ntfscp: %v\n%s", err, out)
		}
	}
	img(t, dir, "convert", "-O", "qcow2", "win.raw", "win.qcow2")
	r := qimgIn(t, dir, "inspect", "win.qcow2")
	want := `Root: /dev/sda
  Type:               windows
  Distro:             windows
  Product name:       Windows Server 2022 Datacenter
  Product variant:    Server
  Version:            10.0
  Build:              20348
  Edition:            ServerDatacenter
  Arch:               x86_64
  Hostname:           WIN-2022
  System root:        /Windows
  Virtio storage:     no (give the instance a SATA or IDE disk, or install the virtio-win drivers, or it will not boot: INACCESSIBLE_BOOT_DEVICE)
  Mountpoints:
    / /dev/sda
`
	if r.code != 0 || r.stdout != want {
		t.Errorf("inspect: code %d\n%s\nwant\n%s\nstderr %s", r.code, r.stdout, want, r.stderr)
	}
	// Windows is not edited: the message says what to do instead.
	if r := qimgIn(t, dir, "inject", "win.qcow2", "--mkdir", "/x"); r.code != 1 ||
		!strings.Contains(r.stderr, "cloudbase-init") || !strings.Contains(r.stderr, "qimg seed --config-drive") || !strings.Contains(r.stderr, "os_type=windows") {
		t.Errorf("inject on Windows: %+v", r)
	}
}

// TestInspectNoOS: a disk holding only a data filesystem is an error
// that says what was found.
func TestInspectNoOS(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "data.raw")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", "data", p, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	r := qimgIn(t, dir, "inspect", "data.raw")
	if r.code != 1 || !strings.Contains(r.stderr, "data.raw: no operating system found on /dev/sda (ext4)") {
		t.Errorf("inspect: %+v", r)
	}
	r = qimgIn(t, dir, "inspect", "--output=xml", "data.raw")
	if r.code != 1 || !strings.Contains(r.stderr, "--output must be used with human or json") {
		t.Errorf("inspect --output=xml: %+v", r)
	}
}
