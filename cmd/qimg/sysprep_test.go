package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sysprepGuest copies testdata/sysprep/DISTRO (files in the formats
// that distribution and its packages write, as a booted instance leaves
// them) with the empty directories git does not keep, and makes a raw
// ext4 image of it, dir/DISTRO.raw.
func sysprepGuest(t *testing.T, dir, distro string) string {
	t.Helper()
	src := filepath.Join(dir, distro)
	testdata, err := filepath.Abs(filepath.Join("testdata/sysprep", distro))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", testdata, src).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	for _, d := range []string{"usr/bin", "tmp", "var/tmp", "var/cache/apt/archives/partial", "var/lib/cloud/scripts/per-instance", "var/lib/dhcp"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(src, "tmp"), 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	mkext4(t, dir, src, distro+".raw")
	return distro + ".raw"
}

// guestState reads a guest file back with debugfs: its contents, or
// gone when debugfs does not find it.
type guestState struct {
	t   *testing.T
	raw string
}

func (g guestState) run(cmd string) string {
	g.t.Helper()
	out, err := exec.Command("debugfs", "-R", cmd, g.raw).CombinedOutput()
	if err != nil {
		g.t.Fatalf("debugfs %s: %v\n%s", cmd, err, out)
	}
	_, rest, _ := strings.Cut(string(out), "\n") // the version banner
	return rest
}

func (g guestState) gone(paths ...string) {
	g.t.Helper()
	for _, p := range paths {
		if out := g.run("stat " + p); !strings.Contains(out, "File not found") {
			g.t.Errorf("%s is still there:\n%.200s", p, out)
		}
	}
}

func (g guestState) kept(paths ...string) {
	g.t.Helper()
	for _, p := range paths {
		if out := g.run("stat " + p); strings.Contains(out, "File not found") || !strings.Contains(out, "Inode:") {
			g.t.Errorf("%s was removed:\n%s", p, out)
		}
	}
}

func (g guestState) dirs(paths ...string) {
	g.t.Helper()
	for _, p := range paths {
		if out := g.run("stat " + p); !strings.Contains(out, "Type: directory") {
			g.t.Errorf("%s is not a directory any more:\n%.200s", p, out)
		}
	}
}

func (g guestState) contents(want map[string]string) {
	g.t.Helper()
	for p, w := range want {
		out, err := exec.Command("debugfs", "-R", "cat "+p, g.raw).Output()
		if err != nil {
			g.t.Fatalf("debugfs cat %s: %v", p, err)
		}
		if string(out) != w {
			g.t.Errorf("%s reads\n%s\nwant\n%s", p, out, w)
		}
	}
}

// sysprepRun runs qimg sysprep and returns the checked guest.
func sysprepRun(t *testing.T, dir, image string, args ...string) (guestState, result) {
	t.Helper()
	r := qimgIn(t, dir, append([]string{"sysprep"}, append(args, image)...)...)
	if r.code != 0 {
		t.Fatalf("sysprep %v: %+v", args, r)
	}
	if strings.HasSuffix(image, ".qcow2") {
		if q := qemuIn(t, dir, "qemu-img", "check", image); q.code != 0 {
			t.Fatalf("qemu-img check: %+v", q)
		}
	}
	return guestState{t, guestRaw(t, dir, image, 0)}, r
}

// cloudInitHeader starts the network files cloud-init writes.
const cloudInitHeader = `# This file is generated from information provided by the datasource.  Changes
# to it will not persist across an instance reboot.  To disable cloud-init's
# network configuration capabilities, write a file
# /etc/cloud/cloud.cfg.d/99-disable-network-config.cfg with the following:
# network: {config: disabled}
`

// commonChecks are the default operations' effect on what every test
// tree has (written by common() in the tree's recipe).
func commonChecks(g guestState, user string) {
	g.t.Helper()
	g.contents(map[string]string{"/etc/machine-id": "", "/etc/hosts": "127.0.0.1 localhost\n",
		"/etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication no\n"})
	g.gone("/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_rsa_key.pub", "/etc/ssh/ssh_host_ecdsa_key",
		"/etc/ssh/ssh_host_ed25519_key.pub", "/root/.bash_history", "/home/"+user+"/.bash_history",
		"/home/"+user+"/.ssh", "/etc/passwd-", "/etc/shadow-", "/tmp/.X11-unix", "/tmp/build.sh",
		"/var/tmp/systemd-private-4a1b-chronyd.service-Xy12", "/var/log/dmesg",
		"/var/log/journal/4a1b3c5d7e9f4a1b3c5d7e9f4a1b3c5d")
	g.kept("/home/" + user + "/.bashrc")
	g.dirs("/tmp", "/var/tmp", "/var/log", "/var/log/journal", "/home/"+user, "/etc/ssh")
	if out := g.run("stat /tmp"); !strings.Contains(out, "Mode:  01777") {
		g.t.Errorf("/tmp lost its sticky mode:\n%s", out)
	}
}

// cloudInitChecks: cloud-init's instance state is gone, the seed and
// the image's scripts stay.
func cloudInitChecks(g guestState) {
	g.t.Helper()
	g.gone("/var/lib/cloud/instance", "/var/lib/cloud/instances", "/var/lib/cloud/data", "/var/lib/cloud/sem",
		"/var/log/cloud-init.log", "/var/log/cloud-init-output.log")
	g.kept("/var/lib/cloud/scripts/per-boot/10-motd.sh", "/usr/bin/cloud-init", "/etc/cloud/cloud.cfg")
	g.dirs("/var/lib/cloud", "/var/lib/cloud/scripts/per-instance")
}

func TestSysprepUbuntu(t *testing.T) {
	dir := t.TempDir()
	raw := sysprepGuest(t, dir, "ubuntu")
	img(t, dir, "convert", "-O", "qcow2", raw, "ubuntu.qcow2")
	g, r := sysprepRun(t, dir, "ubuntu.qcow2")
	for _, line := range []string{`Performing "netplan" ...`, "Removing /etc/netplan/50-cloud-init.yaml",
		`Editing /etc/netplan/60-storage-nic.yaml: ethernets.storage0: matching name "e*" instead of macaddress fa:16:3e:71:2b:90`,
		"Emptying /etc/machine-id", "Removing /etc/ssh/ssh_host_rsa_key"} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("the log lacks %q:\n%s", line, r.stdout)
		}
	}
	commonChecks(g, "ubuntu")
	cloudInitChecks(g)
	g.kept("/var/lib/cloud/seed/nocloud/meta-data", "/var/lib/dbus/machine-id", "/var/log/landscape/sysinfo.log",
		"/etc/apt/sources.list")
	g.gone("/etc/netplan/50-cloud-init.yaml", "/var/lib/dhcp/dhclient.leases", "/var/log/syslog", "/var/log/auth.log",
		"/var/log/apt/history.log", "/var/log/apt/eipp.log.xz", "/var/log/installer/autoinstall-user-data",
		"/var/cache/apt/archives/cloud-init_23.1.2-0ubuntu0~22.04.1_all.deb", "/var/cache/apt/archives/lock",
		"/var/cache/apt/pkgcache.bin")
	g.dirs("/var/lib/dhcp", "/var/log/apt", "/var/log/installer", "/var/cache/apt/archives/partial", "/etc/netplan")
	if out := g.run("stat /var/lib/dbus/machine-id"); !strings.Contains(out, "Type: symlink") {
		t.Errorf("dbus's link to /etc/machine-id changed:\n%s", out)
	}
	g.contents(map[string]string{"/etc/netplan/60-storage-nic.yaml": `# Storage network on the second NIC
network:
  version: 2
  renderer: networkd
  ethernets:
    storage0:
      match:
        name: e*
      addresses:
        - 192.168.50.10/24
      mtu: 9000
    mgmt:
      match:
        driver: virtio_net
      set-name: mgmt0
      dhcp4: true
  bridges:
    br0:
      interfaces: [mgmt]
      dhcp4: false
`})
}

