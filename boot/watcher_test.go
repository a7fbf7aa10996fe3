package boot

import (
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
)

// Lines as the programs print them on a serial console (kernel 6.1,
// systemd 252, initramfs-tools 0.142, cloud-init 22.4, agetty), with the
// escape sequences systemd adds.
const (
	lineSyslinux  = "SYSLINUX 6.04 EDD 20191223 Copyright (C) 1994-2015 H. Peter Anvin et al"
	lineKernel    = "[    0.000000] Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)"
	lineInitrd    = "[    2.514201] Run /init as init process"
	lineWelcome   = "Welcome to \x1b[1mDebian GNU/Linux 12 (bookworm)\x1b[0m!"
	lineCloudInit = "[   21.305562] cloud-init[245]: Cloud-init v. 22.4.2 running 'init-local' at Wed, 01 Jan 2025 00:00:21 +0000. Up 21.18 seconds."
	lineLogin     = "debian12 login: "
	lineFinished  = "[   64.011287] cloud-init[412]: Cloud-init v. 22.4.2 finished at Wed, 01 Jan 2025 00:01:04 +0000. Datasource DataSourceNoCloud [seed=/dev/sr0][dsmode=net].  Up 63.87 seconds"
)

func at(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func TestWatcherSucceedsWhenAllExpectedMarkersAppear(t *testing.T) {
	m := DefaultMarkers()
	m.Expect = append(m.Expect, Marker{"marker", regexp.MustCompile(`QIMG-MARKER`)})
	w := NewWatcher(m)
	steps := []struct {
		line string
		want State
	}{
		{CleanLine([]byte("\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2-debian-1.16.2-1)\r")), Waiting},
		{"Booting from Hard Disk...", Waiting},
		{lineSyslinux, Waiting},
		{lineKernel, Waiting},
		{lineInitrd, Waiting},
		{CleanLine([]byte(lineWelcome)), Waiting},
		{lineCloudInit, Waiting},
		{lineLogin, Waiting},
		{"[   60.1] cloud-init[412]: QIMG-MARKER branch=boot", Waiting},
		{lineLogin, Waiting}, // seen twice: counts once
		{lineFinished, Succeeded},
		{"more output", Succeeded},
	}
	for i, s := range steps {
		if got := w.Line(s.line, at(float64(i))); got != s.want {
			t.Fatalf("after %q: state %v, want %v (missing %v)", s.line, got, s.want, w.Missing())
		}
	}
	var names []string
	for _, p := range w.Phases() {
		names = append(names, p.Name)
	}
	want := []string{PhaseFirmware, PhaseBootloader, PhaseKernel, PhaseInitramfs, PhaseInit, PhaseCloudInit, PhaseLogin, PhaseCloudDone}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("phases %v, want %v", names, want)
	}
	if got := w.Matched(); len(got) != 3 || got[0].Name != PhaseLogin || got[0].At != at(7) || got[1].Name != "marker" {
		t.Errorf("matched %+v", got)
	}
	if w.Failure() != nil {
		t.Errorf("failure %+v on a good boot", w.Failure())
	}
}

