package boot

import (
	"bytes"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on what the guest's console can make the host keep.
const (
	// MaxLine is the longest line kept or matched; a longer one is cut
	// into lines of this length.
	MaxLine = 4096
	// TailLines is how many of the last lines a Console keeps.
	TailLines = 40
	// maxPrompt is the longest unfinished line checked before it ends.
	maxPrompt = 256
)

// A Console turns the bytes of a serial console into clean lines: it
// feeds each to a Watcher, keeps the last TailLines, and copies them to a
// stream (for people watching). The guest writes what it likes there, so
// memory is bounded (MaxLine, TailLines) and terminal control sequences
// never reach the stream or the tail: a hostile guest cannot retitle,
// recolour or script the terminal of the person who runs the test.
//
// A Console is not safe for concurrent use; Write it from one goroutine.
type Console struct {
	watcher *Watcher
	clock   func() time.Duration
	stream  io.Writer // nil after a write to it failed
	partial []byte    // the line not ended yet
	tail    []string  // ring of the last lines
	next    int       // where the next line goes in tail
	lines   int64
}

// NewConsole feeds w with the lines written to it, each stamped with
// clock() (the time since the machine started), and copies clean lines to
// stream unless it is nil.
func NewConsole(w *Watcher, clock func() time.Duration, stream io.Writer) *Console {
	return &Console{watcher: w, clock: clock, stream: stream}
}

// Write takes console output in chunks of any size. It never fails: a
// stream that fails is dropped, since the test goes on without it.
func (c *Console) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			p = c.add(p)
			continue
		}
		for rest := p[:i]; rest != nil; {
			rest = c.add(rest)
		}
		c.end()
		p = p[i+1:]
	}
	if n := len(c.partial); n > 0 && n <= maxPrompt && c.partial[n-1] == ' ' {
		// A prompt ("login: ", "(initramfs) ") ends with a space, not
		// a newline: check the line so far (only a short one that
		// could be a prompt, so that a line written a byte at a time
		// is not matched again for each byte).
		c.watcher.Line(CleanLine(c.partial), c.clock())
	}
	return n, nil
}

// add appends to the unfinished line what fits in MaxLine bytes, ending
// the line when p holds more, and returns the rest of p.
func (c *Console) add(p []byte) []byte {
	room := MaxLine - len(c.partial)
	if len(p) <= room {
		c.partial = append(c.partial, p...)
		return nil
	}
	c.partial = append(c.partial, p[:room]...)
	c.end()
	return p[room:]
}

// end finishes the current line.
func (c *Console) end() {
	line := CleanLine(c.partial)
	c.partial = c.partial[:0]
	c.watcher.Line(line, c.clock())
	if len(c.tail) < TailLines {
		c.tail = append(c.tail, line)
	} else {
		c.tail[c.next] = line
	}
	c.next = (c.next + 1) % TailLines
	c.lines++
	if c.stream != nil {
		if _, err := io.WriteString(c.stream, line+"\n"); err != nil {
			c.stream = nil
		}
	}
}

// Flush ends a line that has not ended (the console's last words).
func (c *Console) Flush() {
	if len(c.partial) > 0 {
		c.end()
	}
}

// State is the Watcher's verdict so far.
func (c *Console) State() State { return c.watcher.State() }

// Tail returns the last lines, oldest first, with the unfinished line
// last.
func (c *Console) Tail() []string {
	var out []string
	if len(c.tail) == TailLines {
		out = append(out, c.tail[c.next:]...)
		out = append(out, c.tail[:c.next]...)
	} else {
		out = append(out, c.tail...)
	}
	if len(c.partial) > 0 {
		out = append(out, CleanLine(c.partial))
	}
	return out
}

// Result is what the console has shown after elapsed: the Watcher's
// sightings and the last lines. The fields about the machine are left to
// the caller that knows it.
func (c *Console) Result(elapsed time.Duration) *Result {
	w := c.watcher
	return &Result{
		Phases: w.Phases(), Matched: w.Matched(), Missing: w.Missing(),
		Failure: w.Failure(), Elapsed: elapsed, Tail: c.Tail(),
	}
}

// Lines counts the lines ended so far.
func (c *Console) Lines() int64 { return c.lines }

// CleanLine returns the text of one console line as a person would read
// it: terminal escape sequences (colours, cursor moves, titles) removed,
// control characters other than tab dropped, carriage returns dropped,
// invalid UTF-8 replaced.
func CleanLine(b []byte) string {
	var out strings.Builder
	for len(b) > 0 {
		if b[0] == 0x1b {
			b = skipEscape(b)
			continue
		}
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		switch {
		case r == '\t':
			out.WriteByte(' ')
		case r == utf8.RuneError && size == 1:
			out.WriteRune(utf8.RuneError)
		case unicode.IsControl(r):
			// dropped: \r, BEL, backspace, C1 controls
		default:
			out.WriteRune(r)
		}
	}
	return out.String()
}

// skipEscape returns b after the escape sequence it starts with (b[0] is
// ESC): a CSI (ESC [ parameters final), an OSC or other string sequence
// (ending with BEL or ESC \), or ESC and one more byte.
func skipEscape(b []byte) []byte {
	if len(b) < 2 {
		return nil
	}
	switch b[1] {
	case '[':
		for i := 2; i < len(b); i++ {
			if b[i] >= 0x40 && b[i] <= 0x7e {
				return b[i+1:]
			}
		}
		return nil
	case ']', 'P', '_', '^', 'X':
		for i := 2; i < len(b); i++ {
			if b[i] == 0x07 {
				return b[i+1:]
			}
			if b[i] == 0x1b && i+1 < len(b) && b[i+1] == '\\' {
				return b[i+2:]
			}
		}
		return nil
	}
	return b[2:]
}