func TestSysprepCentOS7(t *testing.T) {
	dir := t.TempDir()
	g, r := sysprepRun(t, dir, sysprepGuest(t, dir, "centos7"))
	commonChecks(g, "centos")
	g.contents(map[string]string{
		"/etc/sysconfig/network": "# Created by anaconda\nNOZEROCONF=yes\n",
		"/etc/sysconfig/network-scripts/ifcfg-eth0": `# Created by cloud-init on instance boot automatically, do not edit.
#
BOOTPROTO=dhcp
DEVICE=eth0
ONBOOT=yes
TYPE=Ethernet
USERCTL=no
`,
		"/etc/sysconfig/network-scripts/ifcfg-eth1": `TYPE=Ethernet
BOOTPROTO=none
DEFROUTE=no
NAME=eth1
UUID=5fb06bd0-0bb0-7ffb-45f1-d6edd65f3e03
DEVICE=eth1
ONBOOT=yes
IPADDR=192.168.122.20
PREFIX=24
`,
		"/etc/sysconfig/network-scripts/ifcfg-lo": "DEVICE=lo\nIPADDR=127.0.0.1\nNETMASK=255.0.0.0\nNETWORK=127.0.0.0\nBROADCAST=127.255.255.255\nONBOOT=yes\nNAME=loopback\n",
		"/var/account/pacct":                      "",
		"/var/lib/rpm/Packages":                   "rpmdb",
	})
	g.gone("/etc/udev/rules.d/70-persistent-net.rules", "/var/lib/dhclient/dhclient--eth0.lease",
		"/var/lib/NetworkManager/dhclient-5fb06bd0-0bb0-7ffb-45f1-d6edd65f3e03-eth0.lease",
		"/var/cache/yum/x86_64/7/base/packages/bash-4.2.46-35.el7_9.x86_64.rpm", "/var/cache/yum/x86_64/7/base/repomd.xml",
		"/var/lib/yum/uuid", "/var/lib/rpm/__db.001", "/root/anaconda-ks.cfg", "/var/log/messages", "/var/log/secure",
		"/var/log/cron", "/var/log/yum.log", "/var/log/audit/audit.log", "/var/log/tuned/tuned.log",
		"/var/log/anaconda/anaconda.log", "/var/account/pacct-20240101.gz", "/var/spool/mail/centos",
		"/var/spool/cron/root", "/etc/krb5.keytab", "/var/crash/127.0.0.1-2024-01-11-10:40:00",
		"/etc/hosts.bak", "/etc/resolv.conf~", "/.autorelabel")
	g.kept("/etc/udev/rules.d/70-persistent-ipoib.rules", "/var/lib/NetworkManager/NetworkManager.state")
	g.dirs("/var/cache/yum/x86_64/7/base/packages", "/var/log/audit", "/var/lib/dhclient", "/var/spool/cron", "/var/crash")
	for _, line := range []string{`Editing /etc/sysconfig/network-scripts/ifcfg-eth1: removing "HWADDR=\"52:54:00:6B:3C:58\""`,
		"Editing /etc/sysconfig/network: setting NOZEROCONF=yes", "Emptying /var/account/pacct"} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("the log lacks %q:\n%s", line, r.stdout)
		}
	}
}

