package fat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qimg/qimg/image"
)

// writeVariants are the volumes every write scenario runs on.
var writeVariants = []struct {
	name string
	size int64
	args []string
}{
	{"fat12", 2 << 20, []string{"-F", "12"}},
	{"fat16-s1", 20 << 20, []string{"-F", "16", "-s", "1"}},
	{"fat32", 64 << 20, []string{"-F", "32"}},
	{"fat32-4k", 300 << 20, []string{"-F", "32", "-S", "4096"}},
}

// baseTree is what each write scenario starts from, copied in with
// mcopy.
func baseTree() tree {
	return withParents(tree{
		"README.TXT":             []byte("read me\n"),
		"hello.txt":              []byte("hello\n"),
		"A Long File Name.txt":   pattern(5000, 3),
		"EFI/BOOT/BOOTX64.EFI":   pattern(40_000, 2),
		"EFI/BOOT/grub.cfg":      []byte("set timeout=5\n"),
		"EFI/debian/shimx64.efi": pattern(9000, 4),
		"docs/a/b/note.txt":      []byte("deep\n"),
		"docs/a/other.txt":       []byte("other\n"),
	})
}

// openRW opens an image file for writing.
func openRW(t testing.TB, img string) (*FS, *os.File) {
	t.Helper()
	file, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := file.Stat()
	f, err := OpenWritable(file, st.Size(), img)
	if err != nil {
		file.Close()
		t.Fatal(err)
	}
	return f, file
}

// check asserts fsck.fat is clean and that mtools and this package both
// read want.
func check(t testing.TB, img string, want tree) {
	t.Helper()
	fsckClean(t, img)
	if d := diff(theirs(t, img), want); d != "" {
		t.Fatalf("mtools reads a different tree:\n%s", d)
	}
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
	if d := diff(ours(t, f), want); d != "" {
		t.Fatalf("this package reads a different tree:\n%s", d)
	}
}

// put writes a file in both the FS and the model.
func put(t testing.TB, f *FS, m tree, p string, b []byte) {
	t.Helper()
	if err := f.WriteFile(p, bytes.NewReader(b), int64(len(b)), 0o644); err != nil {
		t.Fatalf("WriteFile %s: %v", p, err)
	}
	m[p] = append([]byte{}, b...)
}

func removeModel(m tree, p string) {
	for q := range m {
		if q == p || strings.HasPrefix(q, p+"/") {
			delete(m, q)
		}
	}
}

func renameModel(m tree, from, to string) {
	removeModel(m, to)
	for q, b := range m {
		if q == from || strings.HasPrefix(q, from+"/") {
			delete(m, q)
			m[to+q[len(from):]] = b
		}
	}
}

var scenarios = []struct {
	name string
	ops  func(t testing.TB, f *FS, m tree)
}{
	{"create", func(t testing.TB, f *FS, m tree) {
		put(t, f, m, "NEW.TXT", []byte("upper 8.3\n"))
		put(t, f, m, "lower.txt", []byte("lower 8.3\n"))
		put(t, f, m, "Mixed Case Long Name.conf", []byte("long\n"))
		put(t, f, m, "ünïcode-名前.txt", []byte("unicode\n"))
		put(t, f, m, "zero", nil)
		put(t, f, m, "EFI/BOOT/big.bin", pattern(70_000, 9))
		for _, d := range []string{"new", "new/sub", "new/sub/Long Directory Name"} {
			if err := f.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			m[d] = nil
		}
		put(t, f, m, "new/sub/Long Directory Name/cloud.cfg", []byte("#cloud-config\n"))
	}},
	{"overwrite", func(t testing.TB, f *FS, m tree) {
		put(t, f, m, "EFI/BOOT/grub.cfg", pattern(30_000, 5))   // grows
		put(t, f, m, "EFI/BOOT/BOOTX64.EFI", []byte("small\n")) // shrinks
		put(t, f, m, "hello.txt", nil)
		put(t, f, m, "a long file name.TXT", []byte("case-insensitive\n"))
		m["A Long File Name.txt"] = m["a long file name.TXT"]
		delete(m, "a long file name.TXT")
	}},
	{"truncate", func(t testing.TB, f *FS, m tree) {
		for p, n := range map[string]int{"A Long File Name.txt": 100, "README.TXT": 9000, "hello.txt": 0} {
			if err := f.Truncate(p, int64(n)); err != nil {
				t.Fatal(err)
			}
			b := make([]byte, n)
			copy(b, m[p])
			m[p] = b
		}
	}},
	{"delete", func(t testing.TB, f *FS, m tree) {
		for _, p := range []string{"hello.txt", "A Long File Name.txt", "docs/a/b/note.txt", "docs/a/b"} {
			if err := f.Remove(p); err != nil {
				t.Fatalf("Remove %s: %v", p, err)
			}
			removeModel(m, p)
		}
		if err := f.Remove("EFI"); !errors.Is(err, syscall.ENOTEMPTY) {
			t.Fatalf("Remove of a full directory: %v", err)
		}
		if err := f.RemoveAll("EFI"); err != nil {
			t.Fatal(err)
		}
		removeModel(m, "EFI")
		if err := f.RemoveAll("missing"); err != nil {
			t.Fatal(err)
		}
	}},
	{"rename", func(t testing.TB, f *FS, m tree) {
		for _, r := range [][2]string{
			{"hello.txt", "Hello World.txt"},                // same directory, now a long name
			{"README.TXT", "EFI/debian/README.TXT"},         // file across directories
			{"docs/a", "EFI/moved dir"},                     // directory across directories
			{"EFI/BOOT/grub.cfg", "EFI/debian/shimx64.efi"}, // replaces a file
			{"EFI/moved dir/b", "top"},                      // directory up to the root
			{"top/note.txt", "top/NOTE.TXT"},                // case only
		} {
			if err := f.Rename(r[0], r[1]); err != nil {
				t.Fatalf("Rename %s %s: %v", r[0], r[1], err)
			}
			renameModel(m, r[0], r[1])
		}
		if err := f.Rename("EFI", "EFI/debian/x"); err == nil {
			t.Fatal("moved a directory into itself")
		}
	}},
	{"grow-directory", func(t testing.TB, f *FS, m tree) {
		if err := f.Mkdir("many", 0o755); err != nil {
			t.Fatal(err)
		}
		m["many"] = nil
		for i := range 150 {
			put(t, f, m, fmt.Sprintf("many/entry number %03d with a long name.txt", i), []byte{byte(i)})
			put(t, f, m, fmt.Sprintf("EFI/BOOT/F%03d.CFG", i), nil)
		}
	}},
	{"attributes", func(t testing.TB, f *FS, m tree) {
		when := time.Date(2024, 5, 6, 7, 8, 10, 0, time.UTC)
		if err := f.Chtimes("hello.txt", when, when); err != nil {
			t.Fatal(err)
		}
		if err := f.Chmod("README.TXT", 0o444); err != nil {
			t.Fatal(err)
		}
		fi, _ := f.Stat("hello.txt")
		if !fi.ModTime().Equal(when) {
			t.Fatalf("mtime %v", fi.ModTime())
		}
		fi, _ = f.Stat("README.TXT")
		if fi.Mode().Perm() != 0o444 {
			t.Fatalf("mode %v", fi.Mode())
		}
		for _, err := range []error{f.Symlink("x", "y"), f.Link("hello.txt", "y"), f.Chown("hello.txt", 1, 1)} {
			if !errors.Is(err, image.ErrUnsupported) {
				t.Fatalf("want ErrUnsupported, got %v", err)
			}
		}
	}},
}

