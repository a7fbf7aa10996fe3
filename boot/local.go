package boot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/qimg/qimg/image"
)

// Errors of a boot that ran: errors.Is tells them apart; the text says
// what the console showed.
var (
	// ErrFailed means a failure marker appeared on the console.
	ErrFailed = errors.New("boot failed")
	// ErrTimeout means expected markers were still missing at the
	// time-out.
	ErrTimeout = errors.New("boot timed out")
	// ErrExited means QEMU ended before every expected marker appeared
	// (the guest powered off, or QEMU refused to start).
	ErrExited = errors.New("QEMU exited")
)

// Defaults.
const (
	DefaultMemory = 1024 // MiB
	DefaultCPUs   = 2
	// DefaultTimeoutTCG is generous: a Debian guest with cloud-init
	// takes one to four minutes under TCG on a busy 2-core machine.
	DefaultTimeoutTCG = 10 * time.Minute
	DefaultTimeoutKVM = 3 * time.Minute
	// quitTimeout is how long QEMU has to quit through QMP before it is
	// killed.
	quitTimeout = 5 * time.Second
	// After a failure marker the console is read on until it has been
	// quiet for failureQuiet, at most failureGrace: what explains a
	// failure often follows its marker (the initramfs's "ALERT! ... does
	// not exist" after "Gave up waiting for root file system device").
	failureQuiet = time.Second
	failureGrace = 5 * time.Second
	// maxSocketPath is the longest path a unix socket can have.
	maxSocketPath = 107
)

// Options say what to boot and what to wait for.
type Options struct {
	Image  string // the image; never written
	Format string // its format; "" probes it
	// Seed is a NoCloud cidata or config-2 drive (an ISO 9660 image,
	// attached as a CD-ROM, or a FAT image, attached as a read-only
	// disk); "" boots without one.
	Seed   string
	Memory int // MiB; 0 is DefaultMemory
	CPUs   int // 0 is DefaultCPUs
	// Expect are markers to wait for besides the defaults (the login
	// prompt and cloud-init's final message); NoDefaultExpect waits for
	// these alone (a guest without cloud-init).
	Expect          []*regexp.Regexp
	NoDefaultExpect bool
	// Console receives the clean console lines as they come; nil for
	// none.
	Console io.Writer
	// Log, if not empty, is a file that receives the console's raw bytes.
	Log string
	// Timeout for the whole boot; 0 is DefaultTimeoutTCG or
	// DefaultTimeoutKVM.
	Timeout time.Duration
	// Accel is KVM or TCG; "" picks KVM when /dev/kvm can be used.
	Accel string
	// MAC of the virtual NIC; "" picks a random locally administered one.
	MAC string
	// QEMU is the emulator; "" is qemu-system-x86_64 from PATH.
	QEMU string
	// TempDir is where the private temporary directory (overlay, QMP
	// socket) is made; "" is os.TempDir().
	TempDir string
}

// Result is what a boot showed. Times are since QEMU started.
type Result struct {
	Accel   string
	MAC     string
	Phases  []Sighting // phase markers seen, in order
	Matched []Sighting // expected markers seen, in order
	Missing []string   // expected markers not seen
	Failure *Sighting  // the failure marker, if one decided the boot
	Elapsed time.Duration
	Tail    []string // the console's last lines
	// QEMUStderr is the end of what QEMU wrote to standard error.
	QEMUStderr string
}

