package sysprep

import (
	"io/fs"
	"strings"
)

// fileOps remove logs, caches, spools and temporary files.
func fileOps() []Operation {
	return []Operation{
		{Name: "logfiles", DefaultOn: true, perform: globs(logGlobs...),
			Description: "Remove log files (virt-sysprep's list: syslog, journal, audit, apt, installer logs, ...); directories stay"},
		{Name: "tmp-files", DefaultOn: true, perform: tmpFiles,
			Description: "Remove everything in /tmp and /var/tmp"},
		{Name: "crash-data", DefaultOn: true, perform: globs("/var/crash/*", "/var/log/dump/*"),
			Description: "Remove kernel crash dumps (kdump)"},
		{Name: "abrt-data", DefaultOn: true, perform: globs("/var/spool/abrt/*"),
			Description: "Remove the crash reports ABRT collected"},
		{Name: "mail-spool", DefaultOn: true, perform: globs("/var/spool/mail/*", "/var/mail/*"),
			Description: "Remove the mail in the local mail spool"},
		{Name: "cron-spool", DefaultOn: true, perform: cronSpool,
			Description: "Remove the users' cron and at jobs"},
		{Name: "utmp", DefaultOn: true, perform: files("/var/run/utmp"),
			Description: "Remove the utmp file of who is logged in"},
		{Name: "blkid-tab", DefaultOn: true, perform: files(blkidTabs...),
			Description: "Remove blkid's cache of the devices seen"},
		{Name: "backup-files", DefaultOn: true, perform: backupFiles,
			Description: "Remove editor backups (*.bak, *~) under /etc, /root, /srv, /tmp and /var"},
		{Name: "package-manager-cache", DefaultOn: true, perform: packageManagerCache,
			Description: "Remove the package manager's cache of downloaded packages (apt, dnf, yum, zypper)"},
		{Name: "rpm-db", DefaultOn: true, perform: rpmDB,
			Description: "Remove the host-specific RPM database files (__db.*), which rpm rebuilds"},
		{Name: "yum-uuid", DefaultOn: true, perform: yumUUID,
			Description: "Remove yum's UUID, which yum makes anew"},
		{Name: "pacct-log", DefaultOn: true, perform: pacctLog,
			Description: "Empty the process accounting logs"},
		{Name: "pam-data", DefaultOn: true, perform: files("/var/run/console/*", "/var/run/faillock/*", "/var/run/sepermit/*"),
			Description: "Remove PAM's console, faillock and sepermit data"},
		{Name: "puppet-data-log", DefaultOn: true, perform: files("/var/log/puppet/*", "/var/lib/puppet/*/*", "/var/lib/puppet/*/*/*"),
			Description: "Remove Puppet's data and logs"},
		{Name: "samba-db-log", DefaultOn: true, perform: files("/var/log/samba/old/*", "/var/log/samba/*", "/var/lib/samba/*/*", "/var/lib/samba/*"),
			Description: "Remove Samba's databases and logs"},
		{Name: "sssd-db-log", DefaultOn: true, perform: files("/var/log/sssd/*", "/var/lib/sss/db/*"),
			Description: "Remove SSSD's databases and logs"},
		{Name: "dovecot-data", DefaultOn: true, perform: files("/var/lib/dovecot/*"),
			Description: "Remove Dovecot's (mail server) data"},
		{Name: "firewall-rules", perform: files("/etc/sysconfig/iptables", "/etc/firewalld/services/*", "/etc/firewalld/zones/*"),
			Description: "Remove custom firewall rules (iptables, firewalld); off by default, as it may expose the guest"},
		{Name: "kerberos-data", perform: kerberosData,
			Description: "Remove the Kerberos KDC's data, keeping kadm5.acl and kdc.conf"},
	}
}

// logGlobs are the log files virt-sysprep's logfiles operation removes.
var logGlobs = []string{
	"/var/log/*.log*", "/var/log/audit/*", "/var/log/btmp*", "/var/log/cron*", "/var/log/dmesg*",
	"/var/log/lastlog*", "/var/log/maillog*", "/var/log/mail/*", "/var/log/messages*", "/var/log/secure*",
	"/var/log/spooler*", "/var/log/tallylog*", "/var/log/wtmp*", "/var/log/apache2/*_log", "/var/log/apache2/*_log-*",
	"/var/log/ntp", "/var/log/tuned/tuned.log", "/var/log/debug*", "/var/log/syslog*", "/var/log/faillog*",
	"/var/log/firewalld*", "/var/log/grubby*", "/var/log/xferlog*",
	// files of /etc/logrotate.d
	"/var/log/BackupPC/LOG", "/var/log/ceph/*.log", "/var/log/chrony/*.log", "/var/log/cups/*_log*",
	"/var/log/glusterfs/*glusterd.vol.log", "/var/log/glusterfs/glusterfs.log", "/var/log/httpd/*log",
	"/var/log/jetty/jetty-console.log", "/var/log/libvirt/libxl/*.log", "/var/log/libvirt/libvirtd.log",
	"/var/log/libvirt/lxc/*.log", "/var/log/libvirt/qemu/*.log", "/var/log/libvirt/uml/*.log",
	"/var/named/data/named.run", "/var/log/ppp/connect-errors", "/var/log/setroubleshoot/*.log", "/var/log/squid/*.log",
	"/var/lib/logrotate.status",
	// installers
	"/root/install.log", "/root/install.log.syslog", "/root/anaconda-ks.cfg", "/root/anaconda-post.log",
	"/root/initial-setup-ks.cfg", "/root/original-ks.cfg", "/var/log/anaconda.syslog", "/var/log/anaconda/*",
	"/var/log/installer/*",
	// desktop sessions, fingerprints, caches
	"/var/cache/gdm/*", "/var/lib/AccountService/users/*", "/var/lib/fprint/*", "/var/cache/fontconfig/*",
	"/var/cache/man/*", "/var/log/sa/*", "/var/log/gdm/*", "/var/log/lightdm/*", "/var/log/ntpstats/*",
	"/etc/Pegasus/*.cnf", "/etc/Pegasus/*.crt", "/etc/Pegasus/*.csr", "/etc/Pegasus/*.pem", "/etc/Pegasus/*.srl",
	"/var/log/rhsm/*", "/var/log/journal/*", "/var/log/aptitude*", "/var/log/apt/*", "/var/log/exim4/*",
	"/var/log/ConsoleKit/*",
}

