package iso9660_test

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/qimg/qimg/internal/qemutest"

	"github.com/qimg/qimg/guestfs/iso9660"
)

// The real tools judge the writer: isoinfo (genisoimage), xorriso's
// osirrox and blkid. A missing tool fails the test in CI and skips it
// elsewhere.

func need(t *testing.T, tools ...string) { t.Helper(); qemutest.Need(t, tools...) }

func output(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return string(out)
}

// allPaths lists items with their implied parent directories, sorted.
func allPaths(items []item, links bool) []string {
	set := map[string]bool{}
	for _, it := range items {
		if it.target != "" && !links {
			continue
		}
		for p := it.path; p != "."; p = path.Dir(p) {
			set[p] = true
		}
	}
	var out []string
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// isoinfoList parses `isoinfo -l`: every name under every directory, and
// the mode string of each.
func isoinfoList(out string) (paths []string, modes map[string]string) {
	modes = map[string]string{}
	dir := ""
	for _, line := range strings.Split(out, "\n") {
		if d, ok := strings.CutPrefix(line, "Directory listing of /"); ok {
			dir = strings.TrimSuffix(d, "/")
			continue
		}
		i := strings.Index(line, "]  ")
		if i < 0 || len(line) < 10 {
			continue
		}
		name := strings.TrimSuffix(line[i+3:], " ")
		name, _, _ = strings.Cut(name, " -> ")
		if name == "." || name == ".." {
			continue
		}
		p := path.Join(dir, name)
		paths = append(paths, p)
		modes[p] = line[:10]
	}
	sort.Strings(paths)
	return paths, modes
}

func TestIsoinfo(t *testing.T) {
	need(t, "isoinfo")
	items := sampleTree()
	p := writeISO(t, items, iso9660.Options{VolumeID: "cidata", Joliet: true, RockRidge: true, Time: fixed})

	d := output(t, "isoinfo", "-d", "-i", p)
	for _, want := range []string{"Volume id: cidata\n", "Joliet with UCS level 3 found", "Rock Ridge signatures version 1 found"} {
		if !strings.Contains(d, want) {
			t.Errorf("isoinfo -d lacks %q:\n%s", want, d)
		}
	}

	got, modes := isoinfoList(output(t, "isoinfo", "-R", "-l", "-i", p))
	if want := allPaths(items, true); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("isoinfo -R -l:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, it := range items {
		mode := it.mode
		if it.dir {
			mode |= os.ModeDir
		}
		want := strings.Replace(mode.String(), "L", "l", 1)
		if modes[it.path] != want {
			t.Errorf("isoinfo -R: %s mode %s, want %s", it.path, modes[it.path], want)
		}
	}
	got, _ = isoinfoList(output(t, "isoinfo", "-J", "-l", "-i", p))
	if want := allPaths(jolietItems(items), false); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("isoinfo -J -l:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	for _, it := range items {
		if it.dir || it.target != "" {
			continue
		}
		if out := output(t, "isoinfo", "-R", "-x", "/"+it.path, "-i", p); out != string(it.data) {
			t.Errorf("isoinfo -R -x %s: %d bytes differ", it.path, len(out))
		}
		if out := output(t, "isoinfo", "-J", "-x", "/"+jolietPath(it.path), "-i", p); out != string(it.data) {
			t.Errorf("isoinfo -J -x %s: %d bytes differ", it.path, len(out))
		}
	}
}

// osirrox extracts the whole tree: names, content, modes and link
// targets must be those written.
func TestOsirrox(t *testing.T) {
	need(t, "osirrox")
	items := sampleTree()
	p := writeISO(t, items, iso9660.Options{VolumeID: "config-2", Joliet: true, RockRidge: true, Time: fixed})
	dir := filepath.Join(t.TempDir(), "x")
	if out, err := exec.Command("osirrox", "-indev", p, "-extract", "/", dir).CombinedOutput(); err != nil {
		t.Fatalf("osirrox: %v\n%s", err, out)
	}
	compareFS(t, os.DirFS(dir), items, true)
}

func TestBlkid(t *testing.T) {
	need(t, "blkid")
	p := writeISO(t, sampleTree()[:3], iso9660.Options{VolumeID: "cidata", Joliet: true, RockRidge: true})
	out := output(t, "blkid", "-p", "-o", "export", p)
	for _, want := range []string{"TYPE=iso9660\n", "LABEL=cidata\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("blkid lacks %q:\n%s", want, out)
		}
	}
}

