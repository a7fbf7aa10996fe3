package qemutest

import (
	"bytes"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// scripts remembers, per script path, what a build script printed, so a
// test binary runs each once.
var scripts sync.Map // absolute path -> *scriptRun

type scriptRun struct {
	once sync.Once
	out  string
	err  error
}

// Script runs one of the scripts that build a cached guest artefact
// (scripts/boot-image.sh, scripts/installer-iso.sh: the first run builds
// it, later ones only print where it is) once per test binary, and returns
// what it printed, trimmed: the artefact's path. A failing script fails
// the test with its standard error.
func Script(t testing.TB, path string) string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := scripts.LoadOrStore(abs, &scriptRun{})
	r := v.(*scriptRun)
	r.once.Do(func() {
		var stderr bytes.Buffer
		cmd := exec.Command("bash", abs)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			r.err = errors.New(path + ": " + err.Error() + "\n" + stderr.String())
			return
		}
		r.out = strings.TrimSpace(string(out))
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.out
}

// CancelOn is a console stream that calls cancel once a chunk written to
// it contains s: a test's Ctrl-C at a chosen point of a boot.
func CancelOn(s string, cancel func()) io.Writer { return cancelOn{s, cancel} }

type cancelOn struct {
	s      string
	cancel func()
}

func (c cancelOn) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(c.s)) {
		c.cancel()
	}
	return len(p), nil
}

// SyncBuffer is a bytes.Buffer that a console goroutine and the test may
// use at once.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
