package sysprep

import "bytes"

// identityOps remove what makes a guest one machine: its machine ID, its
// ssh host keys, its random seed, the traces of its users.
func identityOps() []Operation {
	return []Operation{
		{Name: "machine-id", DefaultOn: true, perform: machineID,
			Description: "Empty /etc/machine-id (systemd makes a new one at boot) and remove dbus's copy"},
		{Name: "ssh-hostkeys", DefaultOn: true, perform: sshHostKeys,
			Description: "Remove the SSH host keys, so each clone makes its own"},
		{Name: "ssh-userdir", DefaultOn: true, perform: globs("/home/*/.ssh", "/root/.ssh"),
			Description: "Remove the .ssh directories of root and the users in /home (authorized keys too)"},
		{Name: "random-seed", DefaultOn: true, perform: globs("/var/lib/systemd/random-seed", "/var/lib/random-seed", "/var/lib/urandom/random-seed"),
			Description: "Remove the saved random seed, which clones would otherwise share"},
		{Name: "bash-history", DefaultOn: true, perform: files("/home/*/.bash_history", "/root/.bash_history"),
			Description: "Remove the bash history of root and the users in /home"},
		{Name: "zsh-history", DefaultOn: true, perform: files("/home/*/.zsh_history", "/root/.zsh_history"),
			Description: "Remove the zsh history of root and the users in /home"},
		{Name: "passwd-backups", DefaultOn: true, perform: files("/etc/group-", "/etc/gshadow-", "/etc/passwd-", "/etc/shadow-", "/etc/subuid-", "/etc/subgid-"),
			Description: "Remove /etc/passwd- and the other backups of the account files"},
		{Name: "kerberos-hostkeytab", DefaultOn: true, perform: files("/etc/krb5.keytab"),
			Description: "Remove the Kerberos host keytab"},
		{Name: "smolt-uuid", DefaultOn: true, perform: files("/etc/sysconfig/hw-uuid", "/etc/smolt/uuid", "/etc/smolt/hw-uuid"),
			Description: "Remove the Smolt hardware UUID"},
		{Name: "lvm-system-devices", DefaultOn: true, perform: files("/etc/lvm/devices/system.devices"),
			Description: "Remove LVM's system.devices, whose disk IDs a clone does not have"},
		{Name: "flag-reconfiguration", perform: flagReconfiguration,
			Description: "Create /.unconfigured, so the first boot asks for the root password, time zone and so on"},
	}
}

// globs is an operation removing what the patterns match, directories
// with their contents.
func globs(patterns ...string) func(*guest) error {
	return func(g *guest) error { return g.removeGlobs(patterns...) }
}

// files is an operation removing the files and links the patterns
// match, never a directory.
func files(patterns ...string) func(*guest) error {
	return func(g *guest) error { return g.removeFiles(patterns...) }
}

// machineID empties /etc/machine-id rather than removing it: systemd
// then makes a new ID at boot and can write it even when /etc is
// mounted read-only at that point. dbus's old copy is removed; a link
// (to /etc/machine-id, as Debian and Fedora make it) is kept.
func machineID(g *guest) error {
	if fi, err := g.fs.Lstat("etc/machine-id"); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
		g.logf("  Emptying /etc/machine-id")
		if err := g.fs.Truncate("etc/machine-id", 0); err != nil {
			return err
		}
	}
	if g.isRegular("var/lib/dbus/machine-id") {
		return g.remove("var/lib/dbus/machine-id")
	}
	return nil
}

// sshHostKeys removes /etc/ssh/*_host_*, and warns when nothing in the
// guest will make new keys at boot.
func sshHostKeys(g *guest) error {
	keys, err := g.glob("/etc/ssh/*_host_*")
	if err != nil || len(keys) == 0 {
		return err
	}
	for _, k := range keys {
		if err := g.remove(k); err != nil {
			return err
		}
	}
	if g.distroIn("debian", "ubuntu", "linuxmint", "kalilinux") && !g.cloudInitInstalled() {
		g.logf("  Warning: this guest has no cloud-init and Debian's sshd does not make host keys at boot;" +
			" add them back with qimg customize --firstboot-command 'dpkg-reconfigure openssh-server'")
	}
	return nil
}

func flagReconfiguration(g *guest) error {
	if ok, err := g.exists(".unconfigured"); ok || err != nil {
		return err
	}
	return g.create(".unconfigured", nil, 0o644)
}

// selinuxRelabel creates /.autorelabel when other operations created
// files on a guest with SELinux enabled: qimg does not compute their
// labels, so the guest relabels itself at the next boot.
func selinuxRelabel(g *guest) error {
	if !g.created || !g.selinuxEnabled() {
		return nil
	}
	if ok, err := g.exists(".autorelabel"); ok || err != nil {
		return err
	}
	g.logf("  SELinux guest with new files: relabelling at the next boot")
	return g.create(".autorelabel", nil, 0o644)
}

// selinuxEnabled reads SELINUX= in /etc/selinux/config.
func (g *guest) selinuxEnabled() bool {
	cfg, ok, _ := g.readConfig("etc/selinux/config")
	if !ok {
		return false
	}
	for _, line := range splitLines(cfg) {
		if v, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("SELINUX=")); ok {
			v = bytes.Trim(bytes.TrimSpace(v), `"'`)
			return len(v) > 0 && !bytes.Equal(v, []byte("disabled"))
		}
	}
	return false
}
