package fat

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

// variants are the volumes the tests make: every FAT width, cluster
// sizes from one sector to 32 KiB, and 4 KiB sectors.
var variants = []struct {
	name string
	size int64
	args []string
}{
	{"fat12", 2 << 20, []string{"-F", "12"}},
	{"fat12-s4", 4 << 20, []string{"-F", "12", "-s", "4"}},
	{"fat12-4k", 8 << 20, []string{"-F", "12", "-S", "4096"}},
	{"fat16", 32 << 20, []string{"-F", "16"}},
	{"fat16-s1", 20 << 20, []string{"-F", "16", "-s", "1"}},
	{"fat16-4k", 64 << 20, []string{"-F", "16", "-S", "4096", "-s", "1"}},
	{"fat32", 64 << 20, []string{"-F", "32"}},
	{"fat32-s8", 300 << 20, []string{"-F", "32", "-s", "8"}},
	{"fat32-4k", 300 << 20, []string{"-F", "32", "-S", "4096"}},
}

// sampleTree is what the read tests copy in with mtools.
func sampleTree(many int) tree {
	m := tree{
		"README.TXT":                       []byte("read me\n"),
		"hello.txt":                        []byte("hello, lower-case 8.3\n"),
		"A Long File Name with spaces.txt": []byte("long\n"),
		"café.txt":                         []byte("accent\n"),
		"Mixed.Case":                       []byte("mixed\n"),
		"empty":                            {},
		"big.bin":                          pattern(300_000, 1),
		"EFI/BOOT/BOOTX64.EFI":             pattern(40_000, 2),
		"EFI/debian/grub.cfg":              []byte("search --fs-uuid\n"),
		"a/b/c/d/e/f.txt":                  []byte("deep\n"),
	}
	for i := range many {
		m[fmt.Sprintf("many/file-%03d-with-a-long-name.dat", i)] = []byte(fmt.Sprintf("%d\n", i))
	}
	return withParents(m)
}

// mcopyTree copies a host directory's top-level entries into an image.
func mcopyTree(t testing.TB, img, src string) {
	t.Helper()
	des, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-s", "-i", img}
	for _, d := range des {
		args = append(args, filepath.Join(src, d.Name()))
	}
	run(t, "mcopy", append(args, "::/")...)
}

func TestReadMtoolsImages(t *testing.T) {
	need(t, "mkfs.vfat", "mcopy", "fsck.fat")
	t.Parallel()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			img := mkfs(t, v.size, append(v.args, "-n", "QIMGTEST")...)
			want := sampleTree(120)
			src := t.TempDir()
			writeHost(t, src, want)
			mcopyTree(t, img, src)
			fsckClean(t, img)
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fsys, err := Open(f, v.size, img)
			if err != nil {
				t.Fatal(err)
			}
			if d := diff(ours(t, fsys), want); d != "" {
				t.Fatalf("tree differs from what mcopy wrote:\n%s", d)
			}
			if fsys.Label() != "QIMGTEST" {
				t.Errorf("label %q", fsys.Label())
			}
			if err := fstest.TestFS(fsys, "EFI/BOOT/BOOTX64.EFI", "café.txt", "many/file-119-with-a-long-name.dat"); err != nil {
				t.Fatal(err)
			}
			// Case-insensitive lookup, and by short name.
			for _, p := range []string{"efi/boot/bootx64.efi", "HELLO.TXT", "ALONGF~1.TXT"} {
				if _, err := fs.Stat(fsys, p); err != nil {
					t.Errorf("stat %s: %v", p, err)
				}
			}
			fi, _ := fsys.Stat("A Long File Name with spaces.txt")
			if a := fi.Sys().(*Attributes); a.ShortName != "ALONGF~1.TXT" {
				t.Errorf("short name %q", a.ShortName)
			}
			if _, err := fsys.ReadLink("hello.txt"); err == nil {
				t.Error("ReadLink succeeded on FAT")
			}
		})
	}
}