func TestSysprepRocky9(t *testing.T) {
	dir := t.TempDir()
	g, r := sysprepRun(t, dir, sysprepGuest(t, dir, "rocky9"))
	commonChecks(g, "rocky")
	cloudInitChecks(g)
	g.contents(map[string]string{
		"/etc/sysconfig/network": "NOZEROCONF=yes\n",
		"/.autorelabel":          "", // /etc/sysconfig/network is new, and unlabelled
		"/etc/NetworkManager/system-connections/storage.nmconnection": `[connection]
id=storage
uuid=2c6f2b9e-5a0c-4c8b-9f1e-3d6a7c8b9e0f
type=ethernet
autoconnect-priority=-999

[ethernet]
cloned-mac-address=stable

[ipv4]
address1=192.168.50.11/24
method=manual

[ipv6]
addr-gen-mode=eui64
method=auto

[proxy]
`,
		"/etc/NetworkManager/system-connections/bridge-br0.nmconnection": `[connection]
id=bridge-br0
uuid=0d2a5c1e-8f3b-4a6d-9c7e-1b2f3a4d5e6f
type=bridge
interface-name=br0

[ethernet]

[bridge]
stp=false

[ipv4]
method=auto
`,
	})
	g.gone("/etc/NetworkManager/system-connections/cloud-init-eth0.nmconnection",
		"/var/lib/NetworkManager/internal-2c6f2b9e-5a0c-4c8b-9f1e-3d6a7c8b9e0f-eth0.lease",
		"/etc/lvm/devices/system.devices", "/var/cache/dnf/baseos-044cae74d71fe9ea/repodata/repomd.xml",
		"/var/cache/dnf/baseos-044cae74d71fe9ea/packages/bash-5.1.8-6.el9_1.x86_64.rpm", "/var/cache/dnf/expired_repos.json",
		"/var/lib/systemd/random-seed", "/var/log/dnf.log", "/var/log/hawkey.log", "/var/log/firewalld")
	g.kept("/var/lib/NetworkManager/secret_key", "/etc/lvm/lvm.conf", "/etc/firewalld/zones/public.xml")
	g.dirs("/var/cache/dnf/baseos-044cae74d71fe9ea/packages", "/etc/lvm/devices")
	if !strings.Contains(r.stdout, "Warning: /home is a separate filesystem (/dev/mapper/rl-home)") {
		t.Errorf("no warning about the separate /home:\n%s", r.stdout)
	}
}

