package boot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/qimg/qimg/image"
)

// DefaultRunTimeout bounds a Run whose Machine names no time-out: an
// operating system install under TCG takes tens of minutes.
const DefaultRunTimeout = 2 * time.Hour

// ErrNotPoweredOff means QEMU exited although the guest did not power
// off: it rebooted (which -no-reboot turns into an exit), QEMU failed, or
// something killed it.
var ErrNotPoweredOff = errors.New("the guest did not power off")

// A Machine is a virtual machine that runs until its guest powers off, as
// an unattended installer does once it has written its disk. Unlike a boot
// test's, its disk is written in place.
type Machine struct {
	Disk       string // the disk the guest writes, in place
	DiskFormat string // "raw" or "qcow2"
	// CDROM is an ISO 9660 image attached read-only (the installer's
	// medium); "" for none.
	CDROM string
	// Seed is a NoCloud cidata drive (an ISO 9660 image, attached as a
	// second CD-ROM, or a FAT image, attached as a read-only disk) for an
	// installer that reads its answers through cloud-init; "" for none.
	Seed string
	// CDROMs are more ISO 9660 images attached read-only, on a SATA
	// controller: an autounattend medium, a driver ISO, --extra-iso.
	CDROMs []string
	// Kernel, Initrd and Append boot a kernel directly, as QEMU's
	// -kernel, -initrd and -append do; Kernel "" boots the disk and,
	// while the disk holds nothing to boot, the CD-ROM.
	Kernel, Initrd, Append string
	// DiskBus is the disk's bus: "virtio" ("" too) or "sata", for a
	// guest without virtio drivers (Windows' installer); NIC is the
	// network card: "virtio" ("" too) or "e1000".
	DiskBus, NIC string
	// UEFI boots the machine with UEFI firmware instead of SeaBIOS; nil
	// for BIOS.
	UEFI *UEFI
	// Reboots lets the guest reboot, as Windows' setup does between its
	// phases: only a power-off ends the run then. Otherwise a reboot
	// fails it.
	Reboots bool
	Memory  int // MiB; 0 is DefaultMemory
	CPUs    int // 0 is DefaultCPUs
	Accel   string
	// Fail are console lines that end the run as failed at once, besides
	// a kernel panic or oops and the other failures of DefaultMarkers
	// that a running installer can show.
	Fail []Marker
	// Console receives the clean console lines as they come; nil for
	// none. Log, if not empty, is a file for the console's raw bytes.
	Console io.Writer
	Log     string
	// Timeout for the whole run; 0 is DefaultRunTimeout.
	Timeout time.Duration
	// QEMU is the emulator ("" is qemu-system-x86_64 from PATH); TempDir
	// is where the private temporary directory (the QMP sockets) is made.
	QEMU, TempDir string
}

// UEFI is the firmware of a UEFI machine: OVMF's code, read-only, and a
// writable copy of its variable store that the guest may change (boot
// entries).
type UEFI struct {
	Code, Vars string
}

// Disk buses and NIC models of a Machine.
const (
	BusVirtio = "virtio"
	BusSATA   = "sata"
	NICVirtio = "virtio"
	NICE1000  = "e1000"
)

// maxCDROMs bounds Machine.CDROMs: the SATA controller's six ports, one
// of them kept for a SATA disk.
const maxCDROMs = 5