func TestWatcherFailureMarkers(t *testing.T) {
	for _, line := range []string{
		"No bootable device.",
		"[    3.160452] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
		"*** STOP: 0x0000007B (0xFFFFF880009A9928,0xFFFFFFFFC0000034,0x0000000000000000,0x0000000000000000)",
		"INACCESSIBLE_BOOT_DEVICE",
		"Stop code: INACCESSIBLE BOOT DEVICE",
		"*** STOP: 0x000000D1 (0x00000000,0x00000002,0x00000000,0x00000000)",
		"[    9.51] BUG: unable to handle page fault for address: ffffffffc0000000",
		"[   12.1] Oops: 0002 [#1] PREEMPT SMP NOPTI",
		"You are in emergency mode. After logging in, type \"journalctl -xb\" to view",
		"Give root password for maintenance",
		"Cannot open access to console, the root account is locked.",
		"You are in rescue mode. After logging in, type \"journalctl -xb\" to view",
		"ALERT!  UUID=7c4e2a10-58b3-4d6f-9a21-0e3b5c7d9f42 does not exist.  Dropping to a shell!",
		"Gave up waiting for root file system device.  Common problems:",
		"(initramfs) ",
		"[   40.2] cloud-init[300]: Traceback (most recent call last):",
		"[   41.0] cloud-init[300]: 2025-01-01 00:00:41,000 - util.py[ERROR]: Failed reading config",
		"[   42.0] cloud-init[300]: 2025-01-01 00:00:42,000 - cc_scripts_user.py[WARNING]: Failed to run module scripts-user (scripts in /var/lib/cloud/instance/scripts)",
		"[   42.0] cloud-init[300]: 2025-01-01 00:00:42,000 - util.py[WARNING]: Running module scripts-user (<module 'cloudinit.config.cc_scripts_user' from '/usr/lib/python3/dist-packages/cloudinit/config/cc_scripts_user.py'>) failed",
		"[FAILED] Failed to start cloud-final.service - Execute cloud user/final scripts.",
		CleanLine([]byte("[\x1b[0;1;31mFAILED\x1b[0m] Failed to start \x1b[0;1;39mcloud-init.service\x1b[0m - Initial cloud-init job (metadata service crawler).")),
	} {
		w := NewWatcher(DefaultMarkers())
		w.Line(lineKernel, at(1))
		if got := w.Line(line, at(2)); got != Failed {
			t.Errorf("%q: state %v, want Failed", line, got)
			continue
		}
		if f := w.Failure(); f == nil || f.Line != line || f.At != at(2) {
			t.Errorf("%q: failure %+v", line, f)
		}
		// A failure is final: the markers that follow change nothing.
		w.Line(lineLogin, at(3))
		if got := w.Line(lineFinished, at(4)); got != Failed {
			t.Errorf("%q then success markers: state %v", line, got)
		}
	}
}

// Windows' commonest failure after a conversion is named as such.
func TestWatcherInaccessibleBootDevice(t *testing.T) {
	w := NewWatcher(DefaultMarkers())
	w.Line("*** STOP: 0x0000007B (0xFFFFF880009A9928,0xFFFFFFFFC0000034,0x0000000000000000,0x0000000000000000)", at(1))
	if f := w.Failure(); f == nil || f.Name != "inaccessible boot device" {
		t.Errorf("failure %+v, want inaccessible boot device", f)
	}
}

// Lines healthy Debian boots print that contain words like error, failed,
// panic or emergency: none of them may stop a boot.
func TestWatcherBenignLines(t *testing.T) {
	for _, line := range []string{
		"[    0.345] ACPI Error: AE_NOT_FOUND, While resolving a named reference package element (20220331/dspkginit-438)",
		"[    1.2] RAS: Correctable Errors collector initialized.",
		"[    1.3] panic: no",
		"[    0.0] Kernel command line: root=UUID=x ro console=ttyS0 panic=10",
		"[    2.1] systemd[1]: Created slice system-serial\\x2dgetty.slice - Slice /system/serial-getty.",
		"[  OK  ] Reached target emergency.target - Emergency Mode.", // not printed on a good boot, but harmless words
		"[FAILED] Failed to start ifup@ens3.service - ifup for ens3.",
		"[   30.1] cloud-init[300]: 2025-01-01 00:00:30,100 - util.py[WARNING]: did not find either path /sys/class/dmi/id or dmidecode command",
		"[   31.0] cloud-init[300]: ci-info: no authorized SSH keys fingerprints found for user debian.",
		"[   32.0] cloud-init[300]: Generating public/private rsa key pair.",
		"Debian GNU/Linux 12 debian12 ttyS0",
		"Boot failed: not a bootable disk", // SeaBIOS goes on to the next device
		"Last login: Wed Jan  1 00:00:00 UTC 2025 on ttyS0",
		"debian12 login:", // not yet the whole prompt
	} {
		w := NewWatcher(DefaultMarkers())
		if got := w.Line(line, at(1)); got != Waiting {
			t.Errorf("%q: state %v, want Waiting (failure %+v)", line, got, w.Failure())
		}
	}
}

