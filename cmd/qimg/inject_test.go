package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// guestTree writes a small root filesystem tree under dir/src.
func guestTree(t *testing.T, dir string) string {
	t.Helper()
	src := filepath.Join(dir, "src")
	files := map[string]string{
		"etc/hostname":       "old-name\n",
		"etc/hosts":          "127.0.0.1 localhost",
		"etc/selinux/config": "SELINUX=enforcing\nSELINUXTYPE=targeted\n",
		"run/resolv.conf":    "nameserver 10.0.0.1\n",
		"home/user/.profile": "PATH=/bin\n",
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
	if err := os.Symlink("../run/resolv.conf", filepath.Join(src, "etc/resolv.conf")); err != nil {
		t.Fatal(err)
	}
	return src
}

// mkext4 makes a raw ext4 image of src.
func mkext4(t *testing.T, dir, src, name string) {
	t.Helper()
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", src, filepath.Join(dir, name), "64M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
}

// guestRaw returns the filesystem of a (possibly partitioned) image as
// a raw file, converted by qemu-img, checked by e2fsck -fn.
func guestRaw(t *testing.T, dir, image string, offset int64) string {
	t.Helper()
	raw := filepath.Join(dir, image+".check.raw")
	if r := qemuIn(t, dir, "qemu-img", "convert", "-O", "raw", image, raw); r.code != 0 {
		t.Fatalf("qemu-img convert: %+v", r)
	}
	if offset > 0 {
		part := raw + ".part"
		if out, err := exec.Command("dd", "if="+raw, "of="+part, "bs=1M", fmt.Sprintf("skip=%d", offset>>20), "conv=sparse", "status=none").CombinedOutput(); err != nil {
			t.Fatalf("dd: %v %s", err, out)
		}
		raw = part
	}
	if out, err := exec.Command("/usr/sbin/e2fsck", "-fn", raw).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn after the edit: %v\n%s", err, out)
	}
	return raw
}

func debugfs(t *testing.T, raw, cmd string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", cmd, raw).Output()
	if err != nil {
		t.Fatalf("debugfs %s: %v", cmd, err)
	}
	return string(out)
}

