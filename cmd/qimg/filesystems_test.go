package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/internal/qemutest"
)

// fsEntry is one object of qimg filesystems --output=json.
type fsEntry struct {
	Name, Type, VFS, Label, MBR, Parent, UUID string
	Size                                      int64
}

// TestFilesystems lists a GPT disk made by sfdisk with an ext4 and a vfat
// partition, as a compressed qcow2, and compares every row with what
// sfdisk and blkid say of the same partitions.
func TestFilesystems(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.raw")
	if f, err := os.Create(disk); err != nil {
		t.Fatal(err)
	} else {
		f.Truncate(48 << 20)
		f.Close()
	}
	sf := exec.Command("sfdisk", "-q", disk)
	sf.Stdin = strings.NewReader("label: gpt\nsize=24M, type=L, name=root\ntype=U, name=esp\n")
	if out, err := sf.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	out, err := exec.Command("sfdisk", "--json", disk).Output()
	if err != nil {
		t.Fatal(err)
	}
	var l struct {
		PartitionTable struct {
			Partitions []struct {
				Start, Size int64
				UUID        string
			}
		}
	}
	if err := json.Unmarshal(out, &l); err != nil {
		t.Fatal(err)
	}
	parts := l.PartitionTable.Partitions
	if len(parts) != 2 {
		t.Fatalf("sfdisk made %d partitions", len(parts))
	}
	var vfs, labels, uuids [2]string
	for i, mk := range [][]string{{"mkfs.ext4", "-q", "-F", "-L", "root"}, {"mkfs.vfat", "-n", "ESP"}} {
		p := filepath.Join(dir, "part")
		os.Remove(p)
		f, _ := os.Create(p)
		f.Truncate(parts[i].Size * 512)
		f.Close()
		if out, err := exec.Command(mk[0], append(mk[1:], p)...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", mk, err, out)
		}
		b := qemutest.Blkid(t, p)
		vfs[i], labels[i], uuids[i] = b["TYPE"], b["LABEL"], b["UUID"]
		data, _ := os.ReadFile(p)
		w, _ := os.OpenFile(disk, os.O_WRONLY, 0)
		w.WriteAt(data, parts[i].Start*512)
		w.Close()
	}
	img(t, dir, "convert", "-c", "-O", "qcow2", "disk.raw", "disk.qcow2")
	r := qimgIn(t, dir, "filesystems", "--output=json", "disk.qcow2")
	if r.code != 0 {
		t.Fatalf("filesystems: %+v", r)
	}
	var got []fsEntry
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	want := []fsEntry{
		{Name: "/dev/sda1", Type: "filesystem", VFS: vfs[0], Label: labels[0], Size: parts[0].Size * 512, UUID: uuids[0]},
		{Name: "/dev/sda2", Type: "filesystem", VFS: vfs[1], Label: labels[1], Size: parts[1].Size * 512, UUID: uuids[1]},
		{Name: "/dev/sda1", Type: "partition", Size: parts[0].Size * 512, Parent: "/dev/sda", UUID: parts[0].UUID},
		{Name: "/dev/sda2", Type: "partition", Size: parts[1].Size * 512, Parent: "/dev/sda", UUID: parts[1].UUID},
		{Name: "/dev/sda", Type: "device", Size: 48 << 20},
	}
	if len(got) != len(want) {
		t.Fatalf("rows:\n%+v\nwant\n%+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if vfs != [2]string{"ext4", "vfat"} {
		t.Errorf("blkid says %v", vfs)
	}
	// The human table has the same rows; a missing image is qemu-img's
	// "Could not open".
	r = qimgIn(t, dir, "filesystems", "disk.qcow2")
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); r.code != 0 || len(lines) != 6 || !strings.HasPrefix(lines[1], "/dev/sda1 ") {
		t.Errorf("human listing: %+v", r)
	}
	r = qimgIn(t, dir, "filesystems", "nonexistent.qcow2")
	if r.code != 1 || !strings.Contains(r.stderr, "Could not open 'nonexistent.qcow2'") {
		t.Errorf("missing image: %+v", r)
	}
}
