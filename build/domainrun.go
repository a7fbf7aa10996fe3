package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/digitalocean/go-libvirt"
	"golang.org/x/sys/unix"

	"github.com/qimg/qimg/boot"
)

// domainEnd is how a running domain ended, as the events and the console
// tell it.
type domainEnd struct {
	err     error  // nil when the guest shut down
	stopped string // how the domain stopped: "shutdown", "crashed", ...; "" if it did not
}

// runDomain creates d (transient, autodestroyed with the connection),
// follows its console into log and a boot.Console and waits for its end;
// the domain is destroyed and the console read to its end before it
// returns.
func runDomain(ctx context.Context, l *libvirt.Libvirt, d domain, log io.Writer) (*boot.Result, error) {
	x, err := d.xml()
	if err != nil {
		return nil, err
	}
	// Subscribed before the domain starts, so that no event is missed.
	evCtx, stopEvents := context.WithCancel(context.Background())
	life, err := l.LifecycleEvents(evCtx)
	if err != nil {
		stopEvents()
		return nil, fmt.Errorf("libvirt: lifecycle events: %w", err)
	}
	reboots, err := l.SubscribeEvents(evCtx, libvirt.DomainEventIDReboot, libvirt.OptDomain{})
	if err != nil {
		stopEvents()
		drain(life)
		return nil, fmt.Errorf("libvirt: reboot events: %w", err)
	}
	defer func() {
		stopEvents()
		drain(life)
		drain(reboots)
	}()
	dom, err := l.DomainCreateXML(x, libvirt.DomainStartAutodestroy)
	if err != nil {
		return nil, fmt.Errorf("libvirt: starting the domain: %w", err)
	}
	start := time.Now()
	defer l.DomainDestroy(dom) // gone already when it ended by itself
	nicMAC := mac(l, dom)
	f, err := os.OpenFile(d.console, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("libvirt: the console: %w", err)
	}
	defer f.Close()
	clock := func() time.Duration { return time.Since(start) }
	con := boot.NewConsole(boot.NewWatcher(d.m.Markers()), clock, d.m.Console)
	w := watchDomain{l: l, dom: dom, m: d.m, life: life, reboots: reboots, con: con}
	end, elapsed := w.wait(ctx, f, log)
	r := con.Result(elapsed)
	r.Accel, r.MAC = d.accel(), nicMAC
	return r, d.verdict(r, end)
}

// drain reads ch until it is closed: go-libvirt's event goroutines end
// only once their last event has been taken.
func drain[T any](ch <-chan T) {
	for range ch {
	}
}

// watchDomain waits for a running domain's end.
type watchDomain struct {
	l       *libvirt.Libvirt
	dom     libvirt.Domain
	m       boot.Machine
	life    <-chan libvirt.DomainEventLifecycleMsg
	reboots <-chan any
	con     *boot.Console
}

// wait follows the console file f into log and the console until the
// domain stops, reboots (unless allowed), a failure marker appears, the
// time-out passes, ctx ends or libvirtd goes away; then it destroys the
// domain and reads the console to its end. It returns how the domain
// ended and the time of the verdict.
func (w watchDomain) wait(ctx context.Context, f *os.File, log io.Writer) (domainEnd, time.Duration) {
	start := time.Now()
	failed := make(chan struct{}, 1)
	stop := make(chan struct{})
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		follow(f, io.MultiWriter(log, w.con), stop, func() {
			if w.con.State() == boot.Failed {
				select {
				case failed <- struct{}{}:
				default:
				}
			}
		})
	}()
	end := w.events(ctx, failed)
	elapsed := time.Since(start)
	if err := w.l.DomainDestroy(w.dom); !isGone(err) {
		end.err = errors.Join(end.err, fmt.Errorf("libvirt: destroying the domain: %w", err))
	}
	close(stop)
	<-followed // the console is ours now
	w.con.Flush()
	return end, elapsed
}

// events waits for the event that ends the run.
func (w watchDomain) events(ctx context.Context, failed <-chan struct{}) domainEnd {
	timer := time.NewTimer(w.m.Timeout)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-w.life:
			if !ok {
				return domainEnd{err: errLibvirtGone}
			}
			if ev.Dom.UUID == w.dom.UUID && ev.Event == int32(libvirt.DomainEventStopped) {
				return domainEnd{stopped: stoppedHow(ev.Detail)}
			}
		case ev, ok := <-w.reboots:
			if !ok {
				return domainEnd{err: errLibvirtGone}
			}
			if r, is := ev.(*libvirt.DomainEventCallbackRebootMsg); is && r.Msg.Dom.UUID == w.dom.UUID && !w.m.Reboots {
				return domainEnd{err: errRebooted}
			}
		case <-failed:
			// What explains a failure often follows its marker.
			t := time.NewTimer(failureQuiet)
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
			return domainEnd{err: boot.ErrFailed}
		case <-timer.C:
			return domainEnd{err: boot.ErrTimeout}
		case <-ctx.Done():
			return domainEnd{err: ctx.Err()}
		case <-w.l.Disconnected():
			return domainEnd{err: errLibvirtGone}
		}
	}
}

// errRebooted means the guest rebooted, which ends an install that must
// power off.
var errRebooted = errors.New("the guest rebooted")

// stoppedHow names a lifecycle event's stopped detail.
func stoppedHow(detail int32) string {
	switch libvirt.DomainEventStoppedDetailType(detail) {
	case libvirt.DomainEventStoppedShutdown:
		return "shutdown"
	case libvirt.DomainEventStoppedDestroyed:
		return "destroyed"
	case libvirt.DomainEventStoppedCrashed:
		return "crashed"
	case libvirt.DomainEventStoppedFailed:
		return "failed"
	}
	return fmt.Sprintf("stopped (detail %d)", detail)
}

// verdict is the error of a run that ended as end says, worded as boot's
// for the QEMU backend.
func (d domain) verdict(r *boot.Result, end domainEnd) error {
	disk, at := d.m.Disk, r.Elapsed.Seconds()
	switch {
	case r.Failure != nil:
		return boot.EndError(disk, r, d.m.Timeout, boot.ErrFailed)
	case end.err == nil && end.stopped == "shutdown":
		return nil
	case end.err == nil:
		return fmt.Errorf("%s: the domain %s after %.1fs: %w", disk, end.stopped, at, boot.ErrNotPoweredOff)
	case errors.Is(end.err, errRebooted), errors.Is(end.err, errLibvirtGone):
		return fmt.Errorf("%s: %w after %.1fs: %w", disk, end.err, at, boot.ErrNotPoweredOff)
	}
	return boot.EndError(disk, r, d.m.Timeout, end.err)
}

// follow copies what is written to the file f to w, calling after each
// chunk, until stop is closed; then it copies what is left and returns.
// Bytes already read are punched out of the file every punchEvery bytes,
// so that the file takes no more room on disk than that.
func follow(f *os.File, w io.Writer, stop <-chan struct{}, after func()) {
	buf := make([]byte, 32<<10)
	var read, punched int64
	stopping := false
	for {
		n, err := f.Read(buf)
		if n > 0 {
			w.Write(buf[:n]) // the console writers never fail
			after()
			read += int64(n)
			if read-punched >= punchEvery {
				unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, punched, read-punched)
				punched = read
			}
			continue
		}
		if err != nil && err != io.EOF || stopping {
			return
		}
		select {
		case <-stop:
			stopping = true // one more read: the console's last words
		case <-time.After(consolePoll):
		}
	}
}