func fileSum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestInject(t *testing.T) {
	dir := t.TempDir()
	src := guestTree(t, dir)
	mkext4(t, dir, src, "fs.raw")
	// The same filesystem as raw, compressed qcow2, an overlay on a
	// backing file, and a partition of an MBR disk.
	img(t, dir, "convert", "-O", "qcow2", "-c", "fs.raw", "compressed.qcow2")
	img(t, dir, "convert", "-O", "qcow2", "fs.raw", "base.qcow2")
	img(t, dir, "create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "overlay.qcow2")
	disk := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 80<<20); err != nil {
		t.Fatal(err)
	}
	sfdisk := exec.Command("/usr/sbin/sfdisk", "-q", disk)
	sfdisk.Stdin = strings.NewReader("label: dos\nstart=2048, type=83\n")
	if out, err := sfdisk.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	if out, err := exec.Command("dd", "if="+filepath.Join(dir, "fs.raw"), "of="+disk, "bs=1M", "seek=1", "conv=notrunc", "status=none").CombinedOutput(); err != nil {
		t.Fatalf("dd: %v %s", err, out)
	}
	img(t, dir, "convert", "-O", "qcow2", "disk.raw", "mbr.qcow2")

	local := filepath.Join(dir, "local")
	if err := os.MkdirAll(filepath.Join(local, "tree/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(local, "up.txt"), []byte("uploaded\n"), 0o600)
	os.WriteFile(filepath.Join(local, "tree/sub/script"), []byte("#!/bin/sh\n"), 0o755)
	os.Symlink("/etc/hostname", filepath.Join(local, "tree/abs-link"))
	baseSum := fileSum(t, filepath.Join(dir, "base.qcow2"))

	for _, c := range []struct {
		image  string
		offset int64
	}{
		{"compressed.qcow2", 0}, {"overlay.qcow2", 0}, {"mbr.qcow2", 1 << 20},
	} {
		t.Run(c.image, func(t *testing.T) {
			r := qimgIn(t, dir, "inject", c.image,
				"--write", "/etc/hostname:new-name\n",
				"--append-line", "/etc/hosts:10.0.0.2 server",
				"--write", "/etc/resolv.conf:nameserver 10.0.0.9\n", // through the guest's relative link
				"--upload", filepath.Join(local, "up.txt")+":/etc/",
				"--mkdir", "/opt/a/b",
				"--copy-in", filepath.Join(local, "tree")+":/opt",
				"--link", "/etc/hostname:/opt/hn:/opt/hn2",
				"--chmod", "0600:/etc/hosts",
				"--chown", "1000:1001:/home/user/.profile",
				"--touch", "/etc/touched",
				"--move", "/etc/touched:/opt",
				"--delete", "/home/user",
			)
			if r.code != 0 || !strings.Contains(r.stdout, "Uploading: ") || !strings.Contains(r.stdout, "/.autorelabel") {
				t.Fatalf("inject: %+v", r)
			}
			if strings.HasSuffix(c.image, ".qcow2") {
				if q := qemuIn(t, dir, "qemu-img", "check", c.image); q.code != 0 {
					t.Fatalf("qemu-img check: %+v", q)
				}
			}
			raw := guestRaw(t, dir, c.image, c.offset)
			for path, want := range map[string]string{
				"/etc/hostname":        "new-name\n",
				"/etc/hosts":           "127.0.0.1 localhost\n10.0.0.2 server\n",
				"/run/resolv.conf":     "nameserver 10.0.0.9\n",
				"/etc/up.txt":          "uploaded\n",
				"/opt/tree/sub/script": "#!/bin/sh\n",
				"/opt/touched":         "",
				"/.autorelabel":        "",
			} {
				if got := debugfs(t, raw, "cat "+path); got != want {
					t.Errorf("%s: debugfs reads %q, want %q", path, got, want)
				}
			}
			for path, want := range map[string]string{
				"/etc/up.txt":          "Mode:  0644",
				"/etc/hosts":           "Mode:  0600",
				"/opt/tree/sub/script": "Mode:  0755",
				"/opt/hn":              "Type: symlink",
				"/opt/tree/abs-link":   "Type: symlink",
				"/opt/a/b":             "Type: directory",
			} {
				if got := debugfs(t, raw, "stat "+path); !strings.Contains(got, want) || !strings.Contains(got, "User:     0   Group:     0") {
					t.Errorf("%s: debugfs stat lacks %q or root ownership:\n%s", path, want, got)
				}
			}
			if got := debugfs(t, raw, "stat /home/user"); !strings.Contains(got, "File not found") && got != "" {
				t.Errorf("/home/user not deleted: %s", got)
			}
			if c.image == "overlay.qcow2" && fileSum(t, filepath.Join(dir, "base.qcow2")) != baseSum {
				t.Error("the backing file changed")
			}
		})
	}
}

// TestInjectLeavesImageUnchanged: a dry run and a failing edit change no
// byte of the image; formats and filesystems qimg does not edit are
// refused with a message saying what to do.
func TestInjectLeavesImageUnchanged(t *testing.T) {
	dir := t.TempDir()
	mkext4(t, dir, guestTree(t, dir), "fs.raw")
	img(t, dir, "convert", "-O", "qcow2", "fs.raw", "fs.qcow2")
	before := fileSum(t, filepath.Join(dir, "fs.qcow2"))
	r := qimgIn(t, dir, "inject", "--dry-run", "fs.qcow2", "--write", "/etc/hostname:x", "--mkdir", "/new")
	if r.code != 0 || !strings.Contains(r.stdout, "Dry run") || !strings.Contains(r.stdout, "Making directory: /new") {
		t.Fatalf("dry run: %+v", r)
	}
	for _, bad := range [][]string{
		{"--write", "/etc/hostname:x", "--upload", "/nonexistent/file:/etc/"},
		{"--write", "/etc/hostname:x", "--mkdir", "/etc/hostname/sub"},
		{"--write", "/etc/hostname:x", "--write", "/missing/dir/file:x"},
		{"--write", "/etc/hostname:x", "--delete", "/no/such/path"},
	} {
		r := qimgIn(t, dir, append([]string{"inject", "fs.qcow2"}, bad...)...)
		if r.code != 1 || !strings.Contains(r.stderr, "fs.qcow2") {
			t.Errorf("%v: %+v, want exit 1 naming the image", bad, r)
		}
	}
	if fileSum(t, filepath.Join(dir, "fs.qcow2")) != before {
		t.Fatal("a dry run or a failed edit changed the image")
	}
	if r := qimgIn(t, dir, "inject", "fs.qcow2", "--write", "bad-syntax"); r.code != 1 || !strings.Contains(r.stderr, "REMOTE:CONTENT") {
		t.Errorf("bad syntax: %+v", r)
	}
	img(t, dir, "convert", "-O", "vmdk", "fs.raw", "fs.vmdk")
	if r := qimgIn(t, dir, "inject", "fs.vmdk", "--mkdir", "/x"); r.code != 1 || !strings.Contains(r.stderr, "qimg convert -O qcow2") {
		t.Errorf("vmdk: %+v", r)
	}
	iso := filepath.Join(dir, "cd.iso")
	if out, err := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-o", iso, filepath.Join(dir, "src")).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, out)
	}
	if r := qimgIn(t, dir, "inject", "-f", "raw", "cd.iso", "--mkdir", "/x"); r.code != 1 || !strings.Contains(r.stderr, "qimg edits ext2, ext3, ext4") {
		t.Errorf("iso: %+v", r)
	}
}

func TestCopyIn(t *testing.T) {
	dir := t.TempDir()
	mkext4(t, dir, guestTree(t, dir), "fs.raw")
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a\n"), 0o640)
	os.MkdirAll(filepath.Join(dir, "d/e"), 0o750)
	os.WriteFile(filepath.Join(dir, "d/e/f"), []byte("f\n"), 0o644)
	if r := qimgIn(t, dir, "copy-in", "fs.raw", "a.txt", "d", "/home"); r.code != 0 {
		t.Fatalf("copy-in: %+v", r)
	}
	raw := guestRaw(t, dir, "fs.raw", 0)
	if got := debugfs(t, raw, "cat /home/d/e/f"); got != "f\n" {
		t.Errorf("copied file reads %q", got)
	}
	if got := debugfs(t, raw, "stat /home/d/e"); !strings.Contains(got, "Mode:  0750") {
		t.Errorf("mode not kept:\n%s", got)
	}
	if r := qimgIn(t, dir, "copy-in", "fs.raw", "a.txt", "/nonexistent"); r.code != 1 || !strings.Contains(r.stderr, "not a directory") {
		t.Errorf("copy-in to a missing directory: %+v", r)
	}
}

// TestInjectESPAndRoot edits a GPT disk holding an EFI system partition
// (FAT) and an ext4 root: with no -m the root is found by inspection;
// -m /dev/sda1 edits the ESP, judged by fsck.fat and mtools.
func TestInjectESPAndRoot(t *testing.T) {
	dir := t.TempDir()
	src := guestTree(t, dir)
	os.MkdirAll(filepath.Join(src, "bin"), 0o755)
	os.WriteFile(filepath.Join(src, "bin/sh"), []byte("not an ELF"), 0o755)
	mkext4(t, dir, src, "root.raw")
	esp := filepath.Join(dir, "esp.raw")
	if out, err := exec.Command("/usr/sbin/mkfs.vfat", "-C", "-F", "32", "-n", "ESP", esp, "40960").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat: %v\n%s", err, out)
	}
	if out, err := exec.Command("mmd", "-i", esp, "::/EFI", "::/EFI/BOOT").CombinedOutput(); err != nil {
		t.Fatalf("mmd: %v\n%s", err, out)
	}
	disk := filepath.Join(dir, "disk.raw")
	os.WriteFile(disk, nil, 0o644)
	os.Truncate(disk, 120<<20)
	if out, err := exec.Command("/usr/sbin/sgdisk", "-n1:2048:+40M", "-t1:ef00", "-n2:0:+64M", "-t2:8300", disk).CombinedOutput(); err != nil {
		t.Fatalf("sgdisk: %v\n%s", err, out)
	}
	for _, p := range []struct {
		file string
		seek int
	}{{esp, 1}, {filepath.Join(dir, "root.raw"), 41}} {
		if out, err := exec.Command("dd", "if="+p.file, "of="+disk, "bs=1M", fmt.Sprintf("seek=%d", p.seek), "conv=notrunc", "status=none").CombinedOutput(); err != nil {
			t.Fatalf("dd: %v %s", err, out)
		}
	}
	img(t, dir, "convert", "-O", "qcow2", "disk.raw", "disk.qcow2")
	if r := qimgIn(t, dir, "inject", "-q", "disk.qcow2", "--write", "/etc/branch:main\n"); r.code != 0 {
		t.Fatalf("inject into the root: %+v", r)
	}
	if r := qimgIn(t, dir, "inject", "-q", "-m", "/dev/sda1", "disk.qcow2",
		"--write", "/EFI/BOOT/grub.cfg:set timeout=0\n", "--mkdir", "/EFI/qimg-long-directory-name"); r.code != 0 || r.stderr != "" {
		t.Fatalf("inject into the ESP (the redo log makes it all or nothing: no warning): %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "disk.qcow2.qimg-redo")); err == nil {
		t.Fatal("the redo log is left beside the image")
	}
	if r := qimgIn(t, dir, "cat", "disk.qcow2", "/etc/branch"); r.stdout != "main\n" {
		t.Errorf("cat from the root: %+v", r)
	}
	if q := qemuIn(t, dir, "qemu-img", "check", "disk.qcow2"); q.code != 0 {
		t.Fatalf("qemu-img check: %+v", q)
	}
	raw := filepath.Join(dir, "check.raw")
	img(t, dir, "convert", "-O", "raw", "disk.qcow2", "check.raw")
	espOut := filepath.Join(dir, "esp-out.raw")
	if out, err := exec.Command("dd", "if="+raw, "of="+espOut, "bs=1M", "skip=1", "count=40", "status=none").CombinedOutput(); err != nil {
		t.Fatalf("dd: %v %s", err, out)
	}
	if out, err := exec.Command("/usr/sbin/fsck.vfat", "-n", espOut).CombinedOutput(); err != nil {
		t.Fatalf("fsck.vfat -n: %v\n%s", err, out)
	}
	out, err := exec.Command("mtype", "-i", espOut, "::/EFI/BOOT/grub.cfg").Output()
	if err != nil || string(out) != "set timeout=0\n" {
		t.Errorf("mtype: %q %v", out, err)
	}
	if out, err := exec.Command("mdir", "-i", espOut, "::/EFI").Output(); err != nil || !strings.Contains(string(out), "qimg-long-directory-name") {
		t.Errorf("mdir: %s %v", out, err)
	}
}