func TestWatcherNoDataSourceWithSeed(t *testing.T) {
	o := Options{Seed: "seed.iso", NoDefaultExpect: true}
	w := NewWatcher(o.markers())
	line := "[   64.0] cloud-init[412]: Cloud-init v. 22.4.2 finished at Wed, 01 Jan 2025 00:01:04 +0000. Datasource DataSourceNone.  Up 63.87 seconds"
	if got := w.Line(line, at(1)); got != Failed {
		t.Errorf("state %v, want Failed", got)
	}
	o.Seed = ""
	if got := NewWatcher(o.markers()).Line(line, at(1)); got != Succeeded {
		t.Errorf("without a seed: state %v, want Succeeded (no expected markers)", got)
	}
}

// A login prompt before cloud-init started: cloud-init was disabled by
// its generator (no data source found) and will never finish.
func TestWatcherLoginBeforeCloudInit(t *testing.T) {
	w := NewWatcher(DefaultMarkers())
	w.Line(lineKernel, at(1))
	if got := w.Line(lineLogin, at(40)); got != Failed {
		t.Fatalf("state %v, want Failed", got)
	}
	if f := w.Failure(); f.Name != "cloud-init did not start" || f.At != at(40) || f.Line != lineLogin {
		t.Errorf("failure %+v", f)
	}
	// Without the default expectations (a guest without cloud-init) the
	// prompt is fine.
	w = NewWatcher(Options{NoDefaultExpect: true}.markers())
	if got := w.Line(lineLogin, at(40)); got != Succeeded {
		t.Errorf("without cloud-init expected: state %v, failure %+v", got, w.Failure())
	}
}

func TestWatcherSameMarkerInTwoLists(t *testing.T) {
	re := regexp.MustCompile(`X`)
	w := NewWatcher(Markers{Expect: []Marker{{"x", re}}, Phases: []Marker{{"x phase", re}}})
	if got := w.Line("X", at(1)); got != Succeeded {
		t.Fatalf("state %v", got)
	}
	if len(w.Phases()) != 1 || len(w.Matched()) != 1 {
		t.Errorf("phases %v matched %v", w.Phases(), w.Matched())
	}
}

func TestConsolePromptWithoutNewline(t *testing.T) {
	w := NewWatcher(Markers{Expect: []Marker{{PhaseLogin, regexp.MustCompile(loginPattern)}}})
	var stream strings.Builder
	c := NewConsole(w, func() time.Duration { return at(7) }, &stream)
	c.Write([]byte("\r\nDebian GNU/Linux 12 debian12 ttyS0\r\n\r\ndebian"))
	if c.State() != Waiting {
		t.Fatal("a prompt in part succeeded")
	}
	c.Write([]byte("12 login: "))
	if c.State() != Succeeded {
		t.Fatalf("state %v after the prompt, missing %v", c.State(), w.Missing())
	}
	if tail := c.Tail(); tail[len(tail)-1] != lineLogin {
		t.Errorf("tail %q does not end with the prompt", tail)
	}
	c.Flush()
	if got := stream.String(); got != "\nDebian GNU/Linux 12 debian12 ttyS0\n\ndebian12 login: \n" {
		t.Errorf("stream %q", got)
	}
}

func TestConsoleBoundsAndTail(t *testing.T) {
	c := NewConsole(NewWatcher(DefaultMarkers()), func() time.Duration { return 0 }, nil)
	long := strings.Repeat("a", 3*MaxLine+10)
	c.Write([]byte(long + "\n"))
	if c.Lines() != 4 {
		t.Errorf("a %d-byte line made %d lines, want 4", len(long), c.Lines())
	}
	c.Write([]byte(strings.Repeat("b", MaxLine) + "\n"))
	if c.Lines() != 5 {
		t.Errorf("a line of MaxLine bytes made %d lines, want 1", c.Lines()-4)
	}
	for i := range 100 {
		c.Write([]byte(strings.Repeat("x", i%7) + "\n"))
	}
	tail := c.Tail()
	if len(tail) != TailLines {
		t.Fatalf("tail has %d lines", len(tail))
	}
	if tail[TailLines-1] != strings.Repeat("x", 99%7) || tail[0] != strings.Repeat("x", 60%7) {
		t.Errorf("tail out of order: first %q last %q", tail[0], tail[TailLines-1])
	}
}

