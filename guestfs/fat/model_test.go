package fat

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"testing"
)

// TestRandomModel applies random operations to a volume and to a map,
// commits every few operations, and compares the two, with fsck.fat
// and mtools as judges after each commit.
func TestRandomModel(t *testing.T) {
	need(t, "mkfs.vfat", "mcopy", "mdir", "fsck.fat")
	t.Parallel()
	for _, v := range []struct {
		name string
		size int64
		args []string
		seed uint64
	}{
		{"fat12", 2 << 20, []string{"-F", "12"}, 1},
		{"fat16", 20 << 20, []string{"-F", "16", "-s", "1"}, 2},
		{"fat32", 64 << 20, []string{"-F", "32"}, 3},
	} {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			img := mkfs(t, v.size, v.args...)
			f, file := openRW(t, img)
			defer file.Close()
			rng := rand.New(rand.NewPCG(v.seed, 42))
			m := tree{}
			ops := map[string]int{}
			defer func() { t.Log(ops, len(m)) }()
			for round := range 10 {
				for range 40 {
					op := randomOp(t, f, m, rng)
					ops[strings.Fields(op)[0]]++
					if d := diff(ours(t, f), m); d != "" {
						t.Fatalf("round %d, after %s:\n%s", round, op, d)
					}
				}
				if err := f.Commit(context.Background()); err != nil {
					t.Fatal(err)
				}
				check(t, img, m)
			}
		})
	}
}

// randomName picks names that exercise 8.3, lower-case 8.3, long and
// case-colliding names.
func randomName(rng *rand.Rand) string {
	names := []string{"A.TXT", "b.txt", "Long Name Number One.cfg", "long name number one.CFG",
		"data", "DATA.BIN", "x", "Ünïcode file", "config.d", "a.b.c.d", "UPPER", "Mixed.Case"}
	return names[rng.IntN(len(names))]
}

func pathsOf(m tree, dirs bool) []string {
	var out []string
	for p, b := range m {
		if (b == nil) == dirs {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// lookupModel finds p in the model case-insensitively.
func lookupModel(m tree, p string) (string, bool) {
	for q := range m {
		if strings.EqualFold(q, p) {
			return q, true
		}
	}
	return "", false
}

func randomOp(t *testing.T, f *FS, m tree, rng *rand.Rand) string {
	dirs := append([]string{"."}, pathsOf(m, true)...)
	files := pathsOf(m, false)
	parent := dirs[rng.IntN(len(dirs))]
	name := path.Join(parent, randomName(rng))
	// The model keeps the stored spelling of existing names.
	if _, ok := m[parent]; parent != "." && !ok {
		return "skip"
	}
	switch k := rng.IntN(10); {
	case k < 4:
		size := []int{0, 1, 511, 4096, 9000, 70000}[rng.IntN(6)]
		b := pattern(size, byte(rng.IntN(256)))
		err := f.WriteFile(name, bytes.NewReader(b), int64(size), 0o644)
		stored, exists := lookupModel(m, name)
		switch {
		case exists && m[stored] == nil:
			if err == nil {
				t.Fatalf("WriteFile over directory %s succeeded", name)
			}
		case err != nil:
			t.Fatalf("WriteFile %s: %v", name, err)
		case exists:
			m[stored] = b
		default:
			m[name] = b
		}
		return "write " + name
	case k < 6:
		err := f.Mkdir(name, 0o755)
		if _, exists := lookupModel(m, name); exists != (err != nil) {
			t.Fatalf("Mkdir %s: %v (exists %v)", name, err, exists)
		}
		if err == nil {
			m[name] = nil
		}
		return "mkdir " + name
	case k < 8 && len(files)+len(dirs) > 1:
		all := append(slices.Clone(files), dirs[1:]...)
		p := all[rng.IntN(len(all))]
		if err := f.RemoveAll(p); err != nil {
			t.Fatalf("RemoveAll %s: %v", p, err)
		}
		removeModel(m, p)
		return "removeall " + p
	case len(files)+len(dirs) > 1:
		all := append(slices.Clone(files), dirs[1:]...)
		from := all[rng.IntN(len(all))]
		isDir := m[from] == nil
		if isDir && (strings.EqualFold(name, from) || strings.HasPrefix(strings.ToLower(name), strings.ToLower(from)+"/")) {
			return "skip" // into itself
		}
		if stored, exists := lookupModel(m, name); exists {
			if isDir || m[stored] == nil || stored == from {
				return "skip"
			}
			name = stored
		}
		if err := f.Rename(from, name); err != nil {
			t.Fatalf("Rename %s %s: %v", from, name, err)
		}
		renameModel(m, from, name)
		return fmt.Sprintf("rename %s %s", from, name)
	}
	return "skip"
}
