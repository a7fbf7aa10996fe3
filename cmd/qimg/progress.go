package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// progress prints qemu-img's "    (12.34/100%)" progress indicator,
// rewritten in place, only when asked for and only on a terminal.
type progress struct {
	mu     sync.Mutex
	w      io.Writer
	on     bool
	last   float64
	lastAt time.Time
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func newProgress(w io.Writer, want bool) *progress {
	p := &progress{w: w, on: want && isTerminal(w), last: -1}
	if p.on {
		p.print(0)
	}
	return p
}

func (p *progress) print(pct float64) {
	fmt.Fprintf(p.w, "    (%3.2f/100%%)\r", pct)
}

// update is the callback given to convert and compare.
func (p *progress) update(done, total int64) {
	if p == nil || !p.on {
		return
	}
	pct := 100.0
	if total > 0 {
		pct = float64(done) * 100 / float64(total)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if pct-p.last < 1 && pct < 100 && time.Since(p.lastAt) < time.Second {
		return
	}
	p.last, p.lastAt = pct, time.Now()
	p.print(pct)
}

// done ends the progress line.
func (p *progress) done(ok bool) {
	if p == nil || !p.on {
		return
	}
	if ok {
		p.print(100)
	}
	fmt.Fprint(p.w, "\n")
}
