package customize

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/GehirnInc/crypt/sha512_crypt"
	"github.com/qimg/qimg/internal/lazyregexp"
)

// The system options of virt-customize: they edit the guest's
// configuration files, never run anything in it.

// hostnameRE is what a hostname (or FQDN) may be (RFC 1123 labels).
var hostnameRE = lazyregexp.New(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

// setHostname writes /etc/hostname, the 127.0.1.1 line of /etc/hosts,
// and the RHEL and SUSE files when the guest has them.
func (g *Guest) setHostname(name string) error {
	if len(name) > 253 || !hostnameRE.MatchString(name) {
		return fmt.Errorf("%q is not a valid hostname", name)
	}
	short, _, _ := strings.Cut(name, ".")
	if err := g.writeKeepingMode("etc/hostname", name+"\n"); err != nil {
		return err
	}
	hosts, _ := fs.ReadFile(g.FS, "etc/hosts")
	if err := g.writeKeepingMode("etc/hosts", setHostsLine(string(hosts), name, short)); err != nil {
		return err
	}
	if _, err := g.FS.Stat("etc/sysconfig/network"); err == nil {
		if err := g.setShellVar("etc/sysconfig/network", "HOSTNAME", name); err != nil {
			return err
		}
	}
	if _, err := g.FS.Stat("etc/HOSTNAME"); err == nil { // SUSE
		return g.writeKeepingMode("etc/HOSTNAME", name+"\n")
	}
	return nil
}

// setHostsLine makes the 127.0.1.1 line name the host, as Debian's
// installer writes it, keeping every other line.
func setHostsLine(hosts, fqdn, short string) string {
	line := "127.0.1.1\t" + fqdn
	if short != fqdn {
		line += " " + short
	}
	var out []string
	done := false
	for _, l := range strings.Split(strings.TrimSuffix(hosts, "\n"), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "127.0.1.1" {
			if !done {
				out = append(out, line)
				done = true
			}
			continue
		}
		if l != "" || len(out) > 0 {
			out = append(out, l)
		}
	}
	if !done {
		out = append(out, line)
	}
	return strings.Join(out, "\n") + "\n"
}

// setShellVar sets KEY=value in a shell-style configuration file,
// replacing an existing assignment or adding one.
func (g *Guest) setShellVar(name, key, value string) error {
	old, err := fs.ReadFile(g.FS, name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var out []string
	done := false
	for _, l := range strings.Split(strings.TrimSuffix(string(old), "\n"), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), key+"=") {
			if !done {
				out = append(out, key+"="+value)
				done = true
			}
			continue
		}
		if l != "" || len(out) > 0 {
			out = append(out, l)
		}
	}
	if !done {
		out = append(out, key+"="+value)
	}
	return g.writeKeepingMode(name, strings.Join(out, "\n")+"\n")
}

// writeKeepingMode replaces a file's contents (a new file is root 0644).
func (g *Guest) writeKeepingMode(name, content string) error {
	n, err := g.resolve(name)
	if err != nil {
		return err
	}
	return g.write(n, strings.NewReader(content), int64(len(content)))
}

// passwordHash turns a virt-customize password selector into the
// /etc/shadow field: password:PASS, file:FILE (its first line), random
// (printed to the log), disabled (no password login), locked (the
// current hash kept behind "!"), or locked:SELECTOR.
func (g *Guest) passwordHash(user, selector, current string) (string, error) {
	if rest, ok := strings.CutPrefix(selector, "locked:"); ok {
		h, err := g.passwordHash(user, rest, current)
		return "!" + h, err
	}
	switch kind, arg, _ := strings.Cut(selector, ":"); kind {
	case "password":
		return sha512Crypt(arg)
	case "file":
		b, err := os.ReadFile(arg)
		if err != nil {
			return "", err
		}
		first, _, _ := strings.Cut(string(b), "\n")
		return sha512Crypt(strings.TrimSuffix(first, "\r"))
	case "random":
		pw := randomPassword()
		g.logf("Setting random password of %s to %s", user, pw)
		return sha512Crypt(pw)
	case "disabled":
		return "*", nil
	case "locked":
		return "!" + strings.TrimPrefix(current, "!"), nil
	}
	return "", fmt.Errorf("password selector %q: expected password:PASS, file:FILE, random, disabled, locked or locked:SELECTOR", selector)
}

// sha512Crypt hashes a password as glibc's crypt does with $6$ and a
// random 16-character salt.
func sha512Crypt(pw string) (string, error) {
	return sha512Salted(pw, randomSalt())
}

func sha512Salted(pw, salt string) (string, error) {
	return sha512_crypt.New().Generate([]byte(pw), []byte("$6$"+salt))
}

const saltChars = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func randomSalt() string { return randomString(16, saltChars) }