func TestSysprepDebian12(t *testing.T) {
	dir := t.TempDir()
	g, _ := sysprepRun(t, dir, sysprepGuest(t, dir, "debian12"))
	commonChecks(g, "debian")
	cloudInitChecks(g)
	g.contents(map[string]string{
		// cloud-init's network configuration is off, so it will not
		// write these again: they are edited, not removed.
		"/etc/network/interfaces.d/50-cloud-init": cloudInitHeader + `auto lo
iface lo inet loopback

auto eth0
iface eth0 inet dhcp

auto eth1
iface eth1 inet static
    address 192.168.50.12/24
    mtu 9000
`,
		"/etc/netplan/50-cloud-init.yaml": cloudInitHeader + `network:
  version: 2
  ethernets:
    eth0:
      match:
        name: eth*
      dhcp4: true
`,
		"/etc/systemd/network/20-lan0.network":                 "[Match]\nType=ether\n\n[Network]\nDHCP=yes\n",
		"/etc/systemd/network/30-wired.network":                "[Match]\nName=en*\n\n[Link]\nRequiredForOnline=no\n\n[Network]\nAddress=192.168.60.2/24\n",
		"/etc/systemd/network/25-br0.netdev":                   "[NetDev]\nName=br0\nKind=bridge\n",
		"/etc/systemd/network/99-default.link":                 "[Match]\nOriginalName=*\n\n[Link]\nNamePolicy=keep kernel database onboard slot path\nMACAddressPolicy=persistent\n",
		"/var/spool/cron/atjobs/.SEQ":                          "00000\n",
		"/var/log/account/pacct":                               "",
		"/etc/network/interfaces":                              "# This file describes the network interfaces available on your system\n# and how to activate them. For more information, see interfaces(5).\n\nsource /etc/network/interfaces.d/*\n\n# The loopback network interface\nauto lo\niface lo inet loopback\n",
		"/etc/cloud/cloud.cfg.d/99-disable-network-config.cfg": "network: {config: disabled}\n",
	})
	g.gone("/etc/systemd/network/10-lan0.link", "/var/lib/dhcp/dhclient.eth0.leases", "/var/lib/urandom/random-seed",
		"/var/log/account/pacct.0", "/var/spool/cron/crontabs/root", "/var/spool/cron/atjobs/a0000f01b2c3d4",
		"/var/mail/debian", "/var/cache/apt/archives/openssh-server_1%3a9.2p1-2+deb12u1_amd64.deb", "/var/log/dpkg.log")
	g.dirs("/var/spool/cron/crontabs", "/var/mail", "/var/lib/dhcp")
}

func TestSysprepOpenSUSE(t *testing.T) {
	dir := t.TempDir()
	g, _ := sysprepRun(t, dir, sysprepGuest(t, dir, "opensuse"))
	g.contents(map[string]string{
		"/etc/sysconfig/network/ifcfg-eth0": "BOOTPROTO='dhcp'\nSTARTMODE='auto'\nZONE=public\n",
		"/etc/sysconfig/network/config":     "NETCONFIG_DNS_POLICY=\"auto\"\n",
		"/etc/machine-id":                   "",
	})
	g.gone("/var/cache/zypp/packages/repo-oss/x86_64/bash-4.4-150400.25.22.x86_64.rpm",
		"/var/cache/zypp/raw/repo-oss/repodata/repomd.xml", "/var/log/zypper.log", "/etc/sysconfig/network/NOZEROCONF")
	g.dirs("/var/cache/zypp/packages/repo-oss/x86_64")
}