func TestWriteScenarios(t *testing.T) {
	need(t, "mkfs.vfat", "mcopy", "mdir", "fsck.fat")
	t.Parallel()
	for _, v := range writeVariants {
		for _, sc := range scenarios {
			t.Run(v.name+"/"+sc.name, func(t *testing.T) {
				t.Parallel()
				img := mkfs(t, v.size, v.args...)
				m := baseTree()
				src := t.TempDir()
				writeHost(t, src, m)
				mcopyTree(t, img, src)
				f, file := openRW(t, img)
				defer file.Close()
				sc.ops(t, f, m)
				m = withParents(m)
				if d := diff(ours(t, f), m); d != "" {
					t.Fatalf("staged tree differs from the model:\n%s", d)
				}
				if err := f.Commit(context.Background()); err != nil {
					t.Fatal(err)
				}
				if d := diff(ours(t, f), m); d != "" {
					t.Fatalf("tree after Commit differs from the model:\n%s", d)
				}
				check(t, img, m)
			})
		}
	}
}

// TestNoSpace fills a volume: the write that does not fit fails with
// ENOSPC, stages nothing, and a Commit of what did fit is clean.
func TestNoSpace(t *testing.T) {
	need(t, "mkfs.vfat", "mcopy", "mdir", "fsck.fat")
	t.Parallel()
	for _, v := range writeVariants[:3] {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			img := mkfs(t, v.size, v.args...)
			m := baseTree()
			src := t.TempDir()
			writeHost(t, src, m)
			mcopyTree(t, img, src)
			before, _ := os.ReadFile(img)
			f, file := openRW(t, img)
			defer file.Close()
			huge := int64(f.fat.available()+1) * f.g.clusterSize
			err := f.WriteFile("huge.bin", bytes.NewReader(make([]byte, huge)), huge, 0o644)
			if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, image.ErrLimit) {
				t.Fatalf("want ENOSPC, got %v", err)
			}
			if _, err := f.Stat("huge.bin"); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the failed file is there: %v", err)
			}
			if err := f.Commit(context.Background()); err != nil {
				t.Fatal(err)
			}
			if after, _ := os.ReadFile(img); !bytes.Equal(before, after) {
				t.Fatal("a failed write changed the image")
			}
			// Fill it exactly, then one byte more fails.
			fill := int64(f.fat.available()) * f.g.clusterSize
			put(t, f, m, "fill.bin", make([]byte, fill))
			if err := f.WriteFile("one", strings.NewReader("x"), 1, 0o644); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("want ENOSPC, got %v", err)
			}
			if err := f.Commit(context.Background()); err != nil {
				t.Fatal(err)
			}
			check(t, img, withParents(m))
		})
	}
}

// TestTwoCommits edits, commits, edits again through the same FS.
func TestTwoCommits(t *testing.T) {
	need(t, "mkfs.vfat", "mcopy", "mdir", "fsck.fat")
	img := mkfs(t, 64<<20, "-F", "32")
	f, file := openRW(t, img)
	defer file.Close()
	m := tree{}
	put(t, f, m, "one.txt", []byte("1"))
	if err := f.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	check(t, img, m)
	put(t, f, m, "one.txt", []byte("one"))
	if err := f.Rename("one.txt", "two.txt"); err != nil {
		t.Fatal(err)
	}
	renameModel(m, "one.txt", "two.txt")
	if err := f.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	check(t, img, m)
}
