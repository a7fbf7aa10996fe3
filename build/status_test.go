package build

import (
	"strings"
	"testing"
	"time"

	"github.com/qimg/qimg/internal/qemutest"
)

func TestLastLine(t *testing.T) {
	var l lastLine
	for _, w := range []string{"one\n", "two\nthree\n", "\n  \n", ""} {
		l.Write([]byte(w))
	}
	if l.String() != "three" {
		t.Errorf("last line %q, want three", l.String())
	}
	l.Write([]byte(strings.Repeat("é", 500) + "\n"))
	if got := l.String(); len([]rune(got)) != maxStatusLine+3 || !strings.HasSuffix(got, "...") {
		t.Errorf("long line kept as %d runes", len([]rune(got)))
	}
}

// Status lines come while the install runs and stop when it ends.
func TestReportStatus(t *testing.T) {
	var buf qemutest.SyncBuffer
	l := &lastLine{}
	l.Write([]byte("Installing the base system\n"))
	stop := Options{Progress: &buf, StatusEvery: 20 * time.Millisecond}.reportStatus(l)
	time.Sleep(150 * time.Millisecond)
	stop()
	n := strings.Count(buf.String(), "build: installing: 0s, console: Installing the base system\n")
	time.Sleep(60 * time.Millisecond)
	if n < 2 || strings.Count(buf.String(), "\n") != n {
		t.Errorf("%d status lines, then:\n%s", n, buf.String())
	}
	Options{Progress: &buf, StatusEvery: -1}.reportStatus(l)() // never reports
}
