package qcow2

// Crash safety: "a writer killed at any point leaves a file that qemu-img
// check reports with no corruptions (leaks acceptable), or an untouched
// original". The test re-executes its own binary as a writer
// (TestCrashChild with QIMG_CRASH_CHILD set), SIGKILLs it after a random
// 5-300 ms, and then asks qemu-img about the file. The child prints
// "begin <op> <off> <len> <seed>" before and "ok" after every operation;
// data it acknowledged must read back through qemu-img unless a later
// operation touched it.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qimg/qimg/format/raw"
	"github.com/qimg/qimg/internal/qemutest"
)

const (
	crashEnvScenario = "QIMG_CRASH_CHILD"
	crashEnvImage    = "QIMG_CRASH_IMAGE"
	crashEnvSeed     = "QIMG_CRASH_SEED"
)

// crashPattern is the data the child writes for an operation's seed:
// incompressible for plain writes, compressible for compressed ones.
func crashPattern(seed uint64, n int64, compressible bool) []byte {
	b := make([]byte, n)
	if compressible {
		for i := range b {
			b[i] = byte(seed) + byte(i/64)
		}
		return b
	}
	x := seed*0x9e3779b97f4a7c15 | 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

// TestCrashChild is the writer the crash tests kill. Run by itself (no
// QIMG_CRASH_CHILD) it has nothing to do.
func TestCrashChild(t *testing.T) {
	scenario := os.Getenv(crashEnvScenario)
	if scenario == "" {
		return
	}
	path := os.Getenv(crashEnvImage)
	seed, _ := strconv.ParseUint(os.Getenv(crashEnvSeed), 10, 64)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	out := os.Stdout
	say := func(format string, args ...any) {
		// One write per line, unbuffered: what the parent reads after the
		// kill is exactly what was acknowledged.
		if _, err := fmt.Fprintf(out, format+"\n", args...); err != nil {
			os.Exit(3)
		}
	}
	fail := func(err error) {
		fmt.Fprintf(out, "error %v\n", err)
		os.Exit(2)
	}
	// The parent counts its delay from here, not from the exec: a busy
	// machine may take longer to start a race-instrumented binary than
	// the longest delay.
	say("ready")
	if scenario == "create" {
		for i := 0; ; i++ {
			size := (rng.Int64N(32) + 8) << 20
			cs := []int64{512, 4096}[i%2]
			say("begin create 0 %d %d", size, cs)
			if err := Create(path, CreateOptions{Size: size, ClusterSize: cs, Preallocation: PreallocMetadata}); err != nil {
				fail(err)
			}
			say("ok")
		}
	}
	// The key opens the encrypted scenario's images; others ignore it.
	img, err := Open(path, withChain(path, &OpenOptions{Writable: true, Key: []byte(crashPassword)}))
	if err != nil {
		fail(err)
	}
	if scenario == "rebase" {
		crashRebase(img, say, fail)
	}
	for {
		if err := crashStep(img, scenario, rng, say); err != nil {
			fail(err)
		}
	}
}

// crashRebase moves the image onto new.raw beside it, then waits for the
// kill.
func crashRebase(img *Image, say func(format string, args ...any), fail func(error)) {
	base, err := raw.Open(filepath.Join(filepath.Dir(img.Name()), "new.raw"), nil)
	if err != nil {
		fail(err)
	}
	say("begin rebase 0 0 0")
	if err := img.Rebase(context.Background(), base, "new.raw", "raw", nil); err != nil {
		fail(err)
	}
	if err := img.Close(); err != nil {
		fail(err)
	}
	say("ok")
	time.Sleep(time.Hour)
}

// crashStep runs one random operation of a writer scenario, announcing it
// with say before ("begin ...") and after ("ok").
func crashStep(img *Image, scenario string, rng *rand.Rand, say func(format string, args ...any)) error {
	cs := img.hdr.ClusterSize()
	size := img.Size()
	if scenario == "resize" && rng.IntN(3) == 0 {
		var newSize int64
		if rng.IntN(2) == 0 || size < 1<<20 {
			newSize = size + (rng.Int64N(2<<20)+1)&^511
		} else {
			newSize = (size - rng.Int64N(size/2)) &^ 511
		}
		newSize = min(newSize, crashMaxSize)
		say("begin resize 0 %d 0", newSize)
		if err := img.Resize(newSize, true); err != nil {
			return err
		}
		say("ok")
		return nil
	}
	off := rng.Int64N(size)
	n := min(size-off, rng.Int64N(128<<10)+1)
	opSeed := rng.Uint64()
	var err error
	switch op := rng.IntN(10); {
	case op < 5:
		say("begin write %d %d %d", off, n, opSeed)
		_, err = img.WriteAt(crashPattern(opSeed, n, false), off)
	case op < 7:
		say("begin zero %d %d %d", off, n, opSeed)
		err = img.WriteZeroes(off, n)
	case op < 8:
		say("begin discard %d %d %d", off, n, opSeed)
		err = img.Discard(off, n)
	case img.Encrypted(): // no compressed clusters in encrypted images
		say("begin write %d %d %d", off, n, opSeed)
		_, err = img.WriteAt(crashPattern(opSeed, n, false), off)
	default:
		off &^= cs - 1
		n = min(cs, size-off)
		say("begin compressed %d %d %d", off, n, opSeed)
		err = img.WriteCompressed(crashPattern(opSeed, n, true), off)
	}
	if err != nil {
		return err
	}
	say("ok")
	return nil
}

// crashModel is what the image must read as: bytes whose value is known,
// and the set of sizes it may have.
type crashModel struct {
	data  []byte
	known []bool
	size  int64
	cs    int64
	// sizes lists the sizes allowed after the kill (the size before an
	// interrupted resize, and the one it asked for).
	sizes []int64
	// hist lists the operations since the last reset, for messages.
	hist []string
}

// crashMaxSize bounds the virtual size in every scenario.
const crashMaxSize = 16 << 20

func newCrashModel(content []byte, cs int64) *crashModel {
	m := &crashModel{data: make([]byte, crashMaxSize), known: make([]bool, crashMaxSize), cs: cs}
	m.reset(content)
	return m
}

// reset makes the model say exactly content.
func (m *crashModel) reset(content []byte) {
	copy(m.data, content)
	clear(m.data[len(content):])
	clear(m.known[len(content):])
	for i := range content {
		m.known[i] = true
	}
	m.size = int64(len(content))
	m.sizes = []int64{m.size}
	m.hist = m.hist[:0]
}

func (m *crashModel) forget(off, n int64) {
	for i := off; i < off+n && i < int64(len(m.known)); i++ {
		m.known[i] = false
	}
}

// apply records one operation; done says it was acknowledged.
func (m *crashModel) apply(op string, off, n int64, seed uint64, done bool) {
	m.hist = append(m.hist, fmt.Sprintf("%s [%#x,+%#x) done=%v size=%#x", op, off, n, done, m.size))
	if op == "resize" {
		old := m.size
		if !done {
			m.sizes = []int64{old, off + n}
			if n < old {
				m.forget(n, old-n) // partly dropped
			}
			return
		}
		// Dropped clusters read as zeros when the disk grows again, and a
		// grown disk reads as zeros past the old end.
		lo, hi := min(n, old), max(n, old)
		clear(m.data[lo:hi])
		for i := lo; i < hi; i++ {
			m.known[i] = true
		}
		m.size = n
		m.sizes = []int64{n}
		return
	}
	if !done {
		m.forget(off, n)
		return
	}
	switch op {
	case "write":
		copy(m.data[off:off+n], crashPattern(seed, n, false))
	case "compressed":
		copy(m.data[off:off+n], crashPattern(seed, n, true))
	case "zero":
		clear(m.data[off : off+n])
	case "discard":
		from := (off + m.cs - 1) &^ (m.cs - 1)
		to := (off + n) &^ (m.cs - 1)
		if off+n == m.size {
			to = off + n
		}
		if from < to {
			clear(m.data[from:to])
		}
		return
	}
	for i := off; i < off+n; i++ {
		m.known[i] = true
	}
}

// crashRunChild starts the child, kills it after d and returns its output.
func crashRunChild(t *testing.T, scenario, path string, seed uint64, d time.Duration) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnvScenario+"="+scenario, crashEnvImage+"="+path,
		crashEnvSeed+"="+strconv.FormatUint(seed, 10), "GOMAXPROCS=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	ready := make(chan struct{})
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		r := bufio.NewReader(pipe)
		line, _ := r.ReadString('\n')
		if line == "ready\n" {
			close(ready)
		} else {
			stdout.WriteString(line)
		}
		io.Copy(&stdout, r)
	}()
	select {
	case <-ready:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child %s did not start within 2 minutes:\n%s", scenario, stderr.String())
	}
	time.Sleep(d)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-copied
	err = cmd.Wait()
	out := stdout.String()
	if strings.Contains(out, "\nerror ") || strings.HasPrefix(out, "error ") {
		t.Fatalf("child %s failed: %s\n%s", scenario, out[strings.Index(out, "error "):], stderr.String())
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child %s did not die by SIGKILL (%v):\n%s\n%s", scenario, err, out, stderr.String())
	}
	return out
}

