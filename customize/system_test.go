package customize_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/customize"
	"github.com/qimg/qimg/guestfs/ext4"
)

// linuxGuest is the example file system with the files of a small
// SELinux Linux guest written in: passwd, shadow (root:shadow 0640), a
// time zone, systemd and cloud-init directories.
func linuxGuest(t *testing.T) (*customize.Guest, *memDevice) {
	t.Helper()
	src := t.TempDir()
	files := map[string]string{
		"etc/passwd":                      "root:x:0:0:root:/root:/bin/bash\ncloud:x:1000:1000::/home/cloud:/bin/bash\n",
		"etc/shadow":                      "root:*:19000:0:99999:7:::\ncloud:!:19000:0:99999:7:::\n",
		"etc/hosts":                       "127.0.0.1\tlocalhost\n127.0.1.1\told.example old\n::1\tlocalhost\n",
		"etc/hostname":                    "old\n",
		"etc/sysconfig/network":           "NETWORKING=yes\nHOSTNAME=old\n",
		"etc/selinux/config":              "SELINUX=enforcing\n",
		"etc/cloud/cloud.cfg":             "users: [default]\n",
		"usr/share/zoneinfo/Europe/Paris": "TZif2 fake",
		"etc/systemd/system.conf":         "",
	}
	for p, c := range files {
		must(t, os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o755))
		must(t, os.WriteFile(filepath.Join(src, p), []byte(c), 0o644))
	}
	must(t, os.Chmod(filepath.Join(src, "etc/shadow"), 0o640))
	must(t, os.Chown(filepath.Join(src, "etc/shadow"), 0, 42))
	img := filepath.Join(t.TempDir(), "guest.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", src, img, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(img)
	must(t, err)
	dev := &memDevice{b: raw}
	fsys, err := ext4.OpenWritable(dev, int64(len(raw)), "guest.img")
	must(t, err)
	return &customize.Guest{FS: fsys}, dev
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestSystemOptions(t *testing.T) {
	g, dev := linuxGuest(t)
	var log bytes.Buffer
	g.Log = &log
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBJ6c3ZlZWQrZXhhbXBsZWtleWRhdGFmb3J0ZXN0cw test@qimg"
	ops := parse(t,
		"hostname", "web1.example.org",
		"root-password", "password:s3cret",
		"password", "cloud:random",
		"ssh-inject", "cloud:string:"+key,
		"ssh-inject", "cloud:string:"+key, // twice: added once
		"timezone", "Europe/Paris",
		"firstboot-command", "echo hello > /root/fb",
		"firstboot-command", "touch /second",
		"cloud-init-datasources", "OpenStack,ConfigDrive,NoCloud",
		"growpart", "on",
	)
	must(t, customize.Apply(context.Background(), g, ops))
	fsys, err := ext4.Open(bytes.NewReader(dev.b), int64(len(dev.b)), "x")
	must(t, err)
	read := func(p string) string {
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("etc/hostname"); got != "web1.example.org\n" {
		t.Errorf("hostname: %q", got)
	}
	if got := read("etc/hosts"); got != "127.0.0.1\tlocalhost\n127.0.1.1\tweb1.example.org web1\n::1\tlocalhost\n" {
		t.Errorf("hosts: %q", got)
	}
	if got := read("etc/sysconfig/network"); got != "NETWORKING=yes\nHOSTNAME=web1.example.org\n" {
		t.Errorf("sysconfig/network: %q", got)
	}
	shadow := read("etc/shadow")
	root := strings.Split(strings.Split(shadow, "\n")[0], ":")
	if !strings.HasPrefix(root[1], "$6$") {
		t.Fatalf("root hash %q", root[1])
	}
	// openssl computes the same SHA-512 crypt from the same salt.
	salt := strings.Split(root[1], "$")[2]
	out, err := exec.Command("openssl", "passwd", "-6", "-salt", salt, "s3cret").Output()
	if err != nil || strings.TrimSpace(string(out)) != root[1] {
		t.Errorf("openssl passwd -6 gives %q, qimg wrote %q (%v)", out, root[1], err)
	}
	if fi := stat(t, fsys, "etc/shadow"); fi.Mode().Perm() != 0o640 || fi.Sys().(*ext4.Inode).GID != 42 {
		t.Errorf("shadow lost its mode or group: %v", fi.Mode())
	}
	if !strings.Contains(log.String(), "Setting random password of cloud to ") {
		t.Errorf("random password not printed:\n%s", log.String())
	}
	if got := read("home/cloud/.ssh/authorized_keys"); got != key+"\n" {
		t.Errorf("authorized_keys: %q", got)
	}
	for p, mode := range map[string]fs.FileMode{"home/cloud/.ssh": 0o700, "home/cloud/.ssh/authorized_keys": 0o600} {
		fi := stat(t, fsys, p)
		in := fi.Sys().(*ext4.Inode)
		if fi.Mode().Perm() != mode || in.UID != 1000 || in.GID != 1000 {
			t.Errorf("%s: %v %d:%d", p, fi.Mode(), in.UID, in.GID)
		}
		xs, _ := fsys.Xattrs(p)
		if len(xs) != 1 || string(xs[0].Value) != "system_u:object_r:ssh_home_t:s0\x00" {
			t.Errorf("%s: SELinux label %v", p, xs)
		}
	}
	if target, err := fsys.ReadLink("etc/localtime"); err != nil || target != "../usr/share/zoneinfo/Europe/Paris" {
		t.Errorf("localtime -> %q %v", target, err)
	}
	if got := read("usr/local/lib/qimg/firstboot.d/0002-touch-second"); got != "#!/bin/sh\ntouch /second\n" {
		t.Errorf("second firstboot script: %q", got)
	}
	if target, err := fsys.ReadLink("etc/systemd/system/multi-user.target.wants/qimg-firstboot.service"); err != nil || target != "/etc/systemd/system/qimg-firstboot.service" {
		t.Errorf("unit not enabled: %q %v", target, err)
	}
	if got := read("etc/cloud/cloud.cfg.d/90-qimg-datasources.cfg"); !strings.Contains(got, "datasource_list: [ OpenStack, ConfigDrive, NoCloud ]") {
		t.Errorf("datasources: %q", got)
	}
	if _, err := fsys.Stat(".autorelabel"); err != nil {
		t.Error("no /.autorelabel on an SELinux guest with new files")
	}
	// The runner is a valid shell script.
	runner := filepath.Join(t.TempDir(), "runner")
	os.WriteFile(runner, []byte(read("usr/local/lib/qimg/firstboot.sh")), 0o755)
	if out, err := exec.Command("sh", "-n", runner).CombinedOutput(); err != nil {
		t.Errorf("sh -n firstboot.sh: %v %s", err, out)
	}
}

func stat(t *testing.T, fsys *ext4.FS, p string) fs.FileInfo {
	t.Helper()
	fi, err := fsys.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func TestSystemOptionsRefused(t *testing.T) {
	for _, name := range customize.OfflineNames() {
		if _, err := customize.Parse(name, "anything"); err == nil || !strings.Contains(err.Error(), "--firstboot-command") {
			t.Errorf("--%s: %v", name, err)
		}
	}
	g, dev := linuxGuest(t)
	before := bytes.Clone(dev.b)
	for _, op := range [][]string{
		{"hostname", "bad_name!"}, {"timezone", "Mars/Olympus"}, {"password", "nobody:password:x"},
		{"ssh-inject", "root:string:not a key"}, {"cloud-init-datasources", "Bogus"}, {"growpart", "maybe"},
		{"root-password", "plain"},
	} {
		if err := customize.Apply(context.Background(), g, parse(t, op...)); err == nil {
			t.Errorf("%v accepted", op)
		}
	}
	if !bytes.Equal(before, dev.b) {
		t.Error("refused options changed the device")
	}
}

func TestCloudConfigDropIn(t *testing.T) {
	g, _ := linuxGuest(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "growroot.cfg")
	must(t, os.WriteFile(good, []byte("#cloud-config\ndatasource_list: [ OpenStack ]\npackages: [qemu-guest-agent]\n"), 0o644))
	bad := filepath.Join(dir, "bad.cfg")
	must(t, os.WriteFile(bad, []byte("#cloud-config\npakages: [x]\nssh_pwauth: [1]\n"), 0o644))
	err := customize.Apply(context.Background(), g, parse(t, "cloud-config", bad))
	if err == nil || !strings.Contains(err.Error(), "bad.cfg:2") || !strings.Contains(err.Error(), "packages") {
		t.Fatalf("bad drop-in: %v", err)
	}
	must(t, customize.Apply(context.Background(), g, parse(t, "cloud-config", good)))
	b, err := fs.ReadFile(g.FS, "etc/cloud/cloud.cfg.d/95-qimg-growroot.cfg")
	if err != nil || !strings.Contains(string(b), "qemu-guest-agent") {
		t.Fatalf("drop-in: %q %v", b, err)
	}
}
