package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qimg/qimg/guestfs/redo"
)

// TestInjectRedoKilled kills `qimg inject` editing ext2 and FAT16
// partitions of a qcow2 image: before chosen steps of its redo log (in
// an in-process run of the command, this test binary) and at random
// moments (the qimg binary, which also lands inside qcow2's own
// writes). After each kill qemu-img check finds no corruption; then the
// next `qimg inject` finishes the interrupted edit or drops it, and the
// guest holds exactly the old files or all the new ones, fsck clean.
const (
	redoChildArgs  = "QIMG_INJECT_REDO_ARGS"
	redoChildAt    = "QIMG_INJECT_REDO_AT"
	redoChildSteps = "QIMG_INJECT_REDO_STEPS"
)

// TestInjectRedoChild runs the command line in its environment, dying
// before redo step N; nothing unless the crash test started it.
func TestInjectRedoChild(t *testing.T) {
	args := os.Getenv(redoChildArgs)
	if args == "" {
		return
	}
	at, _ := strconv.Atoi(os.Getenv(redoChildAt))
	var steps []byte
	var stdout, stderr bytes.Buffer
	e := &env{ctx: context.Background(), stdout: &stdout, stderr: &stderr, redoTrace: func(s redo.Step) {
		steps = append(steps, '0'+byte(s))
		if len(steps) == at {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}}
	if code := runEnv(e, strings.Split(args, "\x1f")); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if err := os.WriteFile(os.Getenv(redoChildSteps), steps, 0o644); err != nil {
		t.Fatal(err)
	}
}

// injectVariant is a partition the test edits, and how it tells the old
// tree from the new one.
type injectVariant struct {
	name, dev string
	offset    int64
	args      []string
	// state returns "old", "new" or a description of anything else,
	// from the partition's raw bytes; it fails the test if fsck finds
	// anything.
	state func(t *testing.T, part string) string
}

func TestInjectRedoKilled(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "qimg")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	payload := bytes.Repeat([]byte("payload-"), 1<<20/8)
	if err := os.WriteFile(filepath.Join(dir, "payload"), payload, 0o644); err != nil {
		t.Fatal(err)
	}
	redoDiskQcow2(t, dir, guestTree(t, dir))
	up := filepath.Join(dir, "payload") + ":/payload"
	for _, v := range []injectVariant{
		{"ext2", "/dev/sda1", 1 << 20,
			[]string{"--write", "/etc/hostname:new-name\n", "--upload", up, "--mkdir", "/srv/data", "--delete", "/home/user"},
			func(t *testing.T, part string) string {
				if out, err := exec.Command("/usr/sbin/e2fsck", "-fn", part).CombinedOutput(); err != nil {
					t.Fatalf("e2fsck -fn: %v\n%s", err, out)
				}
				return oldOrNew(debugfs(t, part, "cat /etc/hostname"), debugfs(t, part, "cat /payload"), "old-name\n", "new-name\n", payload)
			}},
		{"fat16", "/dev/sda2", 9 << 20,
			[]string{"--write", "/EFI/BOOT/grub.cfg:new-cfg\n", "--upload", up, "--mkdir", "/EFI/new", "--delete", "/old.txt"},
			func(t *testing.T, part string) string {
				fsckFATStrict(t, part)
				cfg, _ := exec.Command("mtype", "-i", part, "::/EFI/BOOT/grub.cfg").Output()
				got, _ := exec.Command("mtype", "-i", part, "::/payload").Output()
				return oldOrNew(string(cfg), string(got), "old-cfg\n", "new-cfg\n", payload)
			}},
	} {
		t.Run(v.name, func(t *testing.T) { injectRedoVariant(t, dir, bin, v) })
	}
}

// oldOrNew judges a marker file and the payload.
func oldOrNew(marker, payload, oldMarker, newMarker string, want []byte) string {
	switch {
	case marker == oldMarker && payload == "":
		return "old"
	case marker == newMarker && payload == string(want):
		return "new"
	}
	return fmt.Sprintf("marker %q and a payload of %d bytes", marker, len(payload))
}

