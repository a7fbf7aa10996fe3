package build

import (
	"bytes"
	"strings"
	"sync"
	"time"
)

// lastLine keeps the last non-empty line written to it: boot's Console
// writes clean lines, one or more a call.
type lastLine struct {
	mu   sync.Mutex
	line string
}

func (l *lastLine) Write(p []byte) (int, error) {
	lines := bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		if s := strings.TrimSpace(string(lines[i])); s != "" {
			l.mu.Lock()
			l.line = s
			l.mu.Unlock()
			break
		}
	}
	return len(p), nil
}

// maxStatusLine bounds the console line a status line shows.
const maxStatusLine = 160

func (l *lastLine) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := []rune(l.line); len(r) > maxStatusLine {
		return string(r[:maxStatusLine]) + "..."
	}
	return l.line
}

// reportStatus writes, every StatusEvery until the returned function is
// called, how long the install has run and the console's last line, so
// that an install of tens of minutes shows that it is alive.
func (o Options) reportStatus(last *lastLine) (stop func()) {
	every := o.StatusEvery
	if every == 0 {
		every = DefaultStatusEvery
	}
	if o.Progress == nil || every < 0 {
		return func() {}
	}
	start := time.Now()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				o.progress("installing: %s, console: %s", time.Since(start).Round(time.Second), last)
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
