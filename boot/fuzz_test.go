package boot

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzConsole feeds arbitrary guest output, in chunks of arbitrary size,
// through a Console and the default Watcher: no panic, bounded lines and
// tail, no control character reaches the tail or the stream, and a
// failure is final.
func FuzzConsole(f *testing.F) {
	for _, s := range []string{
		lineSyslinux + "\r\n" + lineKernel + "\r\n" + lineWelcome + "\r\n" + lineLogin,
		lineFinished + "\n" + "Kernel panic - not syncing: x\n" + lineLogin,
		"\x1b[0;32m\x1b]0;t\x07\x1bP\x1b\\\xff\xfe\u009b\n\n\r\r",
		strings.Repeat("A", MaxLine+1) + "\n" + strings.Repeat("\x1b[", 100),
	} {
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(7))
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		w := NewWatcher(DefaultMarkers())
		var stream strings.Builder
		c := NewConsole(w, func() time.Duration { return 0 }, &stream)
		size := int(chunk) + 1
		failed := false
		for p := data; len(p) > 0; {
			n := min(size, len(p))
			c.Write(p[:n])
			p = p[n:]
			if failed && c.State() != Failed {
				t.Fatal("a failure was undone")
			}
			failed = c.State() == Failed
		}
		c.Flush()
		tail := c.Tail()
		if len(tail) > TailLines {
			t.Fatalf("tail of %d lines", len(tail))
		}
		for _, l := range tail {
			// Each kept byte may become a 3-byte replacement character.
			if len(l) > 3*MaxLine || !utf8.ValidString(l) {
				t.Fatalf("tail line of %d bytes, valid UTF-8 %v", len(l), utf8.ValidString(l))
			}
			checkClean(t, l)
		}
		checkClean(t, strings.ReplaceAll(stream.String(), "\n", ""))
	})
}
