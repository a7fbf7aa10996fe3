package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// debianGuest is the Debian 12 disk scripts/guest-image.sh builds: a
// debootstrap tree and a 2 GiB GPT qcow2 (ESP + ext4 root made from it).
type debianGuest struct {
	image      string // the cached qcow2; tests edit copies
	rootfs     string // the debootstrap tree the root filesystem was made from
	rootOffset int64  // byte offset of the root partition
}

// debian runs scripts/guest-image.sh, which builds the image the first
// time (minutes: debootstrap) and then only prints where it is.
func debian(t *testing.T) debianGuest {
	t.Helper()
	g := cachedGuest(t, "guest-image.sh")
	g.rootfs = filepath.Join(filepath.Dir(g.image), "rootfs")
	return g
}

// cachedGuest runs one of the scripts that build a guest image once and
// cache it (scripts/guest-image.sh, scripts/boot-image.sh), and reads the
// root partition's offset from the layout file next to the image.
func cachedGuest(t *testing.T, script string) debianGuest {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command("bash", "../../scripts/"+script)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("scripts/%s: %v\n%s", script, err, errb.String())
	}
	if errb.Len() > 0 {
		t.Logf("scripts/%s:\n%s", script, errb.String())
	}
	image := strings.TrimSpace(out.String())
	dir := filepath.Dir(image)
	layout, err := os.ReadFile(filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	g := debianGuest{image: image}
	for _, line := range strings.Split(string(layout), "\n") {
		if v, ok := strings.CutPrefix(line, "root_offset="); ok {
			if g.rootOffset, err = strconv.ParseInt(v, 10, 64); err != nil {
				t.Fatal(err)
			}
		}
	}
	if g.rootOffset == 0 {
		t.Fatalf("%s/layout has no root_offset:\n%s", dir, layout)
	}
	return g
}

// copyFile copies src to dst (the cached image is never edited).
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "--sparse=always", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
}

// debugfsAt runs one debugfs request on the ext4 filesystem at offset in
// raw and fails on anything debugfs reports besides its banner.
func debugfsAt(t *testing.T, raw string, offset int64, request string) string {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command("debugfs", "-R", request, fmt.Sprintf("%s?offset=%d", raw, offset))
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("debugfs %s: %v %s", request, err, errb.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
		if !strings.HasPrefix(line, "debugfs ") {
			t.Fatalf("debugfs %s: %s", request, errb.String())
		}
	}
	return out.String()
}

// debianEdits are the edits TestDebianRoot makes; each names the guest
// paths it adds or changes, which the tree comparison leaves out.
type debianEdits struct {
	keys, tree string   // local files for --upload and --copy-in
	changed    []string // guest paths whose content or metadata changes
	added      []string // guest paths that did not exist
	removed    []string // guest paths that no longer exist
}