func randomPassword() string {
	return randomString(16, "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
}

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// setPassword sets a user's hash in /etc/shadow and the date of the
// change, keeping the file's owner and mode.
func (g *Guest) setPassword(user, selector string) error {
	shadow, err := fs.ReadFile(g.FS, "etc/shadow")
	if err != nil {
		return fmt.Errorf("reading /etc/shadow: %w", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(shadow), "\n"), "\n")
	for i, l := range lines {
		f := strings.Split(l, ":")
		if len(f) < 3 || f[0] != user {
			continue
		}
		h, err := g.passwordHash(user, selector, f[1])
		if err != nil {
			return err
		}
		f[1] = h
		f[2] = strconv.FormatInt(time.Now().Unix()/86400, 10)
		lines[i] = strings.Join(f, ":")
		return g.writeKeepingMode("etc/shadow", strings.Join(lines, "\n")+"\n")
	}
	return fmt.Errorf("no user %s in the guest's /etc/shadow", user)
}

// passwdEntry is a user of the guest's /etc/passwd.
type passwdEntry struct {
	uid, gid int
	home     string
}

func (g *Guest) lookupUser(user string) (passwdEntry, error) {
	b, err := fs.ReadFile(g.FS, "etc/passwd")
	if err != nil {
		return passwdEntry{}, fmt.Errorf("reading /etc/passwd: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ":")
		if len(f) >= 7 && f[0] == user {
			uid, err1 := strconv.Atoi(f[2])
			gid, err2 := strconv.Atoi(f[3])
			if err1 != nil || err2 != nil || f[5] == "" {
				return passwdEntry{}, fmt.Errorf("user %s: bad /etc/passwd line", user)
			}
			return passwdEntry{uid, gid, f[5]}, nil
		}
	}
	return passwdEntry{}, fmt.Errorf("no user %s in the guest's /etc/passwd", user)
}

// sshInject adds a public key to a user's authorized_keys: .ssh 0700 and
// the file 0600, owned by the user, labelled ssh_home_t on SELinux guests.
// The key is USER:file:PATH, USER:string:KEY, or USER alone for the
// invoking user's ~/.ssh/id_*.pub.
func (g *Guest) sshInject(arg string) error {
	user, sel, _ := strings.Cut(arg, ":")
	key, err := sshKey(sel)
	if err != nil {
		return err
	}
	u, err := g.lookupUser(user)
	if err != nil {
		return err
	}
	home := name(u.home)
	if err := g.mkdirAll(home); err != nil {
		return err
	}
	dir := path.Join(home, ".ssh")
	if _, err := g.FS.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		g.created = true
		if err := g.FS.Mkdir(dir, 0o700); err != nil {
			return err
		}
	}
	file := path.Join(dir, "authorized_keys")
	old, err := fs.ReadFile(g.FS, file)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if !bytes.Contains(old, []byte(key)) {
		if len(old) > 0 && !bytes.HasSuffix(old, []byte("\n")) {
			old = append(old, '\n')
		}
		data := append(old, key+"\n"...)
		if err := g.write(file, bytes.NewReader(data), int64(len(data))); err != nil {
			return err
		}
	}
	for p, mode := range map[string]fs.FileMode{dir: 0o700, file: 0o600} {
		if err := g.FS.Chmod(p, mode); err != nil {
			return err
		}
		if err := g.FS.Chown(p, u.uid, u.gid); err != nil {
			return err
		}
		if err := g.label(p, "ssh_home_t"); err != nil {
			return err
		}
	}
	return nil
}

// sshKey reads the key a selector names.
func sshKey(sel string) (string, error) {
	kind, arg, _ := strings.Cut(sel, ":")
	var b []byte
	var err error
	switch kind {
	case "string":
		b = []byte(arg)
	case "file":
		b, err = os.ReadFile(arg)
	case "":
		home, herr := os.UserHomeDir()
		if herr != nil {
			return "", herr
		}
		for _, n := range []string{"id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"} {
			if b, err = os.ReadFile(filepath.Join(home, ".ssh", n)); err == nil {
				break
			}
		}
	default:
		return "", fmt.Errorf("ssh key selector %q: expected file:PATH or string:KEY", sel)
	}
	if err != nil {
		return "", err
	}
	key := strings.TrimSpace(string(b))
	if f := strings.Fields(key); len(f) < 2 || !strings.HasPrefix(f[0], "ssh-") && !strings.HasPrefix(f[0], "ecdsa-") && !strings.HasPrefix(f[0], "sk-") {
		return "", fmt.Errorf("not an OpenSSH public key: %.40q", key)
	}
	if strings.Contains(key, "\n") {
		return "", fmt.Errorf("one key per --ssh-inject")
	}
	return key, nil
}

// xattrSetter is a filesystem that sets extended attributes (ext4).
type xattrSetter interface {
	SetXattr(name, attr string, value []byte) error
}

// label sets a file's SELinux type (in the targeted policy's
// system_u:object_r:TYPE:s0 form) on a guest with SELinux, when the
// filesystem keeps attributes; /.autorelabel covers the rest.
func (g *Guest) label(n, selinuxType string) error {
	if !g.selinux() {
		return nil
	}
	x, ok := g.FS.(xattrSetter)
	if !ok {
		return nil
	}
	return x.SetXattr(n, "security.selinux", []byte("system_u:object_r:"+selinuxType+":s0\x00"))
}

// selinux reports whether the guest enables SELinux.
func (g *Guest) selinux() bool {
	cfg, err := fs.ReadFile(g.FS, "etc/selinux/config")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(cfg), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "SELINUX="); ok {
			return strings.TrimSpace(v) != "disabled"
		}
	}
	return false
}

// setTimezone points /etc/localtime at the zone's file, which the guest
// must have, and writes /etc/timezone where Debian keeps it.
func (g *Guest) setTimezone(zone string) error {
	if zone == "" || strings.Contains(zone, "..") || strings.HasPrefix(zone, "/") {
		return fmt.Errorf("%q is not a time zone name", zone)
	}
	zf := path.Join("usr/share/zoneinfo", zone)
	if fi, err := g.FS.Stat(zf); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("the guest has no time zone %s (/%s)", zone, zf)
	}
	if _, err := g.FS.Lstat("etc/localtime"); err == nil {
		if err := g.FS.Remove("etc/localtime"); err != nil {
			return err
		}
	}
	if err := g.FS.Symlink("../"+zf, "etc/localtime"); err != nil {
		return err
	}
	if _, err := g.FS.Stat("etc/timezone"); err == nil || g.isDir("etc/apt") {
		return g.writeKeepingMode("etc/timezone", zone+"\n")
	}
	return nil
}