// crashReplay applies the child's log to the model and returns the number
// of acknowledged operations.
func crashReplay(t *testing.T, m *crashModel, out string) int {
	t.Helper()
	acked := 0
	var op string
	var off, n int64
	var seed uint64
	pending := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "begin "):
			if _, err := fmt.Sscanf(line, "begin %s %d %d %d", &op, &off, &n, &seed); err != nil {
				t.Fatalf("bad child line %q: %v", line, err)
			}
			pending = true
		case line == "ok":
			m.apply(op, off, n, seed, true)
			acked++
			pending = false
		default:
			// Lines are written whole (one write to a pipe each), so
			// nothing else should appear.
			t.Fatalf("unexpected child output %q", line)
		}
	}
	if pending {
		m.apply(op, off, n, seed, false)
	}
	return acked
}

// crashCheck is the oracle: qemu-img check must find no corruption (leaks
// are fine) and qemu-img must read the whole image; it returns what
// qemu-img reads.
func crashCheck(t *testing.T, path string, allowLeaks bool) []byte {
	t.Helper()
	name := crashQemuName(t, path)
	out, code, stderr := qemutest.RunCode(t, "qemu-img", append([]string{"check", "--output=json"}, name...)...)
	var res struct {
		Corruptions int `json:"corruptions"`
		Leaks       int `json:"leaks"`
		CheckErrors int `json:"check-errors"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("qemu-img check %s: exit %d, %v\n%s%s", path, code, err, out, stderr)
	}
	leaksOK := code == 3 && allowLeaks
	if (code != 0 && !leaksOK) || res.Corruptions != 0 || res.CheckErrors != 0 {
		human, _, _ := qemutest.RunCode(t, "qemu-img", append([]string{"check"}, name...)...)
		t.Fatalf("qemu-img check %s after a kill: exit %d, %+v\n%s%s", path, code, res, human, stderr)
	}
	raw := filepath.Join(filepath.Dir(path), "check.raw")
	defer os.Remove(raw)
	qemutest.Img(t, append(append([]string{"convert", "-O", "raw"}, name...), raw)...)
	b, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// crashPassword is the key of the encrypted scenario's images.
const crashPassword = "crash-pw"

// crashQemuName is how qemu-img is given the image at path: its name, or
// for an encrypted image the secret and --image-opts with the key.
func crashQemuName(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var method [4]byte
	if _, err := f.ReadAt(method[:], 32); err != nil {
		t.Fatal(err)
	}
	if method == [4]byte{} {
		return []string{path}
	}
	return []string{"--object", "secret,id=sec0,data=" + crashPassword, "--image-opts",
		"driver=qcow2,file.filename=" + path + ",encrypt.key-secret=sec0"}
}

// crashCompare checks what qemu-img read against the model.
func crashCompare(t *testing.T, m *crashModel, got []byte, what string) {
	t.Helper()
	okSize := false
	for _, s := range m.sizes {
		okSize = okSize || int64(len(got)) == s
	}
	if !okSize {
		t.Fatalf("%s: qemu-img reads %d bytes, want one of %v", what, len(got), m.sizes)
	}
	for i := range got {
		if m.known[i] && got[i] != m.data[i] {
			j := i
			for j < len(got) && m.known[j] && got[j] != m.data[j] {
				j++
			}
			var hist []string
			for _, h := range m.hist {
				var op string
				var o, n int64
				fmt.Sscanf(h, "%s [%v,+%v)", &op, &o, &n)
				if op == "resize" || o < int64(j) && o+n > int64(i) {
					hist = append(hist, h)
				}
			}
			if len(m.hist) > 0 {
				hist = append(hist, "last: "+m.hist[len(m.hist)-1])
			}
			t.Fatalf("%s: acknowledged data lost: [%#x, %#x) reads %#x.., want %#x..\noperations on it since the last check:\n%s",
				what, i, j, got[i], m.data[i], strings.Join(hist, "\n"))
		}
	}
}

// crashConfig is an image the writer scenarios start from.
type crashConfig struct {
	opts string // qemu-img create -o
	cs   int64
	size string
}

var crashConfigs = []crashConfig{
	{"cluster_size=512", 512, "8M"},
	{"cluster_size=512,refcount_bits=64", 512, "8M"},
	{"cluster_size=4096,refcount_bits=1", 4096, "16M"},
	{"cluster_size=4096", 4096, "16M"},
	{"cluster_size=512,refcount_bits=8,lazy_refcounts=off", 512, "8M"},
}

// crashKills is how many times each scenario is killed.
const crashKills = 20

func crashDelay(rng *rand.Rand) time.Duration {
	return time.Duration(5+rng.IntN(296)) * time.Millisecond
}

// crashWriters runs a writer scenario: every few kills the image is made
// afresh by prepare, otherwise the next child continues on the image the
// last one left behind (so writers also start from crashed images).
func crashWriters(t *testing.T, scenario string, configs []crashConfig, prepare func(dir string, c crashConfig) (path string, content []byte), verify func(path string)) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	seed0 := rng.Uint64()
	t.Logf("seed %d", seed0)
	var path string
	var m *crashModel
	total := 0
	for i := range crashKills {
		if i%5 == 0 {
			c := configs[(i/5)%len(configs)]
			var content []byte
			path, content = prepare(dir, c)
			m = newCrashModel(content, c.cs)
		}
		seed := seed0 + uint64(i)
		d := crashDelay(rng)
		out := crashRunChild(t, scenario, path, seed, d)
		total += crashReplay(t, m, out)
		what := fmt.Sprintf("%s kill %d (seed %d, after %v)", scenario, i, seed, d)
		got := crashCheck(t, path, true)
		crashCompare(t, m, got, what)
		if verify != nil {
			verify(path)
		}
		m.reset(got)
	}
	if total < crashKills {
		t.Fatalf("only %d operations acknowledged in %d runs: the children barely ran", total, crashKills)
	}
	t.Logf("%s: %d kills, %d acknowledged operations", scenario, crashKills, total)
}

func crashFresh(dir string, c crashConfig, t *testing.T) (string, []byte) {
	p := filepath.Join(dir, "img.qcow2")
	os.Remove(p)
	qemutest.Img(t, "create", "-f", "qcow2", "-o", c.opts, p, c.size)
	return p, qemutest.ToRaw(t, p)
}

func TestCrashWrites(t *testing.T) {
	t.Parallel()
	crashWriters(t, "write", crashConfigs, func(dir string, c crashConfig) (string, []byte) { return crashFresh(dir, c, t) }, nil)
}

// TestCrashEncrypted writes into LUKS-encrypted images (and legacy AES
// ones), which qemu-img must then decrypt to the acknowledged data.
func TestCrashEncrypted(t *testing.T) {
	t.Parallel()
	configs := []crashConfig{
		{"encrypt.format=luks,cluster_size=4096", 4096, "16M"},
		{"encrypt.format=aes,cluster_size=512", 512, "8M"},
	}
	crashWriters(t, "write", configs, func(dir string, c crashConfig) (string, []byte) {
		p := filepath.Join(dir, "img.qcow2")
		os.Remove(p)
		qemutest.CreateEncrypted(t, "create", "-q", "-f", "qcow2", "--object", "secret,id=sec0,data="+crashPassword,
			"-o", c.opts+",encrypt.key-secret=sec0"+map[bool]string{true: ",encrypt.iter-time=10"}[strings.Contains(c.opts, "luks")], p, c.size)
		n, err := qfmtSize(c.size)
		if err != nil {
			t.Fatal(err)
		}
		return p, make([]byte, n)
	}, nil)
}

// qfmtSize parses the sizes of crashConfig ("8M", "16M").
func qfmtSize(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSuffix(s, "M"), 10, 64)
	return n << 20, err
}

// TestCrashBacking writes over a qcow2 backing file: partial clusters are
// copied on write from it.
func TestCrashBacking(t *testing.T) {
	t.Parallel()
	crashWriters(t, "write", crashConfigs, func(dir string, c crashConfig) (string, []byte) {
		base := filepath.Join(dir, "base.qcow2")
		p := filepath.Join(dir, "img.qcow2")
		os.Remove(base)
		os.Remove(p)
		qemutest.Img(t, "create", "-f", "qcow2", "-o", c.opts, base, c.size)
		qemutest.IO(t, base, "write -P 0x5a 0 1M", "write -P 0xa5 2M 3M")
		qemutest.Img(t, "create", "-f", "qcow2", "-o", c.opts, "-b", "base.qcow2", "-F", "qcow2", p, c.size)
		return p, qemutest.ToRaw(t, p)
	}, nil)
}

// TestCrashSnapshot writes after qemu-img snapshot -c: L2 tables and data
// clusters are shared with the snapshot and must be copied, and the
// snapshot must keep reading what it held.
func TestCrashSnapshot(t *testing.T) {
	t.Parallel()
	var snapData []byte
	// Snapshots need refcounts of 2: not with refcount_bits=1.
	var configs []crashConfig
	for _, c := range crashConfigs {
		if !strings.Contains(c.opts, "refcount_bits=1,") && !strings.HasSuffix(c.opts, "refcount_bits=1") {
			configs = append(configs, c)
		}
	}
	crashWriters(t, "write", configs, func(dir string, c crashConfig) (string, []byte) {
		p := filepath.Join(dir, "img.qcow2")
		os.Remove(p)
		qemutest.Img(t, "create", "-f", "qcow2", "-o", c.opts, p, c.size)
		qemutest.IO(t, p, "write -P 0x5a 0 1M", "write -P 0xa5 2M 1M", "write -c -P 0x33 3M 64k")
		qemutest.Img(t, "snapshot", "-c", "s1", p)
		snapData = qemutest.ToRaw(t, p)
		return p, snapData
	}, func(p string) {
		raw := filepath.Join(filepath.Dir(p), "snap.raw")
		defer os.Remove(raw)
		qemutest.Img(t, "convert", "-l", "snapshot.name=s1", "-O", "raw", p, raw)
		got, err := os.ReadFile(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, snapData) {
			t.Fatal("snapshot s1 no longer reads what it held")
		}
	})
}

// TestCrashResize grows (moving the L1 table with 512-byte clusters) and
// shrinks the image between writes.
func TestCrashResize(t *testing.T) {
	t.Parallel()
	// L1 growth is frequent with small clusters.
	var configs []crashConfig
	for _, c := range crashConfigs {
		if c.cs == 512 {
			configs = append(configs, c)
		}
	}
	crashWriters(t, "resize", configs, func(dir string, c crashConfig) (string, []byte) {
		p := filepath.Join(dir, "img.qcow2")
		os.Remove(p)
		qemutest.Img(t, "create", "-f", "qcow2", "-o", c.opts, p, "1M")
		return p, make([]byte, 1<<20)
	}, nil)
}

// TestCrashCreate kills Create with metadata preallocation: the path must
// hold nothing, or a complete, clean image.
func TestCrashCreate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "new.qcow2")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	var lastSize int64 = -1
	complete := 0
	for i := range crashKills {
		seed := rng.Uint64()
		d := crashDelay(rng)
		out := crashRunChild(t, "create", p, seed, d)
		sizes := []int64{lastSize}
		for _, line := range strings.Split(out, "\n") {
			var size, cs int64
			if _, err := fmt.Sscanf(line, "begin create 0 %d %d", &size, &cs); err == nil {
				sizes = append(sizes, size)
			}
			if line == "ok" {
				lastSize = sizes[len(sizes)-1]
				sizes = []int64{lastSize}
			}
		}
		if _, err := os.Stat(p); os.IsNotExist(err) {
			if lastSize >= 0 {
				t.Fatalf("kill %d: the image created before is gone", i)
			}
			continue
		}
		// A complete image: clean, not even leaks.
		got := crashCheck(t, p, false)
		okSize := false
		for _, s := range sizes {
			okSize = okSize || int64(len(got)) == s
		}
		if !okSize || !bytes.Equal(got, make([]byte, len(got))) {
			t.Fatalf("kill %d after %v: image of %d bytes (want one of %v, all zeros)", i, d, len(got), sizes)
		}
		lastSize = int64(len(got))
		complete++
	}
	if complete == 0 {
		t.Fatal("no Create completed: the children barely ran")
	}
}

// TestCrashRebase kills a rebase onto a backing file that differs from the
// old one in half of its clusters: whatever backing file the header names
// afterwards, qemu-img must read what the image read before.
func TestCrashRebase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	const size = 64 << 20
	old, other := crashPattern(rng.Uint64(), size, false), make([]byte, size)
	copy(other, old)
	for c := 0; c < size; c += 8192 { // every other 4 KiB cluster differs
		copy(other[c:c+4096], crashPattern(rng.Uint64(), 4096, false))
	}
	if err := os.WriteFile(filepath.Join(dir, "old.raw"), old, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "new.raw"), other, 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "img.qcow2")
	finished := 0
	for i := range crashKills {
		os.Remove(p)
		qemutest.Img(t, "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", "-b", "old.raw", "-F", "raw", p)
		qemutest.IO(t, p, "write -P 0x11 1M 64k", "write -z 3M 8k", "write -c -P 0x22 5M 4k")
		want := qemutest.ToRaw(t, p)
		d := time.Duration(20+rng.IntN(200)) * time.Millisecond
		out := crashRunChild(t, "rebase", p, 0, d)
		if strings.Contains(out, "ok") {
			finished++
		}
		if got := crashCheck(t, p, true); !bytes.Equal(got, want) {
			t.Fatalf("kill %d after %v: qemu-img reads different data (log %q)", i, d, out)
		}
	}
	t.Logf("%d kills, %d rebases finished before the kill", crashKills, finished)
	if finished == crashKills {
		t.Fatal("every rebase finished before its kill: the test interrupted none")
	}
}
