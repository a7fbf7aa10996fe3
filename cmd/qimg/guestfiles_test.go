package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGuestFilesISO lists and prints the files of a config drive made by
// xorriso, inside a qcow2, and compares them with the source tree and
// with what isoinfo extracts.
func TestGuestFilesISO(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	files := map[string]string{
		"user-data":                       "#cloud-config\nhostname: qimg\n",
		"openstack/latest/meta_data.json": `{"uuid": "83679162-1378-4288-a2d4-70e13ec132aa"}`,
		"openstack/latest/user_data":      "#!/bin/sh\necho hi\n",
	}
	for name, content := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("openstack/latest/user_data", filepath.Join(src, "ud")); err != nil {
		t.Fatal(err)
	}
	iso := filepath.Join(dir, "cd.iso")
	if out, err := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-V", "config-2", "-J", "-R", "-o", iso, src).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, out)
	}
	img(t, dir, "convert", "-O", "qcow2", "cd.iso", "cd.qcow2")
	for name, content := range files {
		want, err := exec.Command("isoinfo", "-R", "-x", "/"+name, "-i", iso).Output()
		if err != nil || string(want) != content {
			t.Fatalf("isoinfo -x /%s: %q %v", name, want, err)
		}
		if r := qimgIn(t, dir, "cat", "cd.qcow2", "/"+name); r.code != 0 || r.stdout != content {
			t.Errorf("cat /%s: %+v", name, r)
		}
	}
	if r := qimgIn(t, dir, "cat", "cd.qcow2", "/ud"); r.stdout != files["openstack/latest/user_data"] {
		t.Errorf("cat through a symlink: %+v", r)
	}
	r := qimgIn(t, dir, "ls", "cd.qcow2", "/")
	if r.stdout != "openstack\nud\nuser-data\n" {
		t.Errorf("ls /: %+v", r)
	}
	r = qimgIn(t, dir, "ls", "-R", "cd.qcow2", "/openstack")
	if r.stdout != "/openstack/latest\n/openstack/latest/meta_data.json\n/openstack/latest/user_data\n" {
		t.Errorf("ls -R: %+v", r)
	}
	r = qimgIn(t, dir, "ls", "-l", "cd.qcow2", "/")
	if lines := strings.Split(r.stdout, "\n"); len(lines) != 4 || !strings.HasPrefix(lines[0], "drwxr-xr-x ") ||
		!strings.HasPrefix(lines[1], "lrwxrwxrwx ") || !strings.HasSuffix(lines[1], " ud -> openstack/latest/user_data") ||
		!strings.HasPrefix(lines[2], "-rw-r--r--         29 ") {
		t.Errorf("ls -l: %q", r.stdout)
	}
	r = qimgIn(t, dir, "cat", "cd.qcow2", "/nope")
	if r.code != 1 || r.stderr != "qimg: cd.qcow2: /nope: No such file or directory\n" {
		t.Errorf("a missing file: %+v", r)
	}
	// Content qimg cannot read is named, with what it reads.
	img(t, dir, "create", "-f", "raw", "blank.raw", "1M")
	r = qimgIn(t, dir, "ls", "blank.raw", "/")
	if r.code != 1 || !strings.Contains(r.stderr, "no filesystem qimg reads") {
		t.Errorf("a blank disk: %+v", r)
	}
}

// TestGuestFilesExt4 reads files from an ext4 root on the second
// partition of an MBR disk (the first is empty), as a qcow2 overlay over a
// compressed base, and compares with debugfs on the filesystem alone.
func TestGuestFilesExt4(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "root")
	for name, content := range map[string]string{
		"etc/hostname":   "guest\n",
		"etc/os-release": "ID=debian\nVERSION_ID=\"12\"\n",
		"branch.txt":     "main\n",
	} {
		p := filepath.Join(src, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("/etc/hostname", filepath.Join(src, "hn")) // absolute: inside the guest
	fsImg := filepath.Join(dir, "fs.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", src, fsImg, "16M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	disk := filepath.Join(dir, "disk.raw")
	f, err := os.Create(disk)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(32 << 20)
	f.Close()
	sf := exec.Command("sfdisk", "-q", disk)
	sf.Stdin = strings.NewReader("label: dos\nstart=2048, size=4096, type=82\nstart=6144, size=32768, type=83\n")
	if out, err := sf.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	data, _ := os.ReadFile(fsImg)
	w, _ := os.OpenFile(disk, os.O_WRONLY, 0)
	w.WriteAt(data, 6144*512)
	w.Close()
	img(t, dir, "convert", "-c", "-O", "qcow2", "disk.raw", "base.qcow2")
	img(t, dir, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2")
	// The absolute symlink /hn reads the guest's /etc/hostname.
	for p, inFS := range map[string]string{"/etc/hostname": "/etc/hostname", "/etc/os-release": "/etc/os-release",
		"/branch.txt": "/branch.txt", "/hn": "/etc/hostname"} {
		want, err := exec.Command("debugfs", "-R", "cat "+inFS, fsImg).Output()
		if err != nil || len(want) == 0 {
			t.Fatal(err)
		}
		if r := qimgIn(t, dir, "cat", "top.qcow2", p); r.code != 0 || r.stdout != string(want) {
			t.Errorf("cat %s: %+v, debugfs %q", p, r, want)
		}
	}
	r := qimgIn(t, dir, "ls", "-m", "/dev/sda2", "top.qcow2", "/etc")
	if r.stdout != "hostname\nos-release\n" {
		t.Errorf("ls /etc: %+v", r)
	}
	r = qimgIn(t, dir, "ls", "-m", "/dev/sda1", "top.qcow2", "/")
	if r.code != 1 || !strings.Contains(r.stderr, "/dev/sda1 holds nothing qimg recognises; qimg reads ext2, ext3, ext4, iso9660, ntfs, vfat, xfs") {
		t.Errorf("ls of an empty partition: %+v", r)
	}
}
