package guestfs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/guestfs"
	"github.com/qimg/qimg/guestfs/redo"
)

// The redo crash test runs an edit of an ext2 or FAT filesystem through
// MountWritable with a redo log, in a child process (this test binary)
// that SIGKILLs itself before its Nth redo step: a write or sync of the
// log, a write or flush of the device, the log's removal. Then a second
// child recovers the image and is killed in the middle of that too, and
// the test recovers it whole. The tree must be exactly the old or the
// new one, and e2fsck -fn or fsck.fat -n find nothing at all.
const (
	redoEnvImage = "QIMG_REDO_CRASH_IMAGE"
	redoEnvDev   = "QIMG_REDO_CRASH_DEV"
	redoEnvAt    = "QIMG_REDO_CRASH_AT"
	redoEnvMode  = "QIMG_REDO_CRASH_MODE" // edit or recover
	redoEnvSteps = "QIMG_REDO_CRASH_STEPS"
)

// redoEdit is the transaction the child makes: directories, a file
// large enough for several extents, an overwrite, a move across
// directories, a tree removed, a truncation, a removal.
func redoEdit(f guestfs.WritableFileSystem) error {
	big := bytes.Repeat([]byte("new data "), 40_000)
	for _, op := range []func() error{
		func() error { return f.Mkdir("newdir", 0o755) },
		func() error { return f.WriteFile("newdir/file", bytes.NewReader(big), int64(len(big)), 0o644) },
		func() error { return f.WriteFile("small", strings.NewReader("overwritten\n"), 12, 0o644) },
		func() error { return f.Rename("nested/a", "newdir/a") },
		func() error { return f.RemoveAll("dir100") },
		func() error { return f.Truncate("big", 5000) },
		func() error { return f.Remove("sixty") },
	} {
		if err := op(); err != nil {
			return err
		}
	}
	return f.Commit(context.Background())
}

