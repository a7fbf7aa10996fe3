package ntfs_test

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/qimg/qimg/guestfs/ntfs"
	"github.com/qimg/qimg/internal/imagetest"
)

// treeImage unpacks testdata/tree.img.gz (made by testdata/mkimage.sh
// with mkntfs and ntfs-3g) into a temporary file.
func treeImage(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tree.img")
	if err := imagetest.Gunzip("testdata/tree.img.gz", p); err != nil {
		t.Fatal(err)
	}
	return p
}

func openFile(t testing.TB, p string) *ntfs.FS {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, _ := f.Stat()
	fsys, err := ntfs.Open(f, fi.Size(), p)
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

func tool(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %q: %v", name, args, err)
	}
	return out
}

// TestAgainstNtfsprogs lists every directory and reads files, comparing
// with ntfsls and ntfscat (libntfs-3g's reading).
func TestAgainstNtfsprogs(t *testing.T) {
	img := treeImage(t)
	fsys := openFile(t, img)
	var files []string
	dirs := 0
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			files = append(files, p)
			return nil
		}
		dirs++
		entries, err := fsys.ReadDir(p)
		if err != nil {
			return err
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
		}
		var want []string
		for l := range strings.SplitSeq(string(tool(t, "ntfsls", "-p", "/"+strings.TrimPrefix(p, "."), img)), "\n") {
			if l != "" && l != "." && l != ".." {
				want = append(want, l)
			}
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: %d names %q..., ntfsls %d names %q...", p, len(got), got[:min(5, len(got))], len(want), want[:min(5, len(want))])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if dirs != 8 || len(files) != 1530 {
		t.Errorf("%d directories, %d files", dirs, len(files))
	}
	sample := []string{"big.bin", "small.txt", "empty", "sparse.bin", "Ünïcödé ☃/deep/er/leaf.txt", "Windows/System32/drv0.dll", "Windows/System32/drv1499.dll", "Windows/System32/drv777.dll",
		"links/target.txt", "links/link-24-" + strings.Repeat("x", 100)}
	for _, p := range sample {
		got, err := fs.ReadFile(fsys, p)
		if err != nil {
			t.Fatal(err)
		}
		if want := tool(t, "ntfscat", img, "/"+p); !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes differ from ntfscat's %d", p, len(got), len(want))
		}
		fi, err := fsys.Stat(p)
		if err != nil || fi.Size() != int64(len(got)) || !fi.Mode().IsRegular() {
			t.Errorf("%s: stat %v %v", p, fi, err)
		}
	}
	// Windows matches names case-insensitively.
	if b, err := fs.ReadFile(fsys, "WINDOWS/system32/DRV5.DLL"); err != nil || string(b) != "driver 5\n" {
		t.Errorf("case-insensitive lookup: %q %v", b, err)
	}
	if _, err := fsys.Stat("Windows/nothing"); !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
}

// TestFSConformance runs testing/fstest on a subtree and reads
// concurrently for the race detector.
func TestFSConformance(t *testing.T) {
	fsys := openFile(t, treeImage(t))
	sub, err := fs.Sub(fsys, "Ünïcödé ☃")
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(sub, "deep/er/leaf.txt"); err != nil {
		t.Fatal(err)
	}
	win, err := fs.Sub(fsys, "Windows")
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(win, "System32/config", "System32/drv1000.dll"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			f, err := fsys.Open(path.Join("Windows/System32", "drv1"+strings.Repeat("0", i)+".dll"))
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			io.Copy(io.Discard, f)
		})
	}
	wg.Wait()
}
