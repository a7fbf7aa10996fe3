package ext4

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fileDevice is a Device on a host file.
type fileDevice struct{ *os.File }

func (d fileDevice) Flush() error { return d.Sync() }

// newFS makes an empty file system of size with mkfs options (mkfs.ext4
// by default; "-t ext2" and "-t ext3" pick the older types).
func newFS(t testing.TB, size string, opts ...string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "w.img")
	run(t, "mkfs.ext4", append(append([]string{"-q", "-F"}, opts...), img, size)...)
	return img
}

// openRW opens an image file for writing.
func openRW(t testing.TB, img string) *FS {
	t.Helper()
	fd, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fd.Close() })
	st, _ := fd.Stat()
	f, err := OpenWritable(fileDevice{fd}, st.Size(), img)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// fsck asserts e2fsck -fn finds nothing to fix.
func fsck(t testing.TB, img string) {
	t.Helper()
	out, err := exec.Command("/usr/sbin/e2fsck", "-fn", img).CombinedOutput()
	if err != nil {
		t.Fatalf("e2fsck -fn: %v\n%s", err, out)
	}
}

// debugfsCat reads a file with debugfs.
func debugfsCat(t testing.TB, img, p string) []byte {
	t.Helper()
	return []byte(run(t, "debugfs", "-R", "cat /"+p, img))
}

func commit(t testing.TB, f *FS) {
	t.Helper()
	if err := f.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// writeString writes a file with content s.
func writeString(f *FS, name, s string) error {
	return f.WriteFile(name, strings.NewReader(s), int64(len(s)), 0o644)
}

func TestNameHashMatchesDebugfs(t *testing.T) {
	need(t, "debugfs")
	img := newFS(t, "8M")
	seedText := "d1913ae5-7943-4b67-bc56-004f015cb317"
	var seed [4]uint32
	raw, _ := hexUUID(seedText)
	for i := range seed {
		seed[i] = binary.LittleEndian.Uint32(raw[4*i:])
	}
	rng := rand.New(rand.NewPCG(1, 2))
	// debugfs names only the signed variants (it takes "half_md4_unsigned"
	// for legacy); the unsigned ones are judged by e2fsck in TestHtree.
	algs := map[string]uint8{"legacy": 0, "half_md4": 1, "tea": 2}
	for alg, v := range algs {
		for range 6 {
			n := 1 + rng.IntN(80)
			b := make([]byte, n)
			for i := range b {
				b[i] = byte('a' + rng.IntN(26))
				if rng.IntN(5) == 0 {
					b[i] = byte(0x80 + rng.IntN(100))
				}
			}
			out := run(t, "debugfs", "-R", fmt.Sprintf("dx_hash -h %s -s %s %s", alg, seedText, b), img)
			var want, minor uint32
			if _, err := fmt.Sscanf(out[strings.Index(out, " is ")+4:], "0x%x (minor 0x%x)", &want, &minor); err != nil {
				t.Fatalf("debugfs said %q", out)
			}
			got, _ := nameHash(v, b, seed)
			if got != want {
				t.Errorf("%s(%q) = %#x, debugfs %#x", alg, b, got, want)
			}
		}
	}
}

func hexUUID(s string) ([16]byte, error) {
	var u [16]byte
	s = strings.ReplaceAll(s, "-", "")
	for i := range u {
		if _, err := fmt.Sscanf(s[2*i:2*i+2], "%02x", &u[i]); err != nil {
			return u, err
		}
	}
	return u, nil
}

// variants are the file systems every write scenario runs on.
var writeVariants = []struct {
	name string
	opts []string
}{
	{"ext4-1k", nil},
	{"ext4-4k", []string{"-b", "4096"}},
	{"ext4-nocsum", []string{"-O", "^metadata_csum"}},
	{"ext4-2k-32bit", []string{"-b", "2048", "-O", "^64bit"}},
	{"ext3", []string{"-t", "ext3"}},
	{"ext2", []string{"-t", "ext2"}},
}

func TestWriteScenarios(t *testing.T) {
	need(t, "mkfs.ext4", "e2fsck", "debugfs")
	for _, v := range writeVariants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			img := newFS(t, "64M", v.opts...)
			f := openRW(t, img)
			big := pattern(3<<20+123, 9)
			must(t, f.Mkdir("etc", 0o755))
			must(t, f.Mkdir("etc/sub", 0o700))
			must(t, writeString(f, "etc/hostname", "guest\n"))
			must(t, f.WriteFile("big", bytes.NewReader(big), int64(len(big)), 0o600))
			must(t, f.Symlink("etc/hostname", "fast"))
			must(t, f.Symlink(strings.Repeat("x/", 60)+"target", "slow"))
			must(t, f.Link("etc/hostname", "etc/sub/hard"))
			commit(t, f)
			fsck(t, img)
			if got := debugfsCat(t, img, "big"); !bytes.Equal(got, big) {
				t.Fatalf("big reads back %d bytes", len(got))
			}
			if got := string(debugfsCat(t, img, "etc/sub/hard")); got != "guest\n" {
				t.Fatalf("hard link reads %q", got)
			}

			// Second transaction: overwrite, truncate, rename, chmod.
			must(t, writeString(f, "etc/hostname", "renamed-guest\n"))
			must(t, f.Truncate("big", 1<<20+7))
			must(t, f.Rename("etc/sub", "moved"))
			must(t, f.Rename("fast", "moved/fast2"))
			must(t, f.Chmod("moved/hard", fs.ModeSetuid|0o755))
			must(t, f.Chown("moved/hard", 1000, 1000))
			when := time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC)
			must(t, f.Chtimes("big", when, when))
			commit(t, f)
			fsck(t, img)
			if got := debugfsCat(t, img, "big"); !bytes.Equal(got, big[:1<<20+7]) {
				t.Fatalf("truncated big reads back %d bytes", len(got))
			}
			stat := run(t, "debugfs", "-R", "stat /moved/hard", img)
			if !strings.Contains(stat, "Mode:  04755") || !strings.Contains(stat, "User:  1000") {
				t.Fatalf("chmod/chown not seen by debugfs:\n%s", stat)
			}
			if got := string(debugfsCat(t, img, "moved/hard")); got != "renamed-guest\n" {
				t.Fatalf("overwrite through hard link reads %q", got)
			}

			// Third: grow by truncate, delete trees.
			must(t, f.Truncate("big", 2<<20))
			must(t, f.RemoveAll("moved"))
			must(t, f.Remove("slow"))
			commit(t, f)
			fsck(t, img)
			got := debugfsCat(t, img, "big")
			if !bytes.Equal(got[:1<<20+7], big[:1<<20+7]) || !bytes.Equal(got[1<<20+7:], make([]byte, 2<<20-(1<<20+7))) {
				t.Fatal("grown file does not read its data then zeros")
			}
			if _, err := f.Stat("moved"); err == nil {
				t.Fatal("moved still there")
			}
			// What is left: etc/hostname (link count 1 again), big.
			if in := sys(t, f, "etc/hostname"); in.Links != 1 {
				t.Fatalf("hostname has %d links", in.Links)
			}
		})
	}
}
