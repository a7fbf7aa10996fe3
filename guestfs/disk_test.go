package guestfs_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/qimg/qimg/internal/imagetest"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/guestfs"
	"github.com/qimg/qimg/guestfs/detect"
	"github.com/qimg/qimg/internal/qemutest"
)

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// blkid is what blkid says of a file, as a Content.
func blkid(t *testing.T, path string) detect.Content {
	f := qemutest.Blkid(t, path)
	return detect.Content{Type: f["TYPE"], Label: f["LABEL"], UUID: f["UUID"]}
}

// sfdiskLayout is the part of `sfdisk --json` this test reads.
type sfdiskLayout struct {
	PartitionTable struct {
		Partitions []struct {
			Node  string `json:"node"`
			Start int64  `json:"start"`
			Size  int64  `json:"size"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

// placeAt copies the file src into disk at byte offset off.
func placeAt(t *testing.T, disk, src string, off int64) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(disk, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

// TestOpenFindsEveryDevice builds an MBR disk with the real tools (ext4,
// swap, and in an extended partition vfat, LUKS and an LVM2 PV made by
// the lvm2 tools), reads it raw and as a compressed qcow2, and compares
// every device with sfdisk (place, size) and blkid (type, label, UUID).
func TestOpenFindsEveryDevice(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.raw")
	run(t, "truncate", "-s", "96M", disk)
	layout := "label: dos\n,32M,83\n,8M,82\n,+,5\n,16M,c\n,16M,83\n,4M,8e\n"
	cmd := exec.Command("sfdisk", "-q", disk)
	cmd.Stdin = strings.NewReader(layout)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	var l sfdiskLayout
	if err := json.Unmarshal([]byte(run(t, "sfdisk", "--json", disk)), &l); err != nil {
		t.Fatal(err)
	}
	parts := map[string][2]int64{} // device -> start, size in bytes
	for _, p := range l.PartitionTable.Partitions {
		n := strings.TrimPrefix(p.Node, disk)
		parts["/dev/sda"+n] = [2]int64{p.Start * 512, p.Size * 512}
	}
	contents := map[string]func(p string){
		"/dev/sda1": func(p string) { run(t, "mkfs.ext4", "-q", "-F", "-L", "root", p) },
		"/dev/sda2": func(p string) { run(t, "mkswap", "-L", "swp", p) },
		"/dev/sda5": func(p string) { run(t, "mkfs.vfat", "-n", "EFI", p) },
		"/dev/sda6": func(p string) {
			key := filepath.Join(dir, "key")
			os.WriteFile(key, []byte("k"), 0o600)
			run(t, "cryptsetup", "luksFormat", "-q", "--type", "luks2", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", key, p)
		},
		"/dev/sda7": func(p string) {
			if err := imagetest.Gunzip("lvm/testdata/pv.img.gz", p); err != nil {
				t.Fatal(err)
			}
		},
	}
	want := map[string]detect.Content{}
	for dev, mk := range contents {
		p := filepath.Join(dir, strings.TrimPrefix(dev, "/dev/"))
		run(t, "truncate", "-s", "0", p)
		run(t, "truncate", "-s", itoa(parts[dev][1]), p)
		mk(p)
		if want[dev] = blkid(t, p); want[dev].Type == "" || want[dev].UUID == "" {
			t.Fatalf("blkid recognises nothing in %s", p)
		}
		placeAt(t, disk, p, parts[dev][0])
	}
	qcow := filepath.Join(dir, "disk.qcow2")
	qemutest.Img(t, "convert", "-c", "-O", "qcow2", disk, qcow)
	for _, path := range []string{disk, qcow} {
		img, _, err := format.Open(path, format.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer img.Close()
		d, err := guestfs.Open(img, path)
		if err != nil {
			t.Fatal(err)
		}
		for dev, w := range want {
			got, ok := d.Device(dev)
			if !ok {
				t.Fatalf("%s: no %s", path, dev)
			}
			if got.Content != w {
				t.Errorf("%s %s: %+v, blkid %+v", path, dev, got.Content, w)
			}
			if got.Size != parts[dev][1] || got.Partition.Start != parts[dev][0] {
				t.Errorf("%s %s: at %d size %d, sfdisk %v", path, dev, got.Partition.Start, got.Size, parts[dev])
			}
		}
		// The PV's volume group (made by lvm2 for package lvm's
		// tests) holds root and swap.
		var lvs []string
		for _, dev := range d.Devices {
			if dev.Kind == guestfs.KindLV {
				lvs = append(lvs, dev.Name)
				if dev.Image == nil || dev.Err != nil {
					t.Errorf("%s: %v", dev.Name, dev.Err)
				}
			}
		}
		if len(d.VGs) != 1 || len(lvs) != 2 || !strings.HasSuffix(lvs[0], "/root") || !strings.HasSuffix(lvs[1], "/swap") {
			t.Errorf("%s: volume groups %d, logical volumes %v", path, len(d.VGs), lvs)
		}
		if dev, _ := d.Device("/dev/sda3"); !dev.Partition.Extended || dev.Content.Type != "" {
			t.Errorf("%s: the extended partition: %+v", path, dev)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