// A stream that fails is dropped; the console goes on.
func TestConsoleFailingStream(t *testing.T) {
	c := NewConsole(NewWatcher(DefaultMarkers()), func() time.Duration { return 0 }, failingWriter{})
	c.Write([]byte("one\ntwo\n" + lineLogin))
	if c.Lines() != 2 || c.State() != Failed { // a prompt before cloud-init
		t.Errorf("lines %d, state %v", c.Lines(), c.State())
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

func TestCleanLine(t *testing.T) {
	for in, want := range map[string]string{
		"[\x1b[0;32m  OK  \x1b[0m] Started": "[  OK  ] Started",
		"a\x1b]0;title\x07b":                "ab",
		"a\x1b]52;c;ZXZpbA==\x1b\\b":        "ab",
		"a\x1bPdcs\x1b\\b":                  "ab",
		"a\x1b(Bb":                          "aBb", // ESC ( is two bytes; B is then text
		"tab\there\r":                       "tab here",
		"bell\x07\x08back":                  "bellback",
		"c1\u009bx":                         "c1x",
		"bad\xffutf8":                       "bad\ufffdutf8",
		"cut\x1b[1;":                        "cut",
		"é ✓":                               "é ✓",
	} {
		if got := CleanLine([]byte(in)); got != want {
			t.Errorf("CleanLine(%q) = %q, want %q", in, got, want)
		}
	}
}

// checkClean fails if s holds a control character.
func checkClean(t *testing.T, s string) {
	t.Helper()
	for _, r := range s {
		if unicode.IsControl(r) {
			t.Fatalf("control character %U in %q", r, s)
		}
	}
}

// readConsole returns a real console transcript from testdata.
func readConsole(t *testing.T, name string) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The raw console of a real boot of scripts/boot-image.sh's guest under
// TCG with a NoCloud seed, fed in chunks of every kind of size (the login
// prompt alone in a chunk, or followed on its line by cloud-init's
// output): the same verdict and phases each time.
func TestConsoleRealBoot(t *testing.T) {
	raw := readConsole(t, "debian12-tcg-success.console.gz")
	for _, size := range []int{13, 512, 4096, 32 << 10, len(raw)} {
		m := DefaultMarkers()
		m.Expect = append(m.Expect, Marker{"marker", regexp.MustCompile(`QIMG-MARKER host=qimg-boot `)})
		w := NewWatcher(m)
		c := NewConsole(w, func() time.Duration { return 0 }, nil)
		for p := raw; len(p) > 0; {
			n := min(size, len(p))
			c.Write(p[:n])
			p = p[n:]
		}
		if w.State() != Succeeded {
			t.Errorf("chunks of %d: state %v, missing %v, failure %+v", size, w.State(), w.Missing(), w.Failure())
		}
		var names []string
		for _, p := range w.Phases() {
			names = append(names, p.Name)
		}
		want := []string{PhaseFirmware, PhaseBootloader, PhaseKernel, PhaseInitramfs, PhaseInit, PhaseCloudInit, PhaseLogin, PhaseCloudDone}
		if strings.Join(names, ",") != strings.Join(want, ",") {
			t.Errorf("chunks of %d: phases %v", size, names)
		}
	}
}

// A failure marker seen on a line still being written is reported with
// the line it grows into, not with its first bytes.
func TestWatcherFailureLineCompletes(t *testing.T) {
	w := NewWatcher(Markers{Fail: []Marker{{"installer failed", regexp.MustCompile(`^installer: FAILED: `)}}})
	if w.Line("installer: FAILED: ", time.Second) != Failed {
		t.Fatal("the marker on an unfinished line was not seen")
	}
	w.Line("installer: FAILED: no answer file", time.Second)
	w.Line("later output", 2*time.Second)
	if got := w.Failure().Line; got != "installer: FAILED: no answer file" {
		t.Errorf("failure line %q", got)
	}
}
