package boot

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// qemuProcess is a running QEMU.
type qemuProcess struct {
	cmd     *exec.Cmd
	start   time.Time
	console *os.File // read end of QEMU's standard output: the serial port
	stderr  *tailBuffer
	exited  chan struct{} // closed when Wait returned
	waitErr error         // Wait's error, once exited is closed
}

// elapsed is the time since QEMU started.
func (q *qemuProcess) elapsed() time.Duration { return time.Since(q.start) }

// readConsole copies the console to w until QEMU exits, calling after
// each chunk so the caller can look at what changed.
func (q *qemuProcess) readConsole(w io.Writer, after func()) {
	defer q.console.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := q.console.Read(buf)
		if n > 0 {
			w.Write(buf[:n]) // the console writers never fail
			after()
		}
		if err != nil {
			return
		}
	}
}

// stop makes QEMU exit: a QMP quit first, then SIGKILL to its process
// group if it has not exited within quitTimeout.
func (q *qemuProcess) stop(qmp string) {
	select {
	case <-q.exited:
		return
	default:
	}
	// A fresh context: stopping must work when the caller's has ended.
	if err := qmpQuit(context.Background(), qmp, quitTimeout); err == nil {
		select {
		case <-q.exited:
			return
		case <-time.After(quitTimeout):
		}
	}
	syscall.Kill(-q.cmd.Process.Pid, syscall.SIGKILL)
	<-q.exited
}

// wait waits until QEMU has exited.
func (q *qemuProcess) wait() { <-q.exited }

// exitStatus describes how QEMU ended; call after wait.
func (q *qemuProcess) exitStatus() string {
	var ee *exec.ExitError
	switch {
	case q.waitErr == nil:
		return "QEMU exited"
	case errors.As(q.waitErr, &ee):
		return "QEMU " + ee.ProcessState.String()
	}
	return "QEMU: " + q.waitErr.Error()
}

// tailBuffer keeps the last bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

// String is the text kept, without QEMU's notes about its own sockets
// ("info: QEMU waiting for connection on: ..." for the QMP socket it
// waits on): they are no message about why it stopped.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var kept []string
	for _, l := range strings.Split(CleanText(t.b), "\n") {
		if !strings.Contains(l, "info: QEMU waiting for connection on:") {
			kept = append(kept, l)
		}
	}
	return strings.Join(kept, "\n")
}

// CleanText is CleanLine for each line of b, lines joined by "\n".
func CleanText(b []byte) string {
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		lines[i] = CleanLine([]byte(l))
	}
	return strings.TrimRight(strings.Join(lines, "\n"), "\n")
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// quoteList names markers for a message: "a", "b".
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = `"` + n + `"`
	}
	return strings.Join(q, ", ")
}