var fatCleanLine = regexp.MustCompile(`^(fsck\.fat .*|.*: \d+ files, \d+/\d+ clusters)$`)

// fsckFATStrict fails on any finding of fsck.fat -n, even leaks.
func fsckFATStrict(t *testing.T, part string) {
	out, err := exec.Command("fsck.fat", "-n", part).CombinedOutput()
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if err != nil || !fatCleanLine.MatchString(l) {
			t.Fatalf("fsck.fat -n: %v\n%s", err, out)
		}
	}
}

// redoDiskQcow2 makes pristine.qcow2: an MBR disk with ext2 (1 KiB
// blocks) of src on sda1 and FAT16 on sda2.
func redoDiskQcow2(t *testing.T, dir, src string) {
	raw := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(raw, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(raw, 26<<20)
	cmd := exec.Command("sfdisk", "-q", raw)
	cmd.Stdin = strings.NewReader("label: dos\n,8M,83\n,+,e\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	ext2, vfat := filepath.Join(dir, "ext2"), filepath.Join(dir, "vfat")
	tool(t, dir, "mkfs.ext2", "-q", "-F", "-b", "1024", "-d", src, ext2, "8M")
	tool(t, dir, "mkfs.vfat", "-F", "16", "-C", vfat, strconv.Itoa(16<<10))
	efi := filepath.Join(dir, "efi")
	os.MkdirAll(filepath.Join(efi, "EFI/BOOT"), 0o755)
	os.WriteFile(filepath.Join(efi, "EFI/BOOT/grub.cfg"), []byte("old-cfg\n"), 0o644)
	os.WriteFile(filepath.Join(efi, "old.txt"), bytes.Repeat([]byte("old "), 3000), 0o644)
	tool(t, dir, "mcopy", "-i", vfat, "-s", "-Q", filepath.Join(efi, "EFI"), filepath.Join(efi, "old.txt"), "::/")
	f, err := os.OpenFile(raw, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for file, off := range map[string]int64{ext2: 1 << 20, vfat: 9 << 20} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	img(t, dir, "convert", "-O", "qcow2", "disk.raw", "pristine.qcow2")
}

// inProcess runs inject in the child, dying before redo step at (0:
// never); it returns the steps' kinds if the child lived.
func inProcess(t *testing.T, dir string, args []string, at int) ([]byte, bool) {
	stepsFile := filepath.Join(t.TempDir(), "steps")
	cmd := exec.Command(os.Args[0], "-test.run=^TestInjectRedoChild$", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), redoChildArgs+"="+strings.Join(args, "\x1f"), redoChildAt+"="+strconv.Itoa(at), redoChildSteps+"="+stepsFile)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL {
		return nil, false
	}
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	b, err := os.ReadFile(stepsFile)
	if err != nil {
		t.Fatal(err)
	}
	return b, true
}

// killPoints are the redo steps to die before: every one but the log
// writes of the edit, of which a dozen spread out and the last three
// (table, footer).
func killPoints(kinds []byte) []int {
	var writes, at []int
	for i, k := range kinds {
		if redo.Step(k-'0') == redo.LogWrite {
			writes = append(writes, i+1)
		} else {
			at = append(at, i+1)
		}
	}
	for i := 0; i < len(writes); i += max(1, len(writes)/12) {
		at = append(at, writes[i])
	}
	at = append(at, writes[max(0, len(writes)-3):]...)
	slices.Sort(at)
	return slices.Compact(at)
}

func injectRedoVariant(t *testing.T, dir, bin string, v injectVariant) {
	edit := filepath.Join(dir, "edit.qcow2")
	log := edit + ".qimg-redo"
	fresh := func() {
		b, err := os.ReadFile(filepath.Join(dir, "pristine.qcow2"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(edit, b, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Remove(log)
	}
	args := append([]string{"inject", "-q", "-m", v.dev, "edit.qcow2"}, v.args...)
	fresh()
	start := time.Now()
	kinds, _ := inProcess(t, dir, args, 0)
	full := time.Since(start)
	if st := v.state(t, partOf(t, dir, v.offset)); st != "new" {
		t.Fatalf("after the edit: %s", st)
	}
	seen := map[string]int{}
	judge := func(what string) {
		check := qemuIn(t, dir, "qemu-img", "check", "edit.qcow2")
		if check.code != 0 && check.code != 3 || strings.Contains(check.stdout+check.stderr, "ERROR") {
			t.Fatalf("%s: qemu-img check: %+v", what, check)
		}
		ls := qimgIn(t, dir, "ls", "-m", v.dev, "edit.qcow2", "/")
		pending := false
		if p, err := redo.Read(log); err == nil {
			p.Close()
			pending = true
		}
		if ls.code != 0 || pending != strings.Contains(ls.stderr, "interrupted edit") {
			t.Fatalf("%s: qimg ls with a committed log %v: %+v", what, pending, ls)
		}
		// A dry run starts from the image as the interrupted edit
		// leaves it, and changes nothing.
		if dry := qimgIn(t, dir, "inject", "--dry-run", "-m", v.dev, "edit.qcow2", "--mkdir", "/dry"); dry.code != 0 {
			t.Fatalf("%s: dry run: %+v", what, dry)
		}
		if _, err := os.Stat(log); pending && err != nil {
			t.Fatalf("%s: the dry run removed the log", what)
		}
		// The next edit finishes or drops the interrupted one.
		if out, err := runIn(dir, bin, "inject", "-m", v.dev, "edit.qcow2", "--mkdir", "/recovered"); err != nil {
			t.Fatalf("%s: recovering inject: %v\n%s", what, err, out)
		}
		if _, err := os.Stat(log); err == nil {
			t.Fatalf("%s: the log is still there", what)
		}
		if check := qemuIn(t, dir, "qemu-img", "check", "edit.qcow2"); check.code != 0 && check.code != 3 {
			t.Fatalf("%s: qemu-img check after recovery: %+v", what, check)
		}
		st := v.state(t, partOf(t, dir, v.offset))
		if st != "old" && st != "new" || pending && st != "new" {
			t.Fatalf("%s (committed log %v): after recovery %s", what, pending, st)
		}
		seen[st]++
		if pending {
			seen["log"]++
		}
	}
	points := killPoints(kinds)
	for _, at := range points {
		fresh()
		if _, lived := inProcess(t, dir, args, at); lived {
			t.Fatalf("the child lived past redo step %d of %d", at, len(kinds))
		}
		judge(fmt.Sprintf("killed before redo step %d (%v) of %d", at, redo.Step(kinds[at-1]-'0'), len(kinds)))
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 14))
	for range 8 {
		fresh()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(rng.Int64N(int64(full) + 1))
		time.Sleep(delay)
		cmd.Process.Kill()
		cmd.Wait()
		judge(fmt.Sprintf("killed after %v", delay))
	}
	if seen["old"] == 0 || seen["new"] == 0 || seen["log"] == 0 {
		t.Fatalf("kills left %v: old trees, new ones and committed logs should all occur", seen)
	}
	t.Logf("%d redo steps; %d kills at redo steps and 8 at random moments over %v: %v", len(kinds), len(points), full, seen)
}

// partOf converts edit.qcow2 to raw and cuts out the partition at off.
func partOf(t *testing.T, dir string, off int64) string {
	raw := filepath.Join(dir, "edit.check.raw")
	if r := qemuIn(t, dir, "qemu-img", "convert", "-O", "raw", "edit.qcow2", raw); r.code != 0 {
		t.Fatalf("convert: %+v", r)
	}
	b, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	part := raw + ".part"
	end := int64(len(b))
	if off == 1<<20 {
		end = 9 << 20
	}
	if err := os.WriteFile(part, b[off:end], 0o644); err != nil {
		t.Fatal(err)
	}
	return part
}