func prepareEdits(t *testing.T, dir string) debianEdits {
	t.Helper()
	e := debianEdits{keys: filepath.Join(dir, "authorized_keys"), tree: filepath.Join(dir, "site")}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(e.keys, []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIQimgTestKeyForDebianRoot qimg@test\n"), 0o644))
	must(os.MkdirAll(filepath.Join(e.tree, "bin"), 0o755))
	must(os.MkdirAll(filepath.Join(e.tree, "etc/empty"), 0o750))
	must(os.WriteFile(filepath.Join(e.tree, "bin/hello"), []byte("#!/bin/sh\necho hello from qimg\n"), 0o755))
	must(os.WriteFile(filepath.Join(e.tree, "etc/secret"), bytes.Repeat([]byte("0123456789abcdef"), 5000), 0o600))
	must(os.Symlink("../bin/hello", filepath.Join(e.tree, "etc/hello-link")))
	e.changed = []string{"/etc/hostname", "/etc/hosts", "/etc/machine-id"}
	e.added = []string{"/root/.ssh", "/root/.ssh/authorized_keys", "/usr/local/share/site",
		"/usr/local/share/site/bin", "/usr/local/share/site/bin/hello", "/usr/local/share/site/etc",
		"/usr/local/share/site/etc/empty", "/usr/local/share/site/etc/secret", "/usr/local/share/site/etc/hello-link"}
	e.removed = []string{"/etc/motd"}
	return e
}

// TestDebianRoot edits the real /etc of a debootstrapped Debian 12 (a
// copy of the cached 2 GiB GPT qcow2) with qimg inject, then lets
// qemu-img check, e2fsck and debugfs judge: every edit reads back, and
// every other file of the debootstrap tree is unchanged.
func TestDebianRoot(t *testing.T) {
	g := debian(t)
	dir := t.TempDir()
	copyFile(t, g.image, filepath.Join(dir, "guest.qcow2"))
	inspectDebian(t, dir)
	catMatchesTree(t, dir, g.rootfs, "/etc/os-release", "/etc/debian_version", "/etc/passwd",
		"/var/lib/dpkg/status", "/usr/bin/dpkg")

	e := prepareEdits(t, dir)
	before := fileSum(t, filepath.Join(dir, "guest.qcow2"))
	r := qimgIn(t, dir, "inject", "--dry-run", "guest.qcow2", "--write", "/etc/hostname:x\n", "--delete", "/etc/motd")
	if r.code != 0 || fileSum(t, filepath.Join(dir, "guest.qcow2")) != before {
		t.Fatalf("dry run: exit %d or the image changed: %+v", r.code, r)
	}
	// A boot would have written a machine-id; the second call empties it
	// again, as a template needs, on an image qimg has already written.
	r = qimgIn(t, dir, "inject", "guest.qcow2",
		"--write", "/etc/hostname:qimg-debian\n",
		"--append-line", "/etc/hosts:10.0.0.2\tserver.example server",
		"--mkdir", "/root/.ssh",
		"--chmod", "0700:/root/.ssh",
		"--upload", e.keys+":/root/.ssh/authorized_keys",
		"--chmod", "0600:/root/.ssh/authorized_keys",
		"--write", "/etc/machine-id:0123456789abcdef0123456789abcdef\n",
		"--copy-in", e.tree+":/usr/local/share",
		"--delete", "/etc/motd")
	if r.code != 0 {
		t.Fatalf("inject: %+v", r)
	}
	if r = qimgIn(t, dir, "inject", "guest.qcow2", "--write", "/etc/machine-id:"); r.code != 0 {
		t.Fatalf("inject --write /etc/machine-id: %+v", r)
	}

	if r := qemuIn(t, dir, "qemu-img", "check", "guest.qcow2"); r.code != 0 {
		t.Fatalf("qemu-img check: %+v", r)
	}
	raw := filepath.Join(dir, "guest.raw")
	img(t, dir, "convert", "-O", "raw", "guest.qcow2", raw)
	if out, err := exec.Command("/usr/sbin/e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", raw, g.rootOffset)).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn on the root partition: %v\n%s", err, out)
	}
	editsReadBack(t, raw, g.rootOffset, e)
	packagesUnchanged(t, raw, g.rootOffset, g.rootfs)
	dump := filepath.Join(dir, "dump")
	if err := os.Mkdir(dump, 0o755); err != nil {
		t.Fatal(err)
	}
	debugfsAt(t, raw, g.rootOffset, "rdump / "+dump)
	sameTree(t, g.rootfs, dump, raw, g.rootOffset, e)
	if t.Failed() {
		return
	}
	r = qimgIn(t, dir, "cat", "guest.qcow2", "/etc/hostname", "/root/.ssh/authorized_keys")
	if want := "qimg-debian\n" + string(readFile(t, e.keys)); r.code != 0 || r.stdout != want {
		t.Errorf("qimg cat after the edit: %+v, want %q", r, want)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// inspectDebian checks that qimg inspect sees Debian 12 and both mount points.
func inspectDebian(t *testing.T, dir string) {
	t.Helper()
	r := qimgIn(t, dir, "inspect", "--output=json", "guest.qcow2")
	if r.code != 0 {
		t.Fatalf("inspect: %+v", r)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d operating systems:\n%s", len(got), r.stdout)
	}
	for k, v := range map[string]any{
		"root": "/dev/sda2", "type": "linux", "distro": "debian", "product_name": "Debian GNU/Linux 12 (bookworm)",
		"major_version": 12.0, "arch": "x86_64", "hostname": "debian12",
		"package_format": "deb", "package_management": "apt",
	} {
		if got[0][k] != v {
			t.Errorf("inspect: %s = %v, want %v", k, got[0][k], v)
		}
	}
	mps, _ := json.Marshal(got[0]["mountpoints"])
	if want := `[{"device":"/dev/sda2","mountpoint":"/"},{"device":"/dev/sda1","mountpoint":"/boot/efi"}]`; string(mps) != want {
		t.Errorf("inspect: mountpoints %s, want %s", mps, want)
	}
}

// catMatchesTree checks qimg cat of each guest path against the host
// copy in the debootstrap tree (for a link, what it points to).
func catMatchesTree(t *testing.T, dir, rootfs string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		r := qimgIn(t, dir, "cat", "guest.qcow2", p)
		want, err := os.ReadFile(hostPath(rootfs, p))
		if err != nil {
			t.Fatal(err)
		}
		if r.code != 0 || r.stdout != string(want) {
			t.Errorf("qimg cat %s: exit %d, %d bytes, want the %d bytes of the debootstrap tree; stderr %s",
				p, r.code, len(r.stdout), len(want), r.stderr)
		}
	}
}

