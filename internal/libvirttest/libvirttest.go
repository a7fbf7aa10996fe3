// Package libvirttest starts a private libvirtd for tests, apart from any
// other on the machine: scripts/devcloud.sh (the OpenStack tests, CI)
// starts and stops one at the standard socket, and the build tests must
// neither take it over nor stop it under Nova.
//
// A libvirtd in system mode keeps its state in fixed places (/run/libvirt,
// /var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt, its
// configuration in /etc/libvirt) and locks its QEMU driver there, so two
// cannot share a machine. The private one runs in a mount namespace of
// its own (unshare -m, private propagation) in which each of these is an
// empty tmpfs and /etc/libvirt the test's own configuration: no domains,
// networks or pools from the host, QEMU's output to files instead of
// virtlogd. Its sockets are in a directory outside those mounts, where
// the test reaches them. Needs root (unshare) and libvirt-daemon-system,
// libvirt-clients (virsh) and qemu-system-x86; scripts/setup.sh installs
// them.
package libvirttest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds the wait for the daemon's first answer (it probes
// QEMU's capabilities first: seconds on a busy machine).
const startTimeout = 90 * time.Second

// A Daemon is a private libvirtd.
type Daemon struct {
	Socket string // the read-write unix socket
	dir    string
	cmd    *exec.Cmd
}

// URI is the connection URI virsh takes for the daemon.
func (d *Daemon) URI() string { return "qemu:///system?socket=" + d.Socket }

// The mount namespace's set-up, then libvirtd: $1 is the daemon's
// directory.
const namespaceScript = `set -e
for d in /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /etc/libvirt; do
	mkdir -p "$d"
done
mount -t tmpfs -o mode=0755 qimg-libvirtd /run/libvirt
mount -t tmpfs -o mode=0755 qimg-libvirtd /var/lib/libvirt
mount -t tmpfs -o mode=0755 qimg-libvirtd /var/cache/libvirt
mount -t tmpfs -o mode=0755 qimg-libvirtd /var/log/libvirt
mount --bind "$1/etc" /etc/libvirt
exec libvirtd -f "$1/etc/libvirtd.conf" -p "$1/libvirtd.pid"
`

// Start starts a private libvirtd and stops it when the test ends,
// destroying and undefining its domains first. A missing tool or root
// skips the test on a developer's machine and fails it in CI.
func Start(t testing.TB) *Daemon {
	t.Helper()
	need(t)
	dir, err := os.MkdirTemp("", "qimg-libvirtd-") // short: socket paths are bounded
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{Socket: filepath.Join(dir, "sock", "libvirt-sock"), dir: dir}
	if err := d.configure(); err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "libvirtd.log"))
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	defer logFile.Close()
	d.cmd = exec.Command("unshare", "--mount", "--propagation", "private", "--", "sh", "-c", namespaceScript, "sh", dir)
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	// Its own process group, and killed if the test binary dies.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := d.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(d.stop)
	if err := d.waitReady(); err != nil {
		t.Fatal(err)
	}
	return d
}

// need checks for root and the tools.
func need(t testing.TB) {
	t.Helper()
	miss := ""
	if os.Geteuid() != 0 {
		miss = "root (unshare -m)"
	}
	for _, tool := range []string{"libvirtd", "virsh", "unshare", "qemu-system-x86_64"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err := os.Stat("/usr/sbin/" + tool); err != nil {
				miss = tool
			}
		}
	}
	if miss == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("a private libvirtd needs %s (scripts/setup.sh installs the packages)", miss)
	}
	t.Skipf("a private libvirtd needs %s", miss)
}

// configure writes the daemon's configuration: its sockets in dir/sock,
// only for root, no authentication; errors to its log; QEMU's own output
// to files (no virtlogd).
func (d *Daemon) configure() error {
	for _, sub := range []string{"etc", "sock"} {
		if err := os.Mkdir(filepath.Join(d.dir, sub), 0o700); err != nil {
			return err
		}
	}
	conf := fmt.Sprintf(`unix_sock_dir = %q
unix_sock_group = "root"
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:stderr"
`, filepath.Dir(d.Socket))
	if err := os.WriteFile(filepath.Join(d.dir, "etc", "libvirtd.conf"), []byte(conf), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(d.dir, "etc", "qemu.conf"), []byte("stdio_handler = \"file\"\n"), 0o600)
}

// waitReady waits until virsh gets an answer, or the daemon dies.
func (d *Daemon) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		if _, err := d.Virsh("version"); err == nil {
			return nil
		}
		if d.cmd.ProcessState != nil || syscall.Kill(d.cmd.Process.Pid, 0) != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(d.dir, "libvirtd.log"))
	return fmt.Errorf("the private libvirtd does not answer on %s:\n%s", d.Socket, b)
}

// Virsh runs virsh against the daemon and returns its output.
func (d *Daemon) Virsh(args ...string) (string, error) {
	out, err := exec.Command("virsh", append([]string{"-q", "-c", d.URI()}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("virsh %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Domains lists the names of the daemon's domains, running or defined.
func (d *Daemon) Domains() ([]string, error) {
	out, err := d.Virsh("list", "--all", "--name")
	return strings.Fields(out), err
}

// stop destroys and undefines what domains are left (QEMU does not die
// with libvirtd), stops the daemon (its process group) and removes its
// directory; the namespace's mounts go with its last process.
func (d *Daemon) stop() {
	names, _ := d.Domains()
	for _, n := range names {
		d.Virsh("destroy", n)
		d.Virsh("undefine", "--nvram", n)
	}
	pgid := d.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		d.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	os.RemoveAll(d.dir)
}
