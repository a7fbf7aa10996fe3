package guestfs_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/guestfs"
	"github.com/qimg/qimg/internal/qemutest"
)

// TestMountXFS puts an XFS file system made by mkfs.xfs (from a
// prototype, v5 and v4) in the second partition of a GPT disk, and reads
// it through guestfs as raw and as a compressed qcow2: the device is
// found as xfs, mounts, and lists and reads what the prototype holds.
func TestMountXFS(t *testing.T) {
	for _, v := range []struct{ name, opt string }{{"v5", "crc=1"}, {"v4", "crc=0"}} {
		t.Run(v.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "hostname")
			os.WriteFile(src, []byte("xfs-guest\n"), 0o644)
			proto := filepath.Join(dir, "proto")
			os.WriteFile(proto, []byte("/dev/null\n0 0\nd--755 0 0\netc d--755 0 0\n hostname ---644 0 0 "+src+
				"\n os-release l--777 0 0 ../usr/lib/os-release\n $\nusr d--755 0 0\n lib d--755 0 0\n  os-release ---644 0 0 "+src+"\n  $\n $\n$\n"), 0o644)
			disk := filepath.Join(dir, "disk.raw")
			run(t, "truncate", "-s", "200M", disk)
			cmd := exec.Command("sfdisk", "-q", disk)
			cmd.Stdin = strings.NewReader("label: gpt\n,4M\n,+\n")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("sfdisk: %v\n%s", err, out)
			}
			part := filepath.Join(dir, "part")
			run(t, "truncate", "-s", "0", part)
			run(t, "truncate", "-s", "150M", part)
			mkfs := exec.Command("mkfs.xfs", "-q", "-f", "-m", v.opt, "-L", "xroot", "-p", proto, part)
			// mkfs.xfs wants 300 MiB unless it believes fstests runs it.
			mkfs.Env = append(os.Environ(), "TEST_DIR=1", "TEST_DEV=1", "QA_CHECK_FS=1")
			if out, err := mkfs.CombinedOutput(); err != nil {
				t.Fatalf("mkfs.xfs: %v\n%s", err, out)
			}
			placeAt(t, disk, part, 5<<20) // sfdisk's second partition starts at 5 MiB (1 MiB alignment + 4 MiB)
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
				dev, ok := d.Device("/dev/sda2")
				if !ok || dev.Content.Type != "xfs" || dev.Content.Label != "xroot" {
					t.Fatalf("%s: /dev/sda2 is %+v", path, dev.Content)
				}
				m, err := d.OnlyFilesystem()
				if err != nil || m != "/dev/sda2" {
					t.Fatalf("OnlyFilesystem = %q, %v", m, err)
				}
				fsys, err := d.Mount(m)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range []string{"etc/hostname", "etc/os-release"} {
					data, err := fs.ReadFile(fsys, p)
					if err != nil || string(data) != "xfs-guest\n" {
						t.Errorf("%s: %s = %q, %v", path, p, data, err)
					}
				}
				if target, err := fsys.ReadLink("etc/os-release"); err != nil || target != "../usr/lib/os-release" {
					t.Errorf("ReadLink = %q, %v", target, err)
				}
				var names []string
				fs.WalkDir(fsys, ".", func(p string, _ fs.DirEntry, err error) error {
					names = append(names, p)
					return err
				})
				if got := strings.Join(names, " "); got != ". etc etc/hostname etc/os-release usr usr/lib usr/lib/os-release" {
					t.Errorf("walk: %s", got)
				}
			}
		})
	}
}