// Local boots opts.Image under QEMU on this machine, on a throwaway qcow2
// overlay in a temporary directory, and watches the serial console until
// every expected marker has appeared (success), a failure marker appears,
// QEMU exits, the time-out passes or ctx ends. QEMU is always stopped and
// the temporary directory removed before Local returns.
//
// Once QEMU has started, the Result is never nil, also with an error, so
// that callers can show the console's tail.
func Local(ctx context.Context, opts Options) (*Result, error) {
	o, err := opts.resolved()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(o.TempDir, "qimg-boot-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	m, err := o.machine(dir)
	if err != nil {
		return nil, err
	}
	log, closeLog, err := OpenLog(o.Log)
	if err != nil {
		return nil, err
	}
	defer closeLog()
	return run(ctx, o, m, log)
}

// OpenLog creates the console log at path, or discards the console when
// path is empty: where a run, of any backend, puts the console's raw
// bytes.
func OpenLog(path string) (io.Writer, func() error, error) {
	if path == "" {
		return io.Discard, func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	return f, f.Close, nil
}

// resolved checks the options and fills in the defaults.
func (o Options) resolved() (Options, error) {
	if o.Image == "" {
		return o, image.Errorf(image.ErrInvalidArgument, "boot: no image given")
	}
	if o.Memory == 0 {
		o.Memory = DefaultMemory
	}
	if o.CPUs == 0 {
		o.CPUs = DefaultCPUs
	}
	if o.Memory < 64 || o.Memory > 1<<20 || o.CPUs < 1 || o.CPUs > 255 {
		return o, image.Errorf(image.ErrInvalidArgument, "boot: %d MiB and %d CPUs are out of range", o.Memory, o.CPUs)
	}
	switch o.Accel {
	case "":
		o.Accel = detectAccel()
	case KVM, TCG:
	default:
		return o, image.Errorf(image.ErrInvalidArgument, "boot: accelerator %q is neither kvm nor tcg", o.Accel)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeoutTCG
		if o.Accel == KVM {
			o.Timeout = DefaultTimeoutKVM
		}
	}
	if o.Timeout < 0 {
		return o, image.Errorf(image.ErrInvalidArgument, "boot: negative time-out %v", o.Timeout)
	}
	var err error
	if o.MAC == "" {
		o.MAC, err = randomMAC()
	} else {
		o.MAC, err = checkMAC(o.MAC)
	}
	if err != nil {
		return o, image.Errorf(image.ErrInvalidArgument, "boot: %v", err)
	}
	if o.QEMU == "" {
		o.QEMU = "qemu-system-x86_64"
	}
	if o.QEMU, err = exec.LookPath(o.QEMU); err != nil {
		return o, fmt.Errorf("boot: %w (install qemu-system-x86)", err)
	}
	return o, nil
}

// markers are the default markers (unless NoDefaultExpect), the caller's,
// and with a seed the failure to find it.
func (o Options) markers() Markers {
	return WatchMarkers(o.Expect, o.NoDefaultExpect, o.Seed != "")
}

// machine prepares the overlay in dir and describes the machine.
func (o Options) machine(dir string) (machine, error) {
	m := machine{
		accel: o.Accel, memory: o.Memory, cpus: o.CPUs, mac: o.MAC,
		disk: filepath.Join(dir, "overlay.qcow2"),
		qmp:  filepath.Join(dir, "qmp.sock"),
	}
	if len(m.qmp) > maxSocketPath {
		return m, fmt.Errorf("boot: temporary directory %s is too deep for a unix socket (set TMPDIR or Options.TempDir)", dir)
	}
	if err := createOverlay(m.disk, o.Image, o.Format); err != nil {
		return m, err
	}
	if o.Seed != "" {
		seed, err := filepath.Abs(o.Seed)
		if err != nil {
			return m, err
		}
		if m.seedISO, err = IsISO9660(seed); err != nil {
			return m, err
		}
		m.seed = seed
	}
	return m, nil
}

// run starts the machine and watches it until every expected marker has
// appeared.
func run(ctx context.Context, o Options, m machine, log io.Writer) (*Result, error) {
	q, err := startQEMU(o.QEMU, m)
	if err != nil {
		return nil, err
	}
	con := NewConsole(NewWatcher(o.markers()), q.elapsed, o.Console)
	elapsed, verdict := watch(ctx, q, m.qmp, con, log, o.Timeout, func(s State) bool { return s != Waiting })
	return result(o, con, q, elapsed, verdict)
}

// watch copies q's console to log and con until decides(con.State()) holds,
// QEMU exits, timeout passes or ctx ends; then it stops QEMU (through the
// QMP socket at qmp) and reads the console to its end. It returns the time
// of the verdict and the verdict: nil when decides held for a state other
// than Failed, ErrFailed (after the console has had a moment to explain),
// ErrExited, ErrTimeout or ctx's error.
func watch(ctx context.Context, q *qemuProcess, qmp string, con *Console, log io.Writer, timeout time.Duration, decides func(State) bool) (time.Duration, error) {
	decided := make(chan State, 1)
	activity := make(chan struct{}, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		q.readConsole(io.MultiWriter(log, con), func() {
			select {
			case activity <- struct{}{}:
			default:
			}
			if s := con.State(); decides(s) {
				select {
				case decided <- s:
				default:
				}
			}
		})
	}()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var verdict error
	select {
	case s := <-decided:
		if s == Failed {
			verdict = ErrFailed
			untilQuiet(activity, readDone)
		}
	case <-readDone:
		// The console's last words were read before it ended: a marker
		// in them decides, not the exit.
		select {
		case s := <-decided:
			if s == Failed {
				verdict = ErrFailed
			}
		default:
			verdict = ErrExited
		}
	case <-timer.C:
		verdict = ErrTimeout
	case <-ctx.Done():
		verdict = ctx.Err()
	}
	elapsed := q.elapsed()
	q.stop(qmp)
	<-readDone // the console has been read to its end: con is ours
	con.Flush()
	q.wait()
	return elapsed, verdict
}

// untilQuiet returns when the console has had no output for failureQuiet,
// failureGrace has passed, or the console has ended.
func untilQuiet(activity <-chan struct{}, ended <-chan struct{}) {
	grace := time.NewTimer(failureGrace)
	defer grace.Stop()
	quiet := time.NewTimer(failureQuiet)
	defer quiet.Stop()
	for {
		select {
		case <-activity:
			quiet.Reset(failureQuiet)
		case <-quiet.C:
			return
		case <-grace.C:
			return
		case <-ended:
			return
		}
	}
}

// result builds the Result and the error that goes with verdict.
func result(o Options, con *Console, q *qemuProcess, elapsed time.Duration, verdict error) (*Result, error) {
	r := con.Result(elapsed)
	r.Accel, r.MAC, r.QEMUStderr = o.Accel, o.MAC, q.stderr.String()
	switch {
	case verdict == nil:
		r.Failure = nil // a failure marker after success came too late to count
		return r, nil
	case errors.Is(verdict, ErrFailed):
		f := r.Failure
		return r, fmt.Errorf("%s: %s at %.1fs: %q: %w", o.Image, f.Name, f.At.Seconds(), f.Line, ErrFailed)
	case errors.Is(verdict, ErrTimeout):
		return r, fmt.Errorf("%s: after %v still waiting for %s: %w", o.Image, o.Timeout, quoteList(r.Missing), ErrTimeout)
	case errors.Is(verdict, ErrExited):
		msg := q.exitStatus()
		if r.QEMUStderr != "" {
			msg += ": " + lastLine(r.QEMUStderr)
		}
		return r, fmt.Errorf("%s: %s after %.1fs, still waiting for %s: %w", o.Image, msg, elapsed.Seconds(), quoteList(r.Missing), ErrExited)
	}
	return r, fmt.Errorf("%s: boot stopped after %.1fs: %w", o.Image, elapsed.Seconds(), verdict)
}

// startQEMU starts QEMU for m in its own process group (so that a Ctrl-C
// on the terminal reaches qimg, which stops QEMU and cleans up) and makes
// the kernel kill it if qimg dies first.
func startQEMU(path string, m machine) (*qemuProcess, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	q := &qemuProcess{console: r, stderr: newTailBuffer(4096)}
	q.cmd = exec.Command(path, m.args()...)
	q.cmd.Stdout, q.cmd.Stderr = w, q.stderr
	q.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	q.start = time.Now()
	err = q.cmd.Start()
	w.Close() // QEMU holds the write end; EOF on r means it exited
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("boot: starting %s: %w", path, err)
	}
	q.exited = make(chan struct{})
	go func() {
		q.waitErr = q.cmd.Wait()
		close(q.exited)
	}()
	return q, nil
}