// writeDir puts items in a host directory, for the other mastering tools.
func writeDir(t *testing.T, items []item) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	for _, it := range items {
		p := filepath.Join(dir, it.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case it.dir:
			err = os.MkdirAll(p, 0o755)
		case it.target != "":
			err = os.Symlink(it.target, p)
		default:
			err = os.WriteFile(p, it.data, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, it := range items { // after the content, and deepest last
		if it.target == "" {
			if err := os.Chmod(filepath.Join(dir, it.path), it.mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// The reader reads what xorriso and genisoimage write: Rock Ridge (with
// genisoimage's relocated deep directories), and Joliet alone.
func TestReadOtherWriters(t *testing.T) {
	items := sampleTree()
	cases := []struct {
		tool string
		args []string
		rr   bool
	}{
		{"xorriso", []string{"-as", "mkisofs", "-J", "-R", "-V", "cidata"}, true},
		{"xorriso", []string{"-as", "mkisofs", "-J", "-joliet-long", "-V", "cidata"}, false},
		{"genisoimage", []string{"-quiet", "-J", "-R", "-V", "cidata"}, true},
	}
	for _, c := range cases {
		t.Run(c.tool+strings.Join(c.args, ""), func(t *testing.T) {
			need(t, c.tool)
			want := items
			if !c.rr { // without Rock Ridge a link would be a file
				want = nil
				for _, it := range items {
					if it.target == "" {
						want = append(want, it)
					}
				}
			}
			src := writeDir(t, want)
			p := filepath.Join(t.TempDir(), "out.iso")
			args := append(append(c.args, "-o", p), src)
			if out, err := exec.Command(c.tool, args...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", c.tool, err, out)
			}
			fsys := openISO(t, p)
			if fsys.VolumeID() != "cidata" {
				t.Errorf("volume id %q", fsys.VolumeID())
			}
			compareFS(t, fsys, want, c.rr)
		})
	}
}

func TestOsirroxStress(t *testing.T) {
	need(t, "osirrox")
	items := stressTree()
	items = slices.DeleteFunc(items, func(it item) bool { return it.path == "longlink" })
	p := writeISO(t, items, iso9660.Options{VolumeID: "x", Joliet: true, RockRidge: true, Time: fixed})
	dir := filepath.Join(t.TempDir(), "x")
	if out, err := exec.Command("osirrox", "-indev", p, "-extract", "/", dir).CombinedOutput(); err != nil {
		t.Fatalf("osirrox: %v\n%s", err, out)
	}
	compareFS(t, os.DirFS(dir), items, true)
	got, _ := isoinfoList(output(t, "isoinfo", "-R", "-l", "-i", p))
	if want := allPaths(items, true); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("isoinfo -R -l:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The primary tree's own names, as a reader without extensions sees
// them: 8.3 d-characters, ";1" on files, one entry per item, and the
// reader falls back to them (without ";1") when there is no extension.
func TestPlainNames(t *testing.T) {
	need(t, "isoinfo")
	items := sampleTree()
	p := writeISO(t, items, iso9660.Options{VolumeID: "cidata", Time: fixed})
	got, modes := isoinfoList(output(t, "isoinfo", "-l", "-i", p))
	if want := allPaths(items, true); len(got) != len(want) {
		t.Errorf("isoinfo -l lists %d names, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	valid := regexp.MustCompile(`^[A-Z0-9_]{1,8}(\.[A-Z0-9_]{0,3};1)?$`)
	for _, p := range got {
		name := path.Base(p)
		if !valid.MatchString(name) || (modes[p][0] == 'd') == strings.Contains(name, ";") {
			t.Errorf("bad ISO 9660 name %q (%s)", p, modes[p])
		}
	}
	fsys := openISO(t, p)
	if _, err := fsys.Stat("USER_DAT"); err != nil {
		t.Error(err)
	}
}