// TestRedoCrashChild is the child's side: nothing unless the crash test
// started it.
func TestRedoCrashChild(t *testing.T) {
	path := os.Getenv(redoEnvImage)
	if path == "" {
		return
	}
	at, _ := strconv.Atoi(os.Getenv(redoEnvAt))
	var steps []byte // the kind of each step, as a digit
	trace := func(s redo.Step) {
		steps = append(steps, '0'+byte(s))
		if len(steps) == at {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
	img, _, err := format.Open(path, format.OpenOptions{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	d, err := guestfs.Open(img, path)
	if err != nil {
		t.Fatal(err)
	}
	log := guestfs.RedoLogPath(path)
	if os.Getenv(redoEnvMode) == "recover" {
		_, err = d.Recover(t.Context(), log, guestfs.WithRedoTrace(trace))
	} else {
		var f guestfs.WritableFileSystem
		f, err = d.MountWritable(os.Getenv(redoEnvDev), guestfs.WithRedoLog(log), guestfs.WithRedoTrace(trace))
		if err == nil {
			err = redoEdit(f)
		}
	}
	if err == nil {
		err = img.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(os.Getenv(redoEnvSteps), steps, 0o644); err != nil {
		t.Fatal(err)
	}
}

// redoChild runs the child; it returns the steps made if it lived.
func redoChild(t *testing.T, img, dev, mode string, at int) ([]redo.Step, bool) {
	t.Helper()
	stepsFile := filepath.Join(t.TempDir(), "steps")
	cmd := exec.Command(os.Args[0], "-test.run=^TestRedoCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), redoEnvImage+"="+img, redoEnvDev+"="+dev, redoEnvMode+"="+mode,
		redoEnvAt+"="+strconv.Itoa(at), redoEnvSteps+"="+stepsFile)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL {
		return nil, false
	}
	if err != nil {
		t.Fatalf("%s child (kill at %d): %v\n%s", mode, at, err, out)
	}
	b, err := os.ReadFile(stepsFile)
	if err != nil {
		t.Fatal(err)
	}
	steps := make([]redo.Step, len(b))
	for i, c := range b {
		steps[i] = redo.Step(c - '0')
	}
	return steps, true
}

// redoTree describes every file of the device dev of img as our reader
// sees it (through a pending redo log, if any): type, size, content
// hash, link target.
func redoTree(t *testing.T, img, dev string) map[string]string {
	t.Helper()
	im, _, err := format.Open(img, format.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	d, err := guestfs.Open(im, img)
	if err != nil {
		t.Fatal(err)
	}
	_, closeLog, err := d.ViewRedoLog(guestfs.RedoLogPath(img))
	if err != nil {
		t.Fatal(err)
	}
	defer closeLog()
	f, err := d.Mount(dev)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	err = fs.WalkDir(f, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := f.Lstat(p)
		if err != nil {
			return err
		}
		desc := fmt.Sprintf("%v %d", fi.Mode().Type(), fi.Size())
		if fi.Mode().IsRegular() {
			b, err := fs.ReadFile(f, p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		out[p] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s %s: %v", img, dev, err)
	}
	return out
}

// redoVariant is a filesystem the crash test edits.
type redoVariant struct {
	name string
	dev  string
	fsck func(t *testing.T, part string) // fails on any finding
}

// redoDisk makes an MBR disk: ext2 (1 KiB blocks) on sda1, FAT16 on
// sda2, ext4 without a journal on sda3, each holding the same tree.
func redoDisk(t *testing.T, dir string) (string, map[string][2]int64) {
	src := t.TempDir()
	files := map[string][]byte{"one": []byte("1"), "sixty": bytes.Repeat([]byte("6"), 60),
		"small": bytes.Repeat([]byte("s"), 1000), "big": bytes.Repeat([]byte("big "), 50_000),
		"nested/a/b/file": []byte("deep\n")}
	for i := range 100 {
		files[fmt.Sprintf("dir100/f%03d", i)] = []byte(fmt.Sprint(i))
	}
	for name, data := range files {
		p := filepath.Join(src, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	disk := filepath.Join(dir, "disk.raw")
	run(t, "truncate", "-s", "34M", disk)
	cmd := exec.Command("sfdisk", "-q", disk)
	cmd.Stdin = strings.NewReader("label: dos\n,8M,83\n,16M,e\n,+,83\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	parts := map[string][2]int64{"/dev/sda1": {1 << 20, 8 << 20}, "/dev/sda2": {9 << 20, 16 << 20}, "/dev/sda3": {25 << 20, 9 << 20}}
	ext2 := filepath.Join(dir, "ext2")
	run(t, "mkfs.ext2", "-q", "-F", "-b", "1024", "-d", src, ext2, "8M")
	placeAt(t, disk, ext2, parts["/dev/sda1"][0])
	vfat := filepath.Join(dir, "vfat")
	run(t, "mkfs.vfat", "-F", "16", "-C", vfat, strconv.Itoa(16<<10))
	args := []string{"-i", vfat, "-s", "-Q"}
	entries, _ := os.ReadDir(src)
	for _, e := range entries {
		args = append(args, filepath.Join(src, e.Name()))
	}
	run(t, "mcopy", append(args, "::/")...)
	placeAt(t, disk, vfat, parts["/dev/sda2"][0])
	ext4 := filepath.Join(dir, "ext4")
	run(t, "mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-d", src, ext4, "9M")
	placeAt(t, disk, ext4, parts["/dev/sda3"][0])
	return disk, parts
}

// extract copies a partition out of the disk, for the fsck tools.
func extract(t *testing.T, disk string, part [2]int64) string {
	b, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "part")
	if err := os.WriteFile(p, b[part[0]:part[0]+part[1]], 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func e2fsckClean(t *testing.T, part string) {
	if out, err := exec.Command("e2fsck", "-fn", part).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn: %v\n%s", err, out)
	}
}

// fatClean lines: the banner and the summary, nothing else.
var fatClean = regexp.MustCompile(`^(fsck\.fat .*|.*: \d+ files, \d+/\d+ clusters)$`)

func fsckFATClean(t *testing.T, part string) {
	out, err := exec.Command("fsck.fat", "-n", part).CombinedOutput()
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if err != nil || !fatClean.MatchString(l) {
			t.Fatalf("fsck.fat -n: %v\n%s", err, out)
		}
	}
}

func TestRedoCrash(t *testing.T) {
	for _, tool := range []string{"mkfs.ext2", "mkfs.vfat", "mcopy", "e2fsck", "fsck.fat", "sfdisk"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
	}
	dir := t.TempDir()
	pristine, parts := redoDisk(t, dir)
	for _, v := range []redoVariant{
		{"ext2", "/dev/sda1", e2fsckClean},
		{"fat16", "/dev/sda2", fsckFATClean},
		{"ext4-nojournal", "/dev/sda3", e2fsckClean},
	} {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			redoCrashVariant(t, pristine, parts[v.dev], v)
		})
	}
}

func redoCrashVariant(t *testing.T, pristine string, part [2]int64, v redoVariant) {
	img := filepath.Join(t.TempDir(), "disk.raw")
	log := guestfs.RedoLogPath(img)
	fresh := func() {
		copyImage(t, pristine, img)
		os.Remove(log)
	}
	fresh()
	oldTree := redoTree(t, img, v.dev)
	kinds, lived := redoChild(t, img, v.dev, "edit", 0)
	steps := len(kinds)
	if !lived || steps < 10 {
		t.Fatalf("the edit made %d redo steps", steps)
	}
	if _, err := os.Stat(log); err == nil {
		t.Fatal("the log is still there after the edit")
	}
	v.fsck(t, extract(t, img, part))
	newTree := redoTree(t, img, v.dev)
	if fmt.Sprint(oldTree) == fmt.Sprint(newTree) {
		t.Fatal("the edit changed nothing")
	}
	sawOld, sawNew, sawLog, recoveryKills := 0, 0, 0, 0
	points := redoPoints(kinds)
	for _, at := range points {
		fresh()
		if _, lived := redoChild(t, img, v.dev, "edit", at); lived {
			t.Fatalf("the child lived past step %d of %d", at, steps)
		}
		what := fmt.Sprintf("killed before step %d of %d", at, steps)
		// Read-only, a committed log is shown as finished.
		seen := redoTree(t, img, v.dev)
		if !sameTree(seen, oldTree) && !sameTree(seen, newTree) {
			t.Fatalf("%s: the read-only view is neither old nor new", what)
		}
		// Recovery killed at its first, middle and last steps, for
		// the first committed logs.
		if _, err := os.Stat(log); err == nil && sawLog < 3 {
			backup := img + ".bak"
			copyImage(t, img, backup)
			copyImage(t, log, backup+".log")
			rkinds, _ := redoChild(t, img, v.dev, "recover", 0)
			rsteps := len(rkinds)
			copyImage(t, backup, img)
			copyImage(t, backup+".log", log)
			for _, rat := range []int{1, (rsteps + 1) / 2, rsteps} {
				if rsteps == 0 {
					break // a log that never committed: removed, no step
				}
				copyImage(t, backup, img)
				copyImage(t, backup+".log", log)
				if _, lived := redoChild(t, img, v.dev, "recover", rat); lived {
					t.Fatalf("%s: the recovery lived past step %d of %d", what, rat, rsteps)
				}
				recoveryKills++
				judgeRedo(t, img, part, v, oldTree, newTree, fmt.Sprintf("%s, recovery killed before step %d of %d", what, rat, rsteps), seen)
			}
			if rsteps > 0 {
				sawLog++
				continue
			}
		}
		switch p, err := redo.Read(log); {
		case err == nil:
			p.Close()
			sawLog++
		case sameTree(seen, newTree):
			sawNew++
		default:
			sawOld++
		}
		judgeRedo(t, img, part, v, oldTree, newTree, what, seen)
	}
	if sawOld == 0 {
		t.Fatal("no kill left the old tree")
	}
	if sawLog == 0 {
		t.Fatal("no kill left a committed log")
	}
	t.Logf("%d redo steps, %d kills of the edit (%d left the old tree, %d the new, %d a committed log), %d kills of a recovery",
		steps, len(points), sawOld, sawNew, sawLog, recoveryKills)
}

// judgeRedo recovers img as an edit would and checks the result: the
// tree seen before recovery, fsck clean, no log left.
func judgeRedo(t *testing.T, img string, part [2]int64, v redoVariant, oldTree, newTree map[string]string, what string, want map[string]string) {
	t.Helper()
	if _, lived := redoChild(t, img, v.dev, "recover", 0); !lived {
		t.Fatalf("%s: recovery failed", what)
	}
	if _, err := os.Stat(guestfs.RedoLogPath(img)); err == nil {
		t.Fatalf("%s: the log is still there after recovery", what)
	}
	v.fsck(t, extract(t, img, part))
	got := redoTree(t, img, v.dev)
	if !sameTree(got, want) {
		t.Fatalf("%s: after recovery the tree is not the one the read-only view showed (old %v, new %v)", what, sameTree(got, oldTree), sameTree(got, newTree))
	}
}

func sameTree(a, b map[string]string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// redoPoints picks the steps to die before: every sync, flush and
// removal, the last log writes (table and footer), the first, middle
// and last few device writes, and a dozen log writes spread over the
// edit.
func redoPoints(kinds []redo.Step) []int {
	var logWrites, devWrites, at []int
	for i, k := range kinds {
		switch k {
		case redo.LogWrite:
			logWrites = append(logWrites, i+1)
		case redo.DeviceWrite:
			devWrites = append(devWrites, i+1)
		default:
			at = append(at, i+1)
		}
	}
	at = append(at, spread(logWrites, 12, 3)...)
	at = append(at, spread(devWrites, 3, 3)...)
	slices.Sort(at)
	return slices.Compact(at)
}

// spread picks n of xs evenly, and the last tail.
func spread(xs []int, n, tail int) []int {
	var out []int
	for i := 0; i < len(xs); i += max(1, len(xs)/n) {
		out = append(out, xs[i])
	}
	return append(out, xs[max(0, len(xs)-tail):]...)
}

func copyImage(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRedoLogMismatch: a committed log beside an image it was not made
// for (here: the image grew since) is an error naming both files, and
// is left alone; read-only, the same.
func TestRedoLogMismatch(t *testing.T) {
	dir := t.TempDir()
	pristine, _ := redoDisk(t, dir)
	img := filepath.Join(dir, "img.raw")
	copyImage(t, pristine, img)
	kinds, _ := redoChild(t, img, "/dev/sda1", "edit", 0)
	commit := slices.Index(kinds, redo.DirSync) // the commit moment
	at := commit + 1 + slices.Index(kinds[commit:], redo.DeviceWrite)
	copyImage(t, pristine, img)
	if _, lived := redoChild(t, img, "/dev/sda1", "edit", at); lived {
		t.Fatal("the child lived")
	}
	other := filepath.Join(dir, "other.raw")
	copyImage(t, img, other)
	if err := os.Truncate(other, 35<<20); err != nil {
		t.Fatal(err)
	}
	log := guestfs.RedoLogPath(other)
	copyImage(t, guestfs.RedoLogPath(img), log)
	im, _, err := format.Open(other, format.OpenOptions{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	d, err := guestfs.Open(im, other)
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.MountWritable("/dev/sda1", guestfs.WithRedoLog(log))
	if err == nil || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), log) {
		t.Fatalf("mount with a log of another image: %v", err)
	}
	if _, _, err := d.ViewRedoLog(log); err == nil {
		t.Fatal("read-only view of a log of another image: no error")
	}
	if _, err := os.Stat(log); err != nil {
		t.Fatalf("the log was not left alone: %v", err)
	}
	// On the image it was made for, it is replayed.
	if _, lived := redoChild(t, img, "/dev/sda1", "recover", 0); !lived {
		t.Fatal("recovery failed")
	}
}
