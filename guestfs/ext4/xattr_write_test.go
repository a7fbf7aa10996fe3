package ext4

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// eaGet reads an attribute's value with debugfs.
func eaGet(t *testing.T, img, p, attr string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "value")
	run(t, "debugfs", "-R", "ea_get -f "+out+" /"+p+" "+attr, img)
	b, err := os.ReadFile(out)
	must(t, err)
	return string(b)
}

func TestXattrsWrite(t *testing.T) {
	need(t, "mkfs.ext4", "e2fsck", "debugfs")
	for _, v := range writeVariants[:4] {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			img := newFS(t, "16M", v.opts...)
			f := openRW(t, img)
			must(t, writeString(f, "labelled", "old contents"))
			commit(t, f)
			// Attributes set by the real tool, in the inode and in a block.
			vf := filepath.Join(t.TempDir(), "big")
			must(t, os.WriteFile(vf, bytes.Repeat([]byte("b"), 300), 0o644))
			run(t, "debugfs", "-w", "-R", "ea_set /labelled security.selinux system_u:object_r:etc_t:s0", img)
			run(t, "debugfs", "-w", "-R", "ea_set -f "+vf+" /labelled user.big", img)
			f = openRW(t, img)

			// A rewrite, a rename and a chmod keep them.
			must(t, writeString(f, "labelled", "new contents, longer than before"))
			must(t, f.Rename("labelled", "moved"))
			must(t, f.Chmod("moved", 0o600))
			commit(t, f)
			fsck(t, img)
			if got := eaGet(t, img, "moved", "security.selinux"); got != "system_u:object_r:etc_t:s0" {
				t.Fatalf("selinux label after rewrite: %q", got)
			}
			if got := eaGet(t, img, "moved", "user.big"); got != strings.Repeat("b", 300) {
				t.Fatalf("user.big after rewrite: %d bytes", len(got))
			}

			// Set on a new file, grow into a block, remove.
			must(t, writeString(f, "new", "x"))
			must(t, f.SetXattr("new", "security.selinux", []byte("unconfined_u:object_r:user_home_t:s0\x00")))
			must(t, f.SetXattr("new", "user.a", bytes.Repeat([]byte("a"), 600)))
			must(t, f.SetXattr("new", "trusted.t", []byte("trusted value")))
			must(t, f.RemoveXattr("moved", "user.big"))
			commit(t, f)
			fsck(t, img)
			if got := eaGet(t, img, "new", "user.a"); got != strings.Repeat("a", 600) {
				t.Fatalf("user.a: %d bytes", len(got))
			}
			if got := eaGet(t, img, "new", "security.selinux"); got != "unconfined_u:object_r:user_home_t:s0\x00" {
				t.Fatalf("selinux: %q", got)
			}
			if out := run(t, "debugfs", "-R", "ea_list /moved", img); strings.Contains(out, "user.big") {
				t.Fatalf("user.big not removed:\n%s", out)
			}
			must(t, f.RemoveXattr("new", "user.a"))
			if err := f.RemoveXattr("new", "user.missing"); err == nil || !strings.Contains(err.Error(), "no attribute") {
				t.Fatalf("removing a missing attribute: %v", err)
			}
			// Deleting a file frees its attribute block.
			must(t, f.SetXattr("moved", "user.block", bytes.Repeat([]byte("z"), 700)))
			must(t, f.Remove("moved"))
			commit(t, f)
			fsck(t, img)
			xs, err := openImage(t, img).Xattrs("new")
			must(t, err)
			if len(xs) != 2 {
				t.Fatalf("new has %v", xs)
			}
			if _, err := openImage(t, img).Stat("moved"); !isNotExist(err) {
				t.Fatalf("moved: %v", err)
			}
		})
	}
}

func isNotExist(err error) bool { return err != nil && errorsIs(err, fs.ErrNotExist) }

var errorsIs = func(err, target error) bool { return errors.Is(err, target) }