// hostPath resolves a guest path inside rootfs, following the guest's
// links inside it (os-release is a relative link into /usr/lib).
func hostPath(rootfs, guest string) string {
	p := filepath.Join(rootfs, guest)
	for range 40 {
		target, err := os.Readlink(p)
		if err != nil {
			return p
		}
		if filepath.IsAbs(target) {
			p = filepath.Join(rootfs, target)
		} else {
			p = filepath.Join(filepath.Dir(p), target)
		}
	}
	return p
}

// editsReadBack reads every edit back with debugfs.
func editsReadBack(t *testing.T, raw string, off int64, e debianEdits) {
	t.Helper()
	cat := func(p string) string { return debugfsAt(t, raw, off, "cat "+p) }
	if got := cat("/etc/hostname"); got != "qimg-debian\n" {
		t.Errorf("/etc/hostname = %q", got)
	}
	if got := cat("/etc/hosts"); !strings.HasSuffix(got, "ff02::2\tip6-allrouters\n10.0.0.2\tserver.example server\n") {
		t.Errorf("/etc/hosts = %q", got)
	}
	if got := cat("/etc/machine-id"); got != "" {
		t.Errorf("/etc/machine-id = %q, want empty", got)
	}
	if got := cat("/root/.ssh/authorized_keys"); got != string(readFile(t, e.keys)) {
		t.Errorf("authorized_keys = %q", got)
	}
	if got := cat("/usr/local/share/site/etc/secret"); got != string(readFile(t, filepath.Join(e.tree, "etc/secret"))) {
		t.Errorf("copied-in secret: %d bytes", len(got))
	}
	for p, want := range map[string][2]string{
		"/root/.ssh": {"directory", "0700"}, "/root/.ssh/authorized_keys": {"regular", "0600"},
		"/usr/local/share/site/bin/hello": {"regular", "0755"}, "/usr/local/share/site/etc/secret": {"regular", "0600"},
		"/usr/local/share/site/etc/empty": {"directory", "0750"}, "/usr/local/share/site/etc/hello-link": {"symlink", "0777"},
	} {
		st := debugfsStat(t, raw, off, p)
		if st["Type:"] != want[0] || st["Mode:"] != want[1] || st["User:"] != "0" || st["Group:"] != "0" {
			t.Errorf("%s: %s %s uid %s gid %s, want %s %s root:root", p, st["Type:"], st["Mode:"], st["User:"], st["Group:"], want[0], want[1])
		}
	}
	if got := debugfsAt(t, raw, off, "stat /usr/local/share/site/etc/hello-link"); !strings.Contains(got, `Fast link dest: "../bin/hello"`) {
		t.Errorf("hello-link: %s", got)
	}
	for _, p := range e.removed {
		var errb bytes.Buffer
		cmd := exec.Command("debugfs", "-R", "stat "+p, fmt.Sprintf("%s?offset=%d", raw, off))
		cmd.Stderr = &errb
		cmd.Run()
		if !strings.Contains(errb.String(), "File not found") {
			t.Errorf("%s still exists after --delete: %s", p, errb.String())
		}
	}
}

// packagesUnchanged checks dpkg's database and a real binary against the
// debootstrap tree, read by debugfs (dump, so binary content survives).
func packagesUnchanged(t *testing.T, raw string, off int64, rootfs string) {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{"/var/lib/dpkg/status", "/usr/bin/dpkg"} {
		out := filepath.Join(dir, filepath.Base(p))
		debugfsAt(t, raw, off, "dump "+p+" "+out)
		if got, want := fileSum(t, out), fileSum(t, filepath.Join(rootfs, p)); got != want {
			t.Errorf("%s: sha256 %x after the edits, %x in the debootstrap tree", p, got, want)
		}
	}
}

