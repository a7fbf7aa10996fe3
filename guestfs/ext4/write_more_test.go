package ext4

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mkfsFrom makes a file system of size from a host tree, then runs
// e2fsck -fyD so that large directories get htree indexes.
func mkfsFrom(t *testing.T, src, size string, opts ...string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fs.img")
	run(t, "mkfs.ext4", append(append([]string{"-q", "-F", "-d", src}, opts...), img, size)...)
	e2fsckFix(t, img, "-fyD")
	fsck(t, img)
	return img
}

// runCode runs a command and returns its output and exit status.
func runCode(name string, args ...string) (string, int) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		return err.Error(), -1
	}
	return string(out), 0
}

// e2fsckFix runs e2fsck with fixing flags; exit status 1 (fixed) is fine.
func e2fsckFix(t *testing.T, img string, flags ...string) {
	t.Helper()
	out, err := runCode("/usr/sbin/e2fsck", append(flags, img)...)
	if err > 1 {
		t.Fatalf("e2fsck %v: exit %d\n%s", flags, err, out)
	}
}

func TestHtreeInsertAndRemove(t *testing.T) {
	need(t, "mkfs.ext4", "e2fsck", "debugfs")
	for _, v := range []struct {
		name string
		opts []string
		ssv  string // superblock fields set with debugfs before indexing
	}{
		{"half_md4-1k", nil, ""},
		{"tea-4k", []string{"-b", "4096"}, "def_hash_version tea"},
		{"legacy-nocsum", []string{"-O", "^metadata_csum"}, "def_hash_version legacy"},
		{"half_md4-unsigned", nil, "flags 2"}, // unsigned_directory_hash
	} {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			src := t.TempDir()
			must(t, os.Mkdir(filepath.Join(src, "big"), 0o755))
			for i := range 600 {
				must(t, os.WriteFile(filepath.Join(src, "big", fmt.Sprintf("existing-entry-%04d", i)), nil, 0o644))
			}
			img := filepath.Join(t.TempDir(), "fs.img")
			run(t, "mkfs.ext4", append(append([]string{"-q", "-F", "-d", src}, v.opts...), img, "32M")...)
			if v.ssv != "" {
				run(t, "debugfs", "-w", "-R", "ssv "+v.ssv, img)
			}
			e2fsckFix(t, img, "-fyD")
			fsck(t, img)
			if in := sys(t, openImage(t, img), "big"); in.Flags&FlagIndex == 0 {
				t.Fatal("e2fsck -D did not index the directory")
			}
			f := openRW(t, img)
			// Names with high bytes hash differently signed and unsigned.
			name := func(i int) string { return fmt.Sprintf("new-é-ü-entry-%05d-%s", i, strings.Repeat("n", i%40)) }
			for i := range 2500 {
				must(t, f.WriteFile("big/"+name(i), strings.NewReader(""), 0, 0o644))
			}
			commit(t, f)
			fsck(t, img)
			for i := 0; i < 2500; i += 3 {
				must(t, f.Remove("big/"+name(i)))
			}
			for i := 0; i < 600; i += 2 {
				must(t, f.Remove(fmt.Sprintf("big/existing-entry-%04d", i)))
			}
			commit(t, f)
			fsck(t, img)
			// Every name left is found through the index by debugfs.
			for _, i := range []int{1, 2, 1000, 2498} {
				out := run(t, "debugfs", "-R", fmt.Sprintf("stat \"/big/%s\"", name(i)), img)
				if !strings.Contains(out, "Type: regular") {
					t.Fatalf("debugfs does not find %q:\n%s", name(i), out)
				}
			}
			ents, err := openImage(t, img).ReadDir("big")
			must(t, err)
			if want := 2500 - 834 + 300; len(ents) != want {
				t.Fatalf("%d entries, want %d", len(ents), want)
			}
		})
	}
}

// TestUninitGroupsAndDeepExtents fills a file system so that writes land
// in groups never initialised (BLOCK_UNINIT, INODE_UNINIT) and a file in
// fragmented free space needs an extent tree two levels deep.
func TestUninitGroupsAndDeepExtents(t *testing.T) {
	need(t, "mkfs.ext4", "e2fsck", "debugfs")
	img := newFS(t, "64M")
	if !strings.Contains(run(t, "dumpe2fs", img), "BLOCK_UNINIT") {
		t.Fatal("no uninitialised groups to test")
	}
	f := openRW(t, img)
	// Many inodes: past group 0's.
	must(t, f.Mkdir("many", 0o755))
	for i := range 3000 {
		must(t, writeString(f, fmt.Sprintf("many/f%d", i), "x"))
	}
	// A file bigger than a group: its blocks go into uninit groups.
	big := pattern(20<<20, 4)
	must(t, f.WriteFile("big", bytes.NewReader(big), int64(len(big)), 0o644))
	commit(t, f)
	fsck(t, img)
	// Fragment the free space: files of one block, every other one freed.
	must(t, f.Mkdir("frag", 0o755))
	for i := range 4000 {
		must(t, writeString(f, fmt.Sprintf("frag/%d", i), "y"))
	}
	commit(t, f)
	for i := 0; i < 4000; i += 2 {
		must(t, f.Remove(fmt.Sprintf("frag/%d", i)))
	}
	commit(t, f)
	fsck(t, img)
	// Fill the rest so that the last file must use the holes.
	fi := f.Info()
	rest := pattern(int(fi.FreeBlocks-600)*int(fi.BlockSize), 5)
	must(t, f.WriteFile("fill", bytes.NewReader(rest), int64(len(rest)), 0o644))
	commit(t, f)
	fsck(t, img)
	stat := run(t, "debugfs", "-R", "stat /fill", img)
	if !strings.Contains(stat, "Level Entries") && !strings.Contains(stat, "EXTENTS") {
		t.Fatalf("debugfs stat:\n%s", stat)
	}
	l, err := f.readLayout(sys(t, f, "fill"))
	must(t, err)
	if len(l.runs) < 400 {
		t.Fatalf("fill has %d extents; the test wants a deep tree", len(l.runs))
	}
	if got := debugfsCat(t, img, "fill"); !bytes.Equal(got, rest) {
		t.Fatal("fill reads back wrong")
	}
	// Free it all again: every tree block too.
	must(t, f.RemoveAll("fill"))
	must(t, f.RemoveAll("frag"))
	commit(t, f)
	fsck(t, img)
}
