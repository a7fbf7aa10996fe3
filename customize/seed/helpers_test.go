package seed

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/internal/qemutest"
)

// The judges are isoinfo (genisoimage), blkid, fsck.fat and mtools,
// xorriso, and cloud-init's own datasource code. A missing tool skips
// the test on a developer's machine and fails it in CI, where
// scripts/setup.sh installs them.
func need(t testing.TB, tools ...string) { t.Helper(); qemutest.Need(t, tools...) }

func toolPath(name string) string { return qemutest.ToolPath(name) }

// run runs a tool and returns its standard output, failing the test on
// error.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(toolPath(name), args...)
	// BLKID_FILE=/dev/null: blkid (run by cloud-init to find a seed by
	// label) must probe the loop device, not trust a cache entry from an
	// earlier image attached to the same device number.
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "LC_ALL=C.UTF-8", "BLKID_FILE=/dev/null")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// build writes a seed to a new file and returns its path.
func build(t testing.TB, c Config, o Options) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "seed.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Build(context.Background(), f, c, o); err != nil {
		t.Fatal(err)
	}
	return p
}

// fsckClean fails unless fsck.fat -n finds nothing to say.
func fsckClean(t testing.TB, img string) {
	t.Helper()
	need(t, "fsck.fat")
	out := run(t, "fsck.fat", "-n", img)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 {
		t.Fatalf("fsck.fat -n %s:\n%s", img, out)
	}
}
