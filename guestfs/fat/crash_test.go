package fat

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The crash test runs a Commit in a child process (this test binary,
// re-executed) whose device SIGKILLs the process at its Nth write, for
// every N, optionally after writing only the first half of that write
// (a torn multi-sector write). The volume left behind must be one that
// fsck.fat finds only the benign leftovers doc.go lists in, that reads
// as the old or the new tree, and that fsck.fat -a repairs to a clean
// volume with the same tree.

const (
	crashEnvImage    = "QIMG_FAT_CRASH_IMAGE"
	crashEnvAt       = "QIMG_FAT_CRASH_AT"
	crashEnvTorn     = "QIMG_FAT_CRASH_TORN"
	crashEnvScenario = "QIMG_FAT_CRASH_SCENARIO"
)

// crashScenarios are the transactions the crash test interrupts.
var crashScenarios = map[string]func(f *FS) error{
	// Everything in one directory sector: the switch is one write, so
	// the tree is always the old or the new one.
	"one-sector": func(f *FS) error {
		big := pattern(20_000, 8)
		return firstErr(
			f.WriteFile("EFI/BOOT/grub.cfg", bytes.NewReader(big), int64(len(big)), 0o644),
			f.WriteFile("EFI/BOOT/a new long name.cfg", strings.NewReader("new\n"), 4, 0o644),
			f.Remove("EFI/BOOT/BOOTX64.EFI"),
			f.Rename("EFI/BOOT/Old Name.txt", "EFI/BOOT/New Name.txt"),
		)
	},
	// Changes in several directories, a directory moved, a tree removed
	// and a directory grown: crashes leave mixtures, never damage.
	"many-dirs": func(f *FS) error {
		errs := []error{
			f.WriteFile("root file.txt", strings.NewReader("root\n"), 5, 0o644),
			f.Rename("docs/a", "EFI/moved"),
			f.RemoveAll("EFI/debian"),
			f.Mkdir("EFI/new", 0o755),
		}
		for i := range 20 {
			errs = append(errs, f.WriteFile(fmt.Sprintf("EFI/BOOT/grown entry %02d.txt", i), strings.NewReader("x"), 1, 0o644))
		}
		return firstErr(errs...)
	},
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// killingDevice writes to a file and kills the process at write number
// at (0-based).
type killingDevice struct {
	*os.File
	at, n  int
	torn   bool
	sector int64
}

func (d *killingDevice) WriteAt(p []byte, off int64) (int, error) {
	if d.n == d.at {
		if half := int64(len(p)) / 2 / d.sector * d.sector; d.torn && half > 0 {
			d.File.WriteAt(p[:half], off)
		}
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	d.n++
	return d.File.WriteAt(p, off)
}

// countingDevice records the size of each write.
type countingDevice struct {
	*os.File
	sizes []int
}

func (d *countingDevice) WriteAt(p []byte, off int64) (int, error) {
	d.sizes = append(d.sizes, len(p))
	return d.File.WriteAt(p, off)
}

// TestCrashChild is the child's side; it does nothing unless the crash
// test started it.
func TestCrashChild(t *testing.T) {
	img := os.Getenv(crashEnvImage)
	if img == "" {
		return
	}
	at, _ := strconv.Atoi(os.Getenv(crashEnvAt))
	file, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := file.Stat()
	dev := &killingDevice{File: file, at: at, torn: os.Getenv(crashEnvTorn) == "1", sector: 512}
	f, err := OpenWritable(dev, st.Size(), img)
	if err != nil {
		t.Fatal(err)
	}
	dev.sector = f.g.sectorSize
	if err := crashScenarios[os.Getenv(crashEnvScenario)](f); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// benign are the fsck.fat -n lines a crash may leave: leaked clusters,
// FAT copies that differ (fsck.fat and Linux use the first), and an
// FSInfo free count marked unknown.
var benign = regexp.MustCompile(`^(fsck\.fat .*|.*: \d+ files, \d+/\d+ clusters|FATs differ but appear to be intact\.|  Using first FAT\.|Reclaimed \d+ unused clusters? \(\d+ bytes\)( in \d+ chains?)?\.|Free cluster summary uninitialized \(should be \d+\)|Leaving filesystem unchanged\.|)$`)

// recovered names the files fsck.fat -a makes of leaked chains.
var recovered = regexp.MustCompile(`^FSCK\d{4}\.REC$`)

func TestCrash(t *testing.T) {
	need(t, "mkfs.vfat", "mcopy", "mdir", "fsck.fat")
	t.Parallel()
	for _, v := range []struct {
		name string
		size int64
		args []string
	}{
		{"fat16", 20 << 20, []string{"-F", "16", "-s", "1"}},
		{"fat32", 64 << 20, []string{"-F", "32"}},
	} {
		for name, ops := range crashScenarios {
			t.Run(v.name+"/"+name, func(t *testing.T) {
				t.Parallel()
				base := mkfs(t, v.size, v.args...)
				m := baseTree()
				m["EFI/BOOT/Old Name.txt"] = []byte("renamed\n")
				src := t.TempDir()
				writeHost(t, src, m)
				mcopyTree(t, base, src)
				oldTree := readTree(t, base)
				newImg, sizes, sector := commitCopy(t, base, ops)
				newTree := readTree(t, newImg)
				if diff(oldTree, newTree) == "" {
					t.Fatal("the scenario changes nothing")
				}
				t.Logf("%d writes", len(sizes))
				for at, size := range sizes {
					crashAt(t, base, name, at, false, oldTree, newTree, name == "one-sector")
					if int64(size) > sector { // a write of several sectors lands in part
						crashAt(t, base, name, at, true, oldTree, newTree, name == "one-sector")
					}
				}
			})
		}
	}
}

// commitCopy runs ops on a copy of base and commits, recording the
// writes' sizes.
func commitCopy(t *testing.T, base string, ops func(*FS) error) (string, []int, int64) {
	img := copyFile(t, base)
	file, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	st, _ := file.Stat()
	dev := &countingDevice{File: file}
	f, err := OpenWritable(dev, st.Size(), img)
	if err != nil {
		t.Fatal(err)
	}
	if err := ops(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	fsckClean(t, img)
	return img, dev.sizes, f.g.sectorSize
}

func copyFile(t *testing.T, src string) string {
	dst := filepath.Join(t.TempDir(), "copy.img")
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	out.Close()
	return dst
}

// readTree reads an image with this package and checks mtools agrees.
func readTree(t *testing.T, img string) tree {
	t.Helper()
	got := readOurs(t, img)
	if d := diff(got, theirs(t, img)); d != "" {
		t.Fatalf("mtools and this package disagree on %s:\n%s", img, d)
	}
	return got
}

// readOurs reads an image with this package.
func readOurs(t *testing.T, img string) tree {
	t.Helper()
	file, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	st, _ := file.Stat()
	f, err := Open(file, st.Size(), img)
	if err != nil {
		t.Fatal(err)
	}
	return ours(t, f)
}

// crashAt kills a commit at write at and judges what is left.
func crashAt(t *testing.T, base, scenario string, at int, torn bool, oldTree, newTree tree, exact bool) {
	t.Helper()
	img := copyFile(t, base)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnvImage+"="+img, crashEnvAt+"="+strconv.Itoa(at),
		crashEnvScenario+"="+scenario, crashEnvTorn+"="+map[bool]string{true: "1"}[torn])
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("write %d: the child was not killed: %v\n%s", at, err, out)
	}
	what := fmt.Sprintf("killed at write %d (torn %v)", at, torn)
	fout, _, _ := runRC("fsck.fat", "-n", img)
	for _, l := range strings.Split(strings.TrimSpace(fout), "\n") {
		if !benign.MatchString(l) {
			t.Fatalf("%s: fsck.fat -n reports damage:\n%s", what, fout)
		}
	}
	got := readTree(t, img)
	if exact && diff(got, oldTree) != "" && diff(got, newTree) != "" {
		t.Fatalf("%s: the tree is neither the old nor the new one:\nvs old:\n%s\nvs new:\n%s", what, diff(got, oldTree), diff(got, newTree))
	}
	for p, b := range got {
		if o, n := oldTree[p], newTree[p]; !bytes.Equal(b, o) && !bytes.Equal(b, n) {
			t.Fatalf("%s: %s holds neither its old nor its new content", what, p)
		}
	}
	if out, _, err := runRC("fsck.fat", "-a", img); err != nil && err.(*exec.ExitError).ExitCode() > 1 {
		t.Fatalf("%s: fsck.fat -a: %v\n%s", what, err, out)
	}
	fsckClean(t, img)
	repaired := readOurs(t, img)
	for p := range repaired {
		if recovered.MatchString(p) {
			delete(repaired, p) // leaked chains fsck.fat saved as files
		}
	}
	if d := diff(repaired, got); d != "" {
		t.Fatalf("%s: fsck.fat -a changed the tree:\n%s", what, d)
	}
}