// TestSysprepSelection: --operations and --enable run exactly the
// operations named; a dry run prints every change and changes no byte.
func TestSysprepSelection(t *testing.T) {
	dir := t.TempDir()
	raw := sysprepGuest(t, dir, "centos7")
	img(t, dir, "convert", "-O", "qcow2", raw, "c7.qcow2")
	before := fileSum(t, filepath.Join(dir, "c7.qcow2"))
	r := qimgIn(t, dir, "sysprep", "--dry-run", "-a", "c7.qcow2")
	if r.code != 0 || !strings.Contains(r.stdout, "Dry run") || !strings.Contains(r.stdout, "Removing /etc/ssh/ssh_host_rsa_key") ||
		!strings.Contains(r.stdout, "Editing /etc/sysconfig/network: setting NOZEROCONF=yes") {
		t.Fatalf("dry run: %+v", r)
	}
	if fileSum(t, filepath.Join(dir, "c7.qcow2")) != before {
		t.Fatal("a dry run changed the image")
	}
	g, r := sysprepRun(t, dir, "c7.qcow2", "--operations", "ssh-hostkeys,machine-id", "--operation", "bash-history,-machine-id")
	if strings.Contains(r.stdout, `"machine-id"`) || strings.Count(r.stdout, "Performing") != 2 {
		t.Errorf("ran other operations:\n%s", r.stdout)
	}
	g.gone("/etc/ssh/ssh_host_rsa_key", "/root/.bash_history")
	g.contents(map[string]string{"/etc/machine-id": "4a1b3c5d7e9f4a1b3c5d7e9f4a1b3c5d\n", "/etc/sysconfig/network": "# Created by anaconda\n"})
	g.kept("/var/log/messages", "/etc/udev/rules.d/70-persistent-net.rules")

	g, r = sysprepRun(t, dir, "c7.qcow2", "--enable", "flag-reconfiguration,udev-persistent-net")
	if !strings.Contains(r.stdout, "selinux-relabel was not selected") {
		t.Errorf("no warning about the unlabelled /.unconfigured:\n%s", r.stdout)
	}
	g.gone("/etc/udev/rules.d/70-persistent-net.rules", "/.autorelabel")
	g.kept("/var/log/messages", "/.unconfigured")

	// A new file (/etc/sysconfig/network) on this SELinux guest makes
	// selinux-relabel ask for a relabel.
	if r := qimgIn(t, dir, "inject", "c7.qcow2", "--delete", "/etc/sysconfig/network"); r.code != 0 {
		t.Fatalf("inject: %+v", r)
	}
	g, r = sysprepRun(t, dir, "c7.qcow2", "-q", "--operations", "all,-all,selinux-relabel,nozeroconf")
	if r.stdout != "" {
		t.Errorf("-q printed:\n%s", r.stdout)
	}
	g.contents(map[string]string{"/etc/sysconfig/network": "NOZEROCONF=yes\n", "/.autorelabel": ""})
}

func TestSysprepErrors(t *testing.T) {
	dir := t.TempDir()
	r := qimgIn(t, dir, "sysprep", "--list-operations")
	if r.code != 0 || !strings.Contains(r.stdout, "machine-id * Empty /etc/machine-id") ||
		!strings.Contains(r.stdout, "firewall-rules   Remove") {
		t.Errorf("--list-operations: %+v", r)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--operations", "machine-id,nosuch", "x.img"}, `"nosuch" is not a known operation; the operations are: abrt-data, backup-files`},
		{[]string{"--operations", "lvm-uuids", "x.img"}, "qimg does not rewrite LVM metadata"},
		{[]string{"--enable", "defaults", "x.img"}, `"defaults" is not a known operation`},
		{[]string{"--operations", "machine-id,", "x.img"}, "empty operation name"},
		{[]string{"--operations", "-all", "x.img"}, "no operation selected"},
		{[]string{}, "Expecting an image"},
		{[]string{"-a", "x.img", "y.img"}, "not both"},
	} {
		r := qimgIn(t, dir, append([]string{"sysprep"}, c.args...)...)
		if r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: %+v, want exit 1 and %q", c.args, r, c.want)
		}
	}
	// A filesystem with no operating system on it is not a guest.
	src := filepath.Join(dir, "data")
	os.MkdirAll(filepath.Join(src, "files"), 0o755)
	mkext4(t, dir, src, "data.raw")
	before := fileSum(t, filepath.Join(dir, "data.raw"))
	if r := qimgIn(t, dir, "sysprep", "data.raw"); r.code != 1 || !strings.Contains(r.stderr, "no Linux operating system") {
		t.Errorf("data disk: %+v", r)
	}
	if fileSum(t, filepath.Join(dir, "data.raw")) != before {
		t.Error("a refused sysprep changed the image")
	}
}