// Run starts m and waits until its guest powers off (success), a failure
// marker appears on the console, QEMU exits otherwise, the time-out passes
// or ctx ends. QEMU learns of the power-off from QEMU itself (a SHUTDOWN
// event on a QMP socket it waits on before the guest starts), so a guest
// that reboots instead is told apart. QEMU is always stopped and the
// temporary directory removed before Run returns; once QEMU has started
// the Result is never nil, so that callers can show the console's tail.
func Run(ctx context.Context, m Machine) (*Result, error) {
	m, err := m.Resolved()
	if err != nil {
		return nil, err
	}
	o, err := m.options()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(o.TempDir, "qimg-run-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	vm, err := m.machine(o, dir)
	if err != nil {
		return nil, err
	}
	log, closeLog, err := OpenLog(m.Log)
	if err != nil {
		return nil, err
	}
	defer closeLog()
	q, err := startQEMU(o.QEMU, vm)
	if err != nil {
		return nil, err
	}
	shutdown := make(chan string, 1)
	go func() { shutdown <- shutdownReason(vm.events, q.exited) }()
	con := NewConsole(NewWatcher(m.Markers()), q.elapsed, m.Console)
	elapsed, verdict := watch(ctx, q, vm.qmp, con, log, o.Timeout, func(s State) bool { return s == Failed })
	reason := <-shutdown // QEMU has exited: the socket is closed
	w := con.watcher
	r := &Result{
		Accel: o.Accel, MAC: o.MAC, Phases: w.Phases(), Failure: w.Failure(),
		Elapsed: elapsed, Tail: con.Tail(), QEMUStderr: q.stderr.String(),
	}
	return r, m.verdict(r, q, o.Timeout, verdict, reason)
}

// options checks m and fills in the defaults the way a boot test's are.
func (m Machine) options() (Options, error) {
	if m.Disk == "" {
		return Options{}, image.Errorf(image.ErrInvalidArgument, "boot: no disk given")
	}
	if m.DiskFormat != "raw" && m.DiskFormat != "qcow2" {
		return Options{}, image.Errorf(image.ErrInvalidArgument, "boot: disk format %q is neither raw nor qcow2", m.DiskFormat)
	}
	if m.Kernel == "" && (m.Initrd != "" || m.Append != "") {
		return Options{}, image.Errorf(image.ErrInvalidArgument, "boot: an initrd or kernel arguments without a kernel")
	}
	if err := m.checkDevices(); err != nil {
		return Options{}, err
	}
	if m.Timeout == 0 {
		m.Timeout = DefaultRunTimeout
	}
	return Options{
		Image: m.Disk, Memory: m.Memory, CPUs: m.CPUs, Accel: m.Accel,
		Timeout: m.Timeout, QEMU: m.QEMU, TempDir: m.TempDir,
	}.resolved()
}

// checkDevices checks the buses, the NIC and the number of CD-ROMs.
func (m Machine) checkDevices() error {
	switch {
	case m.DiskBus != "" && m.DiskBus != BusVirtio && m.DiskBus != BusSATA:
		return image.Errorf(image.ErrInvalidArgument, "boot: disk bus %q is neither virtio nor sata", m.DiskBus)
	case m.NIC != "" && m.NIC != NICVirtio && m.NIC != NICE1000:
		return image.Errorf(image.ErrInvalidArgument, "boot: NIC model %q is neither virtio nor e1000", m.NIC)
	case len(m.CDROMs) > maxCDROMs:
		return image.Errorf(image.ErrInvalidArgument, "boot: %d more CD-ROMs, at most %d fit", len(m.CDROMs), maxCDROMs)
	case m.UEFI != nil && (m.UEFI.Code == "" || m.UEFI.Vars == ""):
		return image.Errorf(image.ErrInvalidArgument, "boot: UEFI needs the firmware's code and a variable store")
	}
	return nil
}

// Resolved checks m and returns it with the absolute paths of its files,
// each a regular file that exists, and the defaults filled in (memory,
// CPUs, time-out): what any backend starts from.
func (m Machine) Resolved() (Machine, error) {
	o, err := m.options()
	if err != nil {
		return m, err
	}
	m.Memory, m.CPUs, m.Timeout = o.Memory, o.CPUs, o.Timeout
	m.CDROMs = append([]string(nil), m.CDROMs...)
	if m.UEFI != nil {
		u := *m.UEFI
		m.UEFI = &u
	}
	files := []*string{&m.Disk, &m.CDROM, &m.Seed, &m.Kernel, &m.Initrd}
	for i := range m.CDROMs {
		files = append(files, &m.CDROMs[i])
	}
	if m.UEFI != nil {
		files = append(files, &m.UEFI.Code, &m.UEFI.Vars)
	}
	for _, f := range files {
		if *f == "" {
			continue
		}
		abs, err := filepath.Abs(*f)
		if err != nil {
			return m, err
		}
		if st, err := os.Stat(abs); err != nil {
			return m, err
		} else if !st.Mode().IsRegular() {
			return m, image.FileErrorf(abs, "not a regular file: %w", image.ErrInvalidArgument)
		}
		*f = abs
	}
	return m, nil
}

// machine describes the QEMU machine for m (resolved), its sockets in
// dir.
func (m Machine) machine(o Options, dir string) (machine, error) {
	vm := machine{
		name: "qimg-run", accel: o.Accel, memory: o.Memory, cpus: o.CPUs, mac: o.MAC,
		disk: m.Disk, diskFormat: m.DiskFormat, keepDisk: true, cdrom: m.CDROM, seed: m.Seed,
		kernel: m.Kernel, initrd: m.Initrd, appendArgs: m.Append,
		qmp: filepath.Join(dir, "qmp.sock"), events: filepath.Join(dir, "events.sock"),
		diskBus: m.DiskBus, nic: m.NIC, reboots: m.Reboots, bootCDROM: m.Kernel == "",
		cdroms: m.CDROMs, uefi: m.UEFI,
	}
	if len(vm.events) > maxSocketPath {
		return vm, fmt.Errorf("boot: temporary directory %s is too deep for a unix socket (set TMPDIR or Machine.TempDir)", dir)
	}
	if vm.seed != "" {
		var err error
		if vm.seedISO, err = IsISO9660(vm.seed); err != nil {
			return vm, err
		}
	}
	return vm, nil
}

// Markers are what a run of m watches its console for: the phases of a
// boot, and as failures m.Fail and the default failure markers but
// cloud-init's. A backend other than QEMU's (libvirt) watches with them
// too, so that both judge a console alike.
func (m Machine) Markers() Markers {
	return Markers{Fail: m.failures(), Phases: DefaultMarkers().Phases}
}

// failures are m.Fail and the default failure markers, but cloud-init's:
// an installer's live system may run cloud-init, whose complaints there
// are not the install's.
func (m Machine) failures() []Marker {
	var fail []Marker
	for _, f := range DefaultMarkers().Fail {
		if f.Name != "cloud-init error" {
			fail = append(fail, f)
		}
	}
	return append(fail, m.Fail...)
}

// verdict is the error of a run that ended with verdict (from watch) after
// QEMU reported the shutdown reason ("" for none).
func (m Machine) verdict(r *Result, q *qemuProcess, timeout time.Duration, verdict error, reason string) error {
	switch {
	case errors.Is(verdict, ErrExited) && reason == "guest-shutdown":
		return nil
	case errors.Is(verdict, ErrExited):
		msg := q.exitStatus()
		if reason != "" {
			msg = "the guest ended with " + reason + " (" + msg + ")"
		}
		if r.QEMUStderr != "" {
			msg += ": " + lastLine(r.QEMUStderr)
		}
		return fmt.Errorf("%s: %s after %.1fs: %w", m.Disk, msg, r.Elapsed.Seconds(), ErrNotPoweredOff)
	}
	return EndError(m.Disk, r, timeout, verdict)
}

// EndError words the end of a run that did not power off, the same for
// every backend: at the failure marker r holds (cause ErrFailed), at the
// timeout (cause ErrTimeout), or stopped by cause.
func EndError(disk string, r *Result, timeout time.Duration, cause error) error {
	switch {
	case errors.Is(cause, ErrFailed) && r.Failure != nil:
		f := r.Failure
		return fmt.Errorf("%s: %s at %.1fs: %q: %w", disk, f.Name, f.At.Seconds(), f.Line, ErrFailed)
	case errors.Is(cause, ErrTimeout):
		return fmt.Errorf("%s: the guest still ran after %v: %w", disk, timeout, ErrTimeout)
	}
	return fmt.Errorf("%s: stopped after %.1fs: %w", disk, r.Elapsed.Seconds(), cause)
}

// shutdownReason connects to the QMP socket at path, on which QEMU waits
// before it starts the guest, and returns the reason of the first SHUTDOWN
// event ("guest-shutdown" when the guest powered off, "guest-reset" when
// it rebooted), or "" if QEMU exits (exited closes) without one.
func shutdownReason(path string, exited <-chan struct{}) string {
	conn := dialUntil(path, exited)
	if conn == nil {
		return ""
	}
	defer conn.Close()
	q, err := newQMPConn(conn)
	if err != nil {
		return ""
	}
	for {
		msg, err := q.read()
		if err != nil {
			return "" // QEMU exited
		}
		if msg.Event != "SHUTDOWN" {
			continue
		}
		var data struct {
			Reason string `json:"reason"`
		}
		if json.Unmarshal(msg.Data, &data) != nil || data.Reason == "" {
			return "unknown"
		}
		return data.Reason
	}
}

// dialUntil connects to the unix socket at path, trying again until it
// exists, or returns nil once exited is closed.
func dialUntil(path string, exited <-chan struct{}) net.Conn {
	for {
		conn, err := net.Dial("unix", path)
		if err == nil {
			return conn
		}
		select {
		case <-exited:
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
}
