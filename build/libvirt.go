package build

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"libvirt.org/go/libvirtxml"

	"github.com/qimg/qimg/boot"
	"github.com/qimg/qimg/image"
)

// DefaultLibvirtSocket is libvirtd's read-write socket in system mode.
const DefaultLibvirtSocket = "/var/run/libvirt/libvirt-sock"

// LibvirtBackend runs the installer as a transient libvirt domain through
// libvirtd's unix socket (go-libvirt: libvirt's RPC protocol in pure Go,
// no cgo). The domain is created with autodestroy, so libvirtd destroys it
// when qimg's connection closes, also when qimg is killed; Run destroys it
// itself in every other case. QEMU runs as qimg's user and group (a static
// DAC label), so it reads and writes the same files as the QEMU backend's
// QEMU would and libvirt changes no file's owner. The serial console goes
// to a file in a private temporary directory that Run follows; the run
// ends with the domain's lifecycle event (stopped after a guest shutdown:
// success; a reboot event: failure unless Machine.Reboots) or as the QEMU
// backend's does (a failure marker, the time-out, ctx). KVM when libvirtd
// offers it (Machine.Accel "" or boot.KVM), TCG (domain type qemu)
// otherwise.
type LibvirtBackend struct {
	// Socket is libvirtd's unix socket; "" is DefaultLibvirtSocket.
	Socket string
}

func (b LibvirtBackend) String() string { return "libvirt" }

func (b LibvirtBackend) socket() string {
	if b.Socket == "" {
		return DefaultLibvirtSocket
	}
	return b.Socket
}

// Limits of the libvirt backend.
const (
	// handshakeTimeout bounds connecting to libvirtd: a socket whose
	// server does not answer is not libvirtd.
	handshakeTimeout = 10 * time.Second
	// consolePoll is how often the console file is read for more.
	consolePoll = 50 * time.Millisecond
	// punchEvery: the console file's bytes already read are given back to
	// the file system (a hole punched) every this many bytes, so that a
	// guest writing without end cannot fill the host's disk.
	punchEvery = 1 << 20
	// failureQuiet is how long the console is read on after a failure
	// marker (its explanation often follows).
	failureQuiet = time.Second
)

// errLibvirtGone means the connection to libvirtd ended during the run.
var errLibvirtGone = errors.New("the connection to libvirtd was lost")

// connect opens qemu:///system on libvirtd's socket; ctx and
// handshakeTimeout bound the handshake.
func (b LibvirtBackend) connect(ctx context.Context) (*libvirt.Libvirt, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", b.socket())
	if err != nil {
		return nil, fmt.Errorf("libvirt: %w", err)
	}
	// No deadline on conn: go-libvirt's reader takes a timeout for a
	// temporary error and reads again, for ever. Closing conn ends a
	// handshake that gets no answer.
	l := libvirt.NewWithDialer(dialers.NewAlreadyConnected(conn))
	done := make(chan error, 1)
	go func() { done <- l.ConnectToURI(libvirt.QEMUSystem) }()
	timer := time.NewTimer(handshakeTimeout)
	defer timer.Stop()
	finished := false
	select {
	case err = <-done:
		finished = true
	case <-timer.C:
		err = errors.New("no answer")
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err == nil {
		return l, nil
	}
	conn.Close()
	if !finished {
		<-done // the handshake fails now that conn is closed
	}
	return nil, fmt.Errorf("libvirt: %s: %w", b.socket(), err)
}

// Ping connects to libvirtd and asks its version: nil when a libvirtd
// that runs QEMU answers on the socket.
func (b LibvirtBackend) Ping(ctx context.Context) error {
	l, err := b.connect(ctx)
	if err != nil {
		return err
	}
	defer l.Disconnect()
	_, err = l.ConnectGetVersion()
	return err
}

// Run runs m as a transient domain until its guest powers off, as the
// type's comment says. Once the domain has started the Result is never
// nil.
func (b LibvirtBackend) Run(ctx context.Context, m boot.Machine) (*boot.Result, error) {
	m, err := m.Resolved()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(m.TempDir, "qimg-libvirt-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	l, err := b.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer l.Disconnect()
	d, err := newDomain(l, m, filepath.Join(dir, "console.log"))
	if err != nil {
		return nil, err
	}
	log, closeLog, err := boot.OpenLog(m.Log)
	if err != nil {
		return nil, err
	}
	defer closeLog()
	return runDomain(ctx, l, d, log)
}

// newDomain describes the domain for m: a fresh name, KVM when asked
// for or offered, the console in the file console.
func newDomain(l *libvirt.Libvirt, m boot.Machine, console string) (domain, error) {
	d := domain{name: domainName(), console: console, uid: os.Getuid(), gid: os.Getgid(), m: m}
	if m.Seed != "" {
		iso, err := boot.IsISO9660(m.Seed)
		if err != nil {
			return d, err
		}
		d.seedISO = iso
	}
	offered, err := offersKVM(l)
	if err != nil {
		return d, err
	}
	switch m.Accel {
	case "":
		d.kvm = offered
	case boot.KVM:
		if !offered {
			return d, image.Errorf(image.ErrUnsupported, "libvirt: KVM asked for, but libvirtd does not offer it")
		}
		d.kvm = true
	case boot.TCG:
	default:
		return d, image.Errorf(image.ErrInvalidArgument, "libvirt: accelerator %q is neither kvm nor tcg", m.Accel)
	}
	return d, nil
}

// domainName is a name no other domain has: qimg-build- and 8 random
// bytes in hex.
func domainName() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "qimg-build-" + hex.EncodeToString(b)
}

// offersKVM reports whether libvirtd's capabilities list a kvm domain for
// x86_64 guests (it found a usable /dev/kvm).
func offersKVM(l *libvirt.Libvirt) (bool, error) {
	x, err := l.ConnectGetCapabilities()
	if err != nil {
		return false, fmt.Errorf("libvirt: capabilities: %w", err)
	}
	var caps libvirtxml.Caps
	if err := caps.Unmarshal(x); err != nil {
		return false, fmt.Errorf("libvirt: capabilities: %w", err)
	}
	for _, g := range caps.Guests {
		if g.OSType != "hvm" || g.Arch.Name != "x86_64" {
			continue
		}
		for _, d := range g.Arch.Domains {
			if d.Type == "kvm" {
				return true, nil
			}
		}
	}
	return false, nil
}

// accel names the domain's accelerator as boot does.
func (d domain) accel() string {
	if d.kvm {
		return boot.KVM
	}
	return boot.TCG
}

// mac reads the MAC address libvirt gave the domain's NIC.
func mac(l *libvirt.Libvirt, dom libvirt.Domain) string {
	x, err := l.DomainGetXMLDesc(dom, 0)
	if err != nil {
		return ""
	}
	var live libvirtxml.Domain
	if live.Unmarshal(x) != nil || live.Devices == nil || len(live.Devices.Interfaces) == 0 || live.Devices.Interfaces[0].MAC == nil {
		return ""
	}
	return live.Devices.Interfaces[0].MAC.Address
}

// isGone reports whether err says the domain is no longer there or no
// longer runs: destroying it again is then done.
func isGone(err error) bool {
	return err == nil || libvirt.IsNotFound(err) || strings.Contains(err.Error(), "not running")
}
