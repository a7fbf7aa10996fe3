package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/internal/qemutest"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSeed builds each kind of seed with qimg seed and lets blkid and
// isoinfo or mtools read it back.
func TestSeed(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"ud":       "#cloud-config\nhostname: web1\napt_update: true\n",
		"keys.pub": "# keys\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKey a@b\n\nssh-rsa AAAAB3NzaC1yc2EFake c@d\n",
		"net":      "version: 2\nethernets: {nic: {match: {name: 'e*'}, dhcp4: true}}\n",
	})
	r := qimgIn(t, dir, "seed", "-o", "seed.iso", "--user-data", "ud", "--network-config", "net", "--ssh-key", "keys.pub", "--instance-id", "iid-test")
	if r.code != 0 || !strings.Contains(r.stderr, "qimg: ud:3: note: apt_update is deprecated") {
		t.Fatalf("%+v", r)
	}
	if tags := qemutest.Blkid(t, filepath.Join(dir, "seed.iso")); tags["LABEL"] != "cidata" || tags["TYPE"] != "iso9660" {
		t.Fatalf("blkid: %v", tags)
	}
	md := qemuIn(t, dir, "isoinfo", "-R", "-x", "/meta-data", "-i", "seed.iso")
	want := "instance-id: iid-test\nlocal-hostname: web1\npublic-keys:\n    - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKey a@b\n    - ssh-rsa AAAAB3NzaC1yc2EFake c@d\n"
	if md.stdout != want {
		t.Errorf("meta-data:\n%s\nwant:\n%s", md.stdout, want)
	}
	if got := qemuIn(t, dir, "isoinfo", "-J", "-x", "/network-config", "-i", "seed.iso"); got.stdout != "version: 2\nethernets: {nic: {match: {name: 'e*'}, dhcp4: true}}\n" {
		t.Errorf("network-config: %q", got.stdout)
	}

	r = qimgIn(t, dir, "seed", "-q", "-o", "drive.img", "--user-data", "ud", "--config-drive", "--vfat", "--hostname", "db1", "--mac", "52:54:00:aa:bb:cc")
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("%+v", r)
	}
	if tags := qemutest.Blkid(t, filepath.Join(dir, "drive.img")); tags["LABEL"] != "config-2" || tags["TYPE"] != "vfat" {
		t.Fatalf("blkid: %v", tags)
	}
	mt := qemuIn(t, dir, "mtype", "-i", "drive.img", "::/openstack/latest/meta_data.json")
	var meta map[string]any
	if err := json.Unmarshal([]byte(mt.stdout), &meta); err != nil || meta["hostname"] != "db1" || meta["uuid"] == "" {
		t.Fatalf("meta_data.json %q: %v", mt.stdout, err)
	}
}

// TestSeedRefuses: bad user-data is reported with its lines, exit 1, and
// an existing output is left as it was, with no temporary file behind.
func TestSeedRefuses(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"bad":      "#cloud-config\npakages: [vim]\nruncmd: ls\n",
		"seed.iso": "old",
		"net":      "version: 2\n",
	})
	r := qimgIn(t, dir, "seed", "-o", "seed.iso", "--user-data", "bad")
	want := "qimg: bad:2: key 'pakages' is not a cloud-config key (did you mean 'packages'?)\nqimg: bad:3: runcmd: expected a list, got a string ('ls')\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("got %+v\nwant stderr %q", r, want)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--user-data", "missing"}, "qimg: --user-data: missing: No such file or directory"},
		{[]string{"--mac", "52:54:00:aa:bb:cc"}, "--mac applies to --config-drive only"},
		{[]string{"--config-drive", "--network-config", "net"}, "a config drive takes OpenStack's network_data.json"},
		{[]string{"--ssh-key", "net"}, "is not an OpenSSH public key"},
	} {
		r := qimgIn(t, dir, append([]string{"seed", "-o", "seed.iso"}, c.args...)...)
		if r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: %+v, want %q", c.args, r, c.want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "seed.iso")); string(b) != "old" {
		t.Errorf("the old output was changed: %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("files left behind: %v", entries)
	}
}
