package layering

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/qimg/qimg"

// layers ranks packages by path prefix (relative to the module); the
// longest matching prefix wins. A package may import only packages of a
// rank no higher than its own.
var layers = []struct {
	prefix string
	rank   int
}{
	{"image", 0},
	{"internal/", 0},
	{"format/", 1}, // one package per format
	{"format", 2},  // opens any format, walks chains
	{"convert", 3},
	{"guestfs", 3},
	{"customize", 4},
	{"boot", 4}, // boot tests: QEMU on a throwaway overlay
	{"openstack", 5},
	{"build", 5},
	{"cmd/", 6},
}

// rank returns the layer of a package path relative to the module.
func rank(rel string) (int, bool) {
	best, bestLen := 0, -1
	for _, l := range layers {
		p := strings.TrimSuffix(l.prefix, "/")
		match := rel == p || strings.HasPrefix(rel, p+"/")
		if strings.HasSuffix(l.prefix, "/") {
			match = strings.HasPrefix(rel, l.prefix)
		}
		if match && len(l.prefix) > bestLen {
			best, bestLen = l.rank, len(l.prefix)
		}
	}
	return best, bestLen >= 0
}

type listed struct {
	ImportPath string
	Imports    []string
}

// packages lists the module's packages and their (non-test) imports.
func packages(t *testing.T) []listed {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listed
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestLayering(t *testing.T) {
	pkgs := packages(t)
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for _, p := range pkgs {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		r, ok := rank(rel)
		if !ok {
			t.Errorf("%s has no layer: add it to layers", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			ir, ok := rank(strings.TrimPrefix(imp, module+"/"))
			if ok && ir > r {
				t.Errorf("%s (layer %d) imports %s (layer %d): lower layers must not import higher ones", p.ImportPath, r, imp, ir)
			}
		}
	}
}

// TestRank checks the ranking itself, so that a broken prefix match
// cannot make TestLayering pass vacuously.
func TestRank(t *testing.T) {
	for rel, want := range map[string]int{
		"image": 0, "internal/inflate": 0, "format/qcow2": 1, "format": 2,
		"convert": 3, "boot": 4, "bootx": -1, "cmd/qimg": 6, "cmd/qimg/internal/report": 6, "formatx": -1,
	} {
		got, ok := rank(rel)
		if !ok {
			got = -1
		}
		if got != want {
			t.Errorf("rank(%q) = %d, want %d", rel, got, want)
		}
	}
}