// debugfsStat is debugfs's stat of a guest path, as the words that
// follow "Type:", "Mode:", "User:" and "Group:" (for example "regular",
// "0644", "0", "0").
func debugfsStat(t *testing.T, raw string, off int64, p string) map[string]string {
	t.Helper()
	st := map[string]string{}
	f := strings.Fields(debugfsAt(t, raw, off, "stat "+p))
	for i := 0; i+1 < len(f); i++ {
		switch f[i] {
		case "Type:", "Mode:", "User:", "Group:":
			if _, seen := st[f[i]]; !seen {
				st[f[i]] = f[i+1]
			}
		}
	}
	return st
}

// sameTree compares the debootstrap tree with debugfs's rdump of the
// edited root: every regular file, directory and link not named by the
// edits has the same type, permissions, owner, content and link target;
// the dump holds nothing else but the added paths and lost+found.
func sameTree(t *testing.T, rootfs, dump, raw string, off int64, e debianEdits) {
	t.Helper()
	skip := map[string]bool{}
	for _, list := range [][]string{e.changed, e.added, e.removed} {
		for _, p := range list {
			skip[p] = true
		}
	}
	compared := 0
	special := map[string]fs.FileMode{} // set-id and sticky bits, which rdump drops
	err := filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		guest := "/" + filepath.ToSlash(must(filepath.Rel(rootfs, p)))
		if guest == "/." || skip[guest] || d.Type()&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0 {
			return nil
		}
		compared++
		if msg := sameEntry(p, filepath.Join(dump, guest)); msg != "" {
			t.Errorf("%s: %s", guest, msg)
		}
		if info, err := d.Info(); err == nil && info.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
			special[guest] = info.Mode()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(dump, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		guest := "/" + filepath.ToSlash(must(filepath.Rel(dump, p)))
		if guest == "/lost+found" {
			return fs.SkipDir
		}
		if _, err := os.Lstat(filepath.Join(rootfs, guest)); err != nil && !skip[guest] {
			t.Errorf("%s is in the image but not in the debootstrap tree nor among the edits", guest)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	specialBitsKept(t, raw, off, special)
	if compared < 5000 {
		t.Errorf("only %d entries compared; is %s a whole debootstrap tree?", compared, rootfs)
	}
	t.Logf("%d entries of the debootstrap tree compared with the edited image", compared)
}

// specialBitsKept checks with debugfs stat the set-user-ID, set-group-ID
// and sticky bits of the paths that have them in the debootstrap tree
// (su, passwd, mount, /tmp...): debugfs's rdump leaves them out.
func specialBitsKept(t *testing.T, raw string, off int64, special map[string]fs.FileMode) {
	t.Helper()
	if len(special) < 10 {
		t.Errorf("only %d set-id or sticky entries in the debootstrap tree", len(special))
	}
	for p, mode := range special {
		want := fmt.Sprintf("0%o", mode.Perm()|unixSpecial(mode))
		if got := debugfsStat(t, raw, off, p)["Mode:"]; got != want {
			t.Errorf("%s: mode %s in the image, %s in the debootstrap tree", p, got, want)
		}
	}
}

// unixSpecial is the Unix encoding (04000, 02000, 01000) of a mode's
// set-id and sticky bits.
func unixSpecial(m fs.FileMode) fs.FileMode {
	var u fs.FileMode
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// sameEntry compares one host entry with its dumped copy; "" if equal.
func sameEntry(want, got string) string {
	a, err := os.Lstat(want)
	if err != nil {
		return err.Error()
	}
	b, err := os.Lstat(got)
	if err != nil {
		return "missing from the image: " + err.Error()
	}
	const special = fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky // compared by specialBitsKept
	if a.Mode()&^special != b.Mode()&^special {
		return fmt.Sprintf("mode %v, want %v", b.Mode(), a.Mode())
	}
	sa, sb := a.Sys().(*syscall.Stat_t), b.Sys().(*syscall.Stat_t)
	if sa.Uid != sb.Uid || sa.Gid != sb.Gid {
		return fmt.Sprintf("owner %d:%d, want %d:%d", sb.Uid, sb.Gid, sa.Uid, sa.Gid)
	}
	switch {
	case a.Mode()&fs.ModeSymlink != 0:
		ta, _ := os.Readlink(want)
		tb, _ := os.Readlink(got)
		if ta != tb {
			return fmt.Sprintf("link to %q, want %q", tb, ta)
		}
	case a.Mode().IsRegular():
		ca, err := os.ReadFile(want)
		if err != nil {
			return err.Error()
		}
		cb, err := os.ReadFile(got)
		if err != nil {
			return err.Error()
		}
		if !bytes.Equal(ca, cb) {
			return fmt.Sprintf("content differs (%d bytes, want %d)", len(cb), len(ca))
		}
	}
	return ""
}