var blkidTabs = []string{
	"/var/run/blkid.tab", "/var/run/blkid.tab.old", "/etc/blkid/blkid.tab", "/etc/blkid/blkid.tab.old",
	"/etc/blkid.tab", "/etc/blkid.tab.old", "/dev/.blkid.tab", "/dev/.blkid.tab.old",
}

// tmpFiles empties /tmp and /var/tmp, dot files included, keeping the
// directories (and their sticky mode).
func tmpFiles(g *guest) error {
	for _, dir := range []string{"tmp", "var/tmp"} {
		if !g.isDir(dir) {
			continue
		}
		ents, err := g.readDir(dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := g.remove(dir + "/" + e.Name()); err != nil {
				return err
			}
		}
	}
	return nil
}

// cronSpool removes user crontabs and at jobs, and resets at's job
// sequence files (.SEQ) to zero rather than removing them.
func cronSpool(g *guest) error {
	isSeq := func(base string) bool { return base == ".SEQ" }
	for _, dir := range []string{"var/spool/cron", "var/spool/at"} {
		if err := g.removeFilesUnder(dir, isSeq); err != nil {
			return err
		}
	}
	if err := g.removeFiles("/var/spool/atjobs/*", "/var/spool/atspool/*"); err != nil {
		return err
	}
	for _, seq := range []string{"var/spool/cron/atjobs/.SEQ", "var/spool/atjobs/.SEQ", "var/spool/at/.SEQ"} {
		data, ok, err := g.readConfig(seq)
		if err != nil {
			return err
		}
		if ok && string(data) != "00000\n" {
			g.logf("  Resetting /%s", seq)
			if err := g.rewrite(seq, []byte("00000\n")); err != nil {
				return err
			}
		}
	}
	return nil
}

// backupFiles removes regular files named *.bak or *~.
func backupFiles(g *guest) error {
	for _, top := range []string{"etc", "root", "srv", "tmp", "var"} {
		if fi, err := g.fs.Lstat(top); err != nil || !fi.IsDir() {
			continue // a link (/var -> elsewhere) is not followed
		}
		err := g.walk(top, func(name string, d fs.DirEntry) error {
			base := d.Name()
			if d.Type().IsRegular() && (strings.HasSuffix(base, ".bak") || strings.HasSuffix(base, "~")) {
				return g.remove(name)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// packageManagerCache removes the files of the cache of the guest's
// package manager, keeping its directories.
func packageManagerCache(g *guest) error {
	var dirs []string
	switch g.os.PackageManagement {
	case "apt":
		dirs = []string{"var/cache/apt/archives"}
		if err := g.removeFiles("/var/cache/apt/*.bin"); err != nil {
			return err
		}
	case "dnf":
		dirs = []string{"var/cache/dnf"}
	case "yum":
		dirs = []string{"var/cache/yum"}
	case "zypper":
		var err error
		if dirs, err = g.glob("/var/cache/zypp*"); err != nil {
			return err
		}
	}
	for _, d := range dirs {
		if err := g.removeFilesUnder(d, nil); err != nil {
			return err
		}
	}
	return nil
}

func rpmDB(g *guest) error {
	if g.os.PackageFormat != "rpm" {
		return nil
	}
	return g.removeFiles("/var/lib/rpm/__db.*")
}

func yumUUID(g *guest) error {
	if g.os.PackageManagement != "yum" {
		return nil
	}
	return g.removeFiles("/var/lib/yum/uuid")
}

// pacctLog removes the rotated process accounting logs and empties the
// current one (keeping its owner, mode and label), where the
// distribution keeps them.
func pacctLog(g *guest) error {
	dir := ""
	switch {
	case g.redHat():
		dir = "var/account"
	case g.distroIn("debian", "ubuntu", "kalilinux"):
		dir = "var/log/account"
	}
	if dir == "" {
		return nil
	}
	logs, err := g.glob("/" + dir + "/pacct*")
	if err != nil {
		return err
	}
	current := dir + "/pacct"
	for _, l := range logs {
		if l != current || !g.isRegular(l) {
			if err := g.remove(l); err != nil {
				return err
			}
			continue
		}
		if fi, err := g.fs.Lstat(l); err == nil && fi.Size() > 0 {
			g.logf("  Emptying /%s", l)
			if err := g.fs.Truncate(l, 0); err != nil {
				return err
			}
		}
	}
	return nil
}

func kerberosData(g *guest) error {
	names, err := g.glob("/var/kerberos/krb5kdc/*")
	if err != nil {
		return err
	}
	for _, n := range names {
		if n == "var/kerberos/krb5kdc/kadm5.acl" || n == "var/kerberos/krb5kdc/kdc.conf" || !g.isRegular(n) {
			continue
		}
		if err := g.remove(n); err != nil {
			return err
		}
	}
	return nil
}
