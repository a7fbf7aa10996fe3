package main

import (
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The end-to-end proof of the cloud-ready work (issue 15), as a user
// makes a template out of a guest that has run once: the bootable Debian
// 12 of scripts/boot-image.sh gets what a booted instance leaves behind,
// then `qimg sysprep` (defaults), `qimg inject` (hostname, root's ssh
// key, a marker file), `qimg seed` and `qimg boot-test --local` with a
// MAC the guest has never seen, under TCG. sysprep runs before inject,
// as virt-sysprep runs its customizations last: its default ssh-userdir
// operation removes /root/.ssh, the key inject adds.

// oldMAC is the MAC address of the NIC the planted instance ran with.
const oldMAC = "52:54:00:12:34:56"

// plantedMachineID is the machine-id the planted instance had.
const plantedMachineID = "c2c7a492701a49109d73e3032b3c37dc"

// plantedHostKey is the base64 part of the planted ed25519 host key.
const plantedHostKey = "AAAAC3NzaC1lZDI1NTE5AAAAIFPlantedHostKeyOfTheOldInstanceQimgE2E0"

// bootedInstance is what a boot of the image leaves in it: the files
// are those a TCG boot with a NoCloud seed and the MAC oldMAC wrote
// (read back with qimg copy-out; the ssh host keys shortened), plus the
// MAC-bound files the network stacks of other cloud images write for
// the same NIC: cloud-init's netplan file (Ubuntu), an administrator's
// netplan file, and systemd-networkd .link/.network files. A value
// starting with "->" makes a symbolic link.
var bootedInstance = map[string]string{
	"etc/machine-id":                           plantedMachineID + "\n",
	"var/lib/dbus/machine-id":                  "->/etc/machine-id",
	"etc/udev/rules.d/70-persistent-net.rules": `SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{address}=="` + oldMAC + `", NAME="ens3"` + "\n",
	"etc/network/interfaces.d/50-cloud-init": cloudInitHeader + `auto lo
iface lo inet loopback

auto ens3
iface ens3 inet dhcp
`,
	"etc/netplan/50-cloud-init.yaml": cloudInitHeader + `network:
    ethernets:
        ens3:
            dhcp4: true
            match:
                macaddress: ` + oldMAC + `
            set-name: ens3
    version: 2
`,
	"etc/netplan/01-lan.yaml": `network:
  version: 2
  ethernets:
    lan0:
      match:
        macaddress: "` + oldMAC + `"
      set-name: lan0
      dhcp4: true
`,
	"etc/systemd/network/10-lan.link":                                              "[Match]\nMACAddress=" + oldMAC + "\n\n[Link]\nName=lan0\n",
	"etc/systemd/network/20-lan.network":                                           "[Match]\nMACAddress=" + oldMAC + "\n\n[Network]\nDHCP=ipv4\n",
	"etc/ssh/ssh_host_ed25519_key":                                                 "-----BEGIN OPENSSH PRIVATE KEY-----\nplanted\n-----END OPENSSH PRIVATE KEY-----\n",
	"etc/ssh/ssh_host_ed25519_key.pub":                                             "ssh-ed25519 " + plantedHostKey + " root@explore\n",
	"etc/ssh/ssh_host_rsa_key":                                                     "-----BEGIN OPENSSH PRIVATE KEY-----\nplanted\n-----END OPENSSH PRIVATE KEY-----\n",
	"etc/ssh/ssh_host_rsa_key.pub":                                                 "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQPlanted root@explore\n",
	"var/lib/cloud/instance":                                                       "->/var/lib/cloud/instances/iid-6c71b4c2326846b8",
	"var/lib/cloud/instances/iid-6c71b4c2326846b8/datasource":                      "DataSourceNoCloud: DataSourceNoCloud [seed=/dev/sr0][dsmode=net]\n",
	"var/lib/cloud/instances/iid-6c71b4c2326846b8/boot-finished":                   "125.05 - Sun, 06 Dec 2026 11:50:28 +0000 - v. 22.4.2\n",
	"var/lib/cloud/instances/iid-6c71b4c2326846b8/sem/config_ssh":                  "1765021769.1\n",
	"var/lib/cloud/instances/iid-6c71b4c2326846b8/sem/config_set_hostname":         "1765021769.2\n",
	"var/lib/cloud/instances/iid-6c71b4c2326846b8/sem/config_scripts_per_instance": "1765021820.9\n",
	"var/lib/cloud/data/instance-id":                                               "iid-6c71b4c2326846b8\n",
	"var/lib/cloud/data/previous-instance-id":                                      "iid-6c71b4c2326846b8\n",
	"var/lib/cloud/data/set-hostname":                                              `{"fqdn": "explore", "hostname": "explore"}`,
	"var/lib/cloud/sem/config_scripts_per_once.once":                               "1765021820.95\n",
	"var/lib/dhcp/dhclient.ens3.leases": `lease {
  interface "ens3";
  fixed-address 10.0.2.15;
  option subnet-mask 255.255.255.0;
  option routers 10.0.2.2;
  option dhcp-lease-time 86400;
  option dhcp-server-identifier 10.0.2.2;
  option domain-name-servers 10.0.2.3;
  renew 0 2026/12/06 22:10:52;
  rebind 1 2026/12/07 08:49:26;
  expire 1 2026/12/07 11:49:26;
}
`,
	"var/log/cloud-init.log":        "2026-12-06 11:49:16,000 - util.py[DEBUG]: Cloud-init v. 22.4.2 running 'init-local'\n",
	"var/log/cloud-init-output.log": "Cloud-init v. 22.4.2 finished at Sun, 06 Dec 2026 11:50:28 +0000.\n",
	"var/lib/systemd/random-seed":   "planted random seed of the old instance\n",
}

// goneAfterSysprep are the planted paths the default operations remove.
// (/var/lib/dbus/machine-id stays: a link to the emptied /etc/machine-id
// holds no identity.)
var goneAfterSysprep = []string{
	"/etc/udev/rules.d/70-persistent-net.rules",
	"/etc/network/interfaces.d/50-cloud-init",
	"/etc/netplan/50-cloud-init.yaml",
	"/etc/systemd/network/10-lan.link", // matched by MAC only: it would rename every NIC
	"/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key.pub",
	"/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_rsa_key.pub",
	"/var/lib/cloud/instance", "/var/lib/cloud/instances", "/var/lib/cloud/data", "/var/lib/cloud/sem",
	"/var/lib/dhcp/dhclient.ens3.leases",
	"/var/log/cloud-init.log", "/var/log/cloud-init-output.log",
	"/var/lib/systemd/random-seed",
}

// e2eKey is the key qimg inject gives root.
const e2eKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2eQimgInjectedRootKeyForTheBootTest0000000 qimg-e2e@test"

// e2eUserData prints, from inside the booted guest, what the test
// checks: the marker file, the host name, each NIC with its MAC and
// IPv4 address, the machine-id, the ssh host key and root's key.
const e2eUserData = `#cloud-config
runcmd:
  - - sh
    - -c
    - |
      say() { echo "QIMG-E2E $*" >/dev/ttyS0; }
      say "marker=[$(cat /etc/qimg-e2e-marker)]"
      say "hostname=$(hostname)"
      for d in /sys/class/net/*; do
        n=${d##*/}
        [ "$n" = lo ] || say "nic=$n mac=$(cat $d/address) ipv4=$(ip -o -4 addr show dev $n scope global | awk '{print $4}')"
      done
      say "machine-id=$(cat /etc/machine-id)"
      say "hostkey=$(cut -d' ' -f2 /etc/ssh/ssh_host_ed25519_key.pub)"
      say "root-ssh=$(stat -c %a /root/.ssh) $(stat -c '%a %U' /root/.ssh/authorized_keys) $(grep -c qimg-e2e@test /root/.ssh/authorized_keys)"
`

// TestCloudReady prepares the image once and boots it twice, in
// parallel: with a NoCloud seed and with an OpenStack config drive.
func TestCloudReady(t *testing.T) {
	g := cachedGuest(t, "boot-image.sh")
	bin := qimgBinary(t)
	dir := t.TempDir()
	guest := filepath.Join(dir, "guest.qcow2")
	copyFile(t, g.image, guest)
	plantInstance(t, bin, dir)
	run := func(args ...string) string {
		t.Helper()
		r := qemuIn(t, dir, bin, args...)
		if r.code != 0 {
			t.Fatalf("qimg %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r.stdout
	}
	t.Logf("qimg sysprep:\n%s", run("sysprep", "guest.qcow2"))
	marker := "qimg-e2e branch=" + gitBranch(t) + " nonce=" + randomHex(t, 8)
	writeFile(t, filepath.Join(dir, "marker"), marker+"\n")
	run("inject", "guest.qcow2", "--hostname", "qimg-e2e", "--ssh-inject", "root:string:"+e2eKey,
		"--upload", "marker:/etc/qimg-e2e-marker")
	checkPrepared(t, dir, g.rootOffset, marker)
	if t.Failed() {
		return
	}
	writeFile(t, filepath.Join(dir, "user-data"), e2eUserData)
	for _, c := range []struct {
		name, datasource string
		seedArgs         []string
	}{
		{"nocloud", `DataSourceNoCloud \[seed=/dev/sr0\]`, nil},
		{"config-drive", `DataSourceConfigDrive \[net,ver=2\]\[source=/dev/sr0\]`, []string{"--config-drive"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			mac := newMAC(t)
			seed := filepath.Join(dir, c.name+".iso")
			args := append([]string{"seed", "-q", "-o", seed, "--user-data", "user-data"}, c.seedArgs...)
			if c.seedArgs != nil {
				args = append(args, "--mac", mac) // network_data.json, as Nova writes it for the port
			}
			run(args...)
			bootAndCheck(t, bin, dir, seed, mac, marker, c.datasource)
		})
	}
}

// plantInstance copies bootedInstance into the guest with qimg inject
// --copy-in, the way a user would add files.
func plantInstance(t *testing.T, bin, dir string) {
	t.Helper()
	tree := filepath.Join(dir, "plant")
	for p, content := range bootedInstance {
		host := filepath.Join(tree, p)
		if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(content, "->"); ok {
			err = os.Symlink(target, host)
		} else {
			mode := fs.FileMode(0o644)
			if strings.Contains(p, "_key") && !strings.HasSuffix(p, ".pub") {
				mode = 0o600
			}
			err = os.WriteFile(host, []byte(content), mode)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	r := qemuIn(t, dir, bin, "inject", "-q", "guest.qcow2", "--copy-in", "plant/etc:/", "--copy-in", "plant/var:/")
	if r.code != 0 {
		t.Fatalf("planting the booted instance: %+v", r)
	}
}

// checkPrepared judges the prepared image with qemu-img check, e2fsck
// and debugfs: what sysprep removes is gone, the MAC address is nowhere
// in /etc, the files it edits are unbound, and inject's edits are there.
func checkPrepared(t *testing.T, dir string, off int64, marker string) {
	t.Helper()
	if r := qemuIn(t, dir, "qemu-img", "check", "guest.qcow2"); r.code != 0 {
		t.Fatalf("qemu-img check: %+v", r)
	}
	raw := guestRaw(t, dir, "guest.qcow2", off) // the root partition, checked by e2fsck -fn
	defer os.Remove(strings.TrimSuffix(raw, ".part"))
	defer os.Remove(raw)
	g := guestState{t, raw}
	g.gone(goneAfterSysprep...)
	g.contents(map[string]string{
		"/etc/machine-id":            "",
		"/etc/hostname":              "qimg-e2e\n",
		"/etc/qimg-e2e-marker":       marker + "\n",
		"/root/.ssh/authorized_keys": e2eKey + "\n",
	})
	for p, want := range map[string]string{
		"/etc/hosts":                          "127.0.1.1\tqimg-e2e",
		"/etc/systemd/network/20-lan.network": "[Match]\nType=ether\n", // was MACAddress=
		"/etc/netplan/01-lan.yaml":            "dhcp4: true",
	} {
		if got := g.run("cat " + p); !strings.Contains(got, want) {
			t.Errorf("%s lacks %q:\n%s", p, want, got)
		}
	}
	for p, want := range map[string]string{"/root/.ssh": "0700", "/root/.ssh/authorized_keys": "0600"} {
		if st := debugfsStat(t, raw, 0, p); st["Mode:"] != want || st["User:"] != "0" {
			t.Errorf("%s: mode %s uid %s, want %s root", p, st["Mode:"], st["User:"], want)
		}
	}
	macNowhereIn(t, raw, "/etc")
}

// macNowhereIn dumps a guest directory with debugfs and fails on every
// file that still names oldMAC (in any case, with or without colons).
func macNowhereIn(t *testing.T, raw, guestDir string) {
	t.Helper()
	dump := t.TempDir()
	debugfsAt(t, raw, 0, "rdump "+guestDir+" "+dump)
	re := regexp.MustCompile(`(?i)` + strings.ReplaceAll(oldMAC, ":", "[:-]?"))
	files := 0
	err := filepath.WalkDir(dump, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		files++
		b, err := os.ReadFile(p)
		if err == nil && re.Match(b) {
			t.Errorf("%s still names %s:\n%s", strings.TrimPrefix(p, dump), oldMAC, b)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Errorf("only %d files in the guest's %s", files, guestDir)
	}
}

// bootAndCheck boots the prepared image with the seed and a new MAC and
// checks, from the console, what the guest printed about itself.
func bootAndCheck(t *testing.T, bin, dir, seed, mac, marker, datasource string) {
	t.Helper()
	console := filepath.Join(t.TempDir(), "console.log")
	expect := []string{
		`QIMG-E2E marker=\[` + regexp.QuoteMeta(marker) + `\]`,
		`QIMG-E2E hostname=qimg-e2e\s*$`,
		`QIMG-E2E nic=\S+ mac=` + regexp.QuoteMeta(mac) + ` ipv4=10\.0\.2\.15/24`,
		`QIMG-E2E machine-id=[0-9a-f]{32}`,
		`QIMG-E2E hostkey=\S+`,
		`QIMG-E2E root-ssh=700 600 root 1`,
		`Cloud-init .* finished at .*` + datasource,
	}
	// Two TCG guests at once beside the rest of CI take about 250 s on
	// a loaded 2-core machine; the default 10 minutes leaves too little.
	args := []string{"boot-test", "--local", "guest.qcow2", "--seed", seed, "--mac", mac, "--log", console, "--timeout", "15m"}
	for _, e := range expect {
		args = append(args, "--expect", e)
	}
	r := qemuIn(t, dir, bin, args...)
	t.Logf("qimg boot-test:\n%s", r.stdout)
	if r.code != 0 {
		t.Fatalf("boot-test: exit %d\n%s", r.code, r.stderr)
	}
	for _, phase := range []string{"cloud-init started", "login prompt", "cloud-init finished"} {
		if !strings.Contains(r.stdout, "  "+phase+" ") {
			t.Errorf("boot-test did not report %q", phase)
		}
	}
	log := string(readFile(t, console))
	if strings.Contains(log, "QIMG-E2E machine-id="+plantedMachineID) {
		t.Error("the guest booted with the planted machine-id")
	}
	if strings.Contains(log, "QIMG-E2E hostkey="+plantedHostKey) {
		t.Error("the guest booted with the planted ssh host key")
	}
	if n := strings.Count(log, "QIMG-E2E nic="); n != 1 {
		t.Errorf("the guest printed %d NICs, want the one it has", n)
	}
}

// newMAC is a random unicast, locally administered MAC address.
func newMAC(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	b[0] = b[0]&^0x01 | 0x02
	return net.HardwareAddr(b).String()
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// gitBranch is the branch the tests run on ("HEAD" when detached).
func gitBranch(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("git", "rev-parse", "--abbrev-ref", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
