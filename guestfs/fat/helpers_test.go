package fat

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/qimg/qimg/internal/qemutest"
)

// The judges are dosfstools (mkfs.vfat, fsck.fat) and mtools (mcopy,
// mmd, mdir, mtype). A missing tool skips the test on a developer's
// machine and fails it in CI (CI=true), where scripts/setup.sh installs
// them.
func need(t testing.TB, tools ...string) { t.Helper(); qemutest.Need(t, tools...) }

func toolPath(name string) string { return qemutest.ToolPath(name) }

// toolEnv runs mtools without its geometry checks and in a UTF-8
// locale, so long names keep their accents.
func toolEnv() []string {
	return append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "LC_ALL=C.UTF-8")
}

// run runs a tool and returns its standard output, failing the test on
// error.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, errOut, err := runRC(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func runRC(name string, args ...string) (string, string, error) {
	cmd := exec.Command(toolPath(name), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = toolEnv()
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// mkfs makes an image of size bytes with mkfs.vfat and args.
func mkfs(t testing.TB, size int64, args ...string) string {
	t.Helper()
	need(t, "mkfs.vfat")
	img := filepath.Join(t.TempDir(), "fat.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	run(t, "mkfs.vfat", append(append([]string{"-i", "12345678"}, args...), img)...)
	return img
}

// fsckClean fails unless fsck.fat -n finds nothing to say.
func fsckClean(t testing.TB, img string) {
	t.Helper()
	need(t, "fsck.fat")
	out, errOut, err := runRC("fsck.fat", "-n", img)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || len(lines) != 2 || errOut != "" {
		t.Fatalf("fsck.fat -n %s: %v\n%s%s", img, err, out, errOut)
	}
}

// mtree lists an image's tree with mdir: every path, directories with
// a trailing slash, in sorted order.
func mtree(t testing.TB, img string) []string {
	t.Helper()
	need(t, "mdir")
	out, errOut, err := runRC("mdir", "-i", img, "-/", "-b", "::/")
	if err != nil && strings.TrimSpace(out) != "" {
		t.Fatalf("mdir: %v\n%s%s", err, out, errOut)
	}
	var paths []string
	for _, l := range strings.Split(out, "\n") {
		if p, ok := strings.CutPrefix(l, "::/"); ok && p != "" {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	return paths
}

// tree is a model of a filesystem's content: path to content, nil for
// a directory.
type tree map[string][]byte

// ours lists fsys the same way as mtree, with contents.
func ours(t testing.TB, fsys fs.FS) tree {
	t.Helper()
	out := tree{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if d.IsDir() {
			out[p] = nil
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		out[p] = b
		if b == nil {
			out[p] = []byte{}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// theirs reads the tree with mtools: mdir's listing, and the content
// of one recursive mcopy, which must agree.
func theirs(t testing.TB, img string) tree {
	t.Helper()
	listed := mtree(t, img)
	if len(listed) == 0 {
		return tree{}
	}
	dst := t.TempDir()
	run(t, "mcopy", "-s", "-n", "-i", img, "::/*", dst)
	out := hostTree(t, dst)
	for _, p := range listed {
		if _, ok := out[strings.TrimSuffix(p, "/")]; !ok {
			t.Fatalf("mdir lists %s, mcopy did not copy it", p)
		}
	}
	if len(listed) != len(out) {
		t.Fatalf("mdir lists %d names, mcopy copied %d", len(listed), len(out))
	}
	return out
}

// diff describes how two trees differ, "" if they do not.
func diff(a, b tree) string {
	var out []string
	for p, x := range a {
		y, ok := b[p]
		switch {
		case !ok:
			out = append(out, "only in first: "+p)
		case (x == nil) != (y == nil):
			out = append(out, "type differs: "+p)
		case !bytes.Equal(x, y):
			out = append(out, "content differs: "+p)
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			out = append(out, "only in second: "+p)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// hostTree reads a host directory as a tree.
func hostTree(t testing.TB, root string) tree {
	t.Helper()
	return ours(t, os.DirFS(root))
}

// pattern is deterministic file content.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

// writeHost makes a host tree from a model.
func writeHost(t testing.TB, root string, m tree) {
	t.Helper()
	for p, b := range m {
		full := filepath.Join(root, filepath.FromSlash(p))
		if b == nil {
			os.MkdirAll(full, 0o755)
			continue
		}
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// withParents adds the directories implied by a model's paths.
func withParents(m tree) tree {
	out := tree{}
	for p, b := range m {
		out[p] = b
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			out[d] = nil
		}
	}
	return out
}
