package ext4

import (
	"errors"
	"io/fs"
	"testing"
)

// A directory whose inode number was freed and handed to a new directory
// must not be looked up through the names cached for the old one: the
// model test found a directory moved below itself that way (the new
// directory's "..", read from the stale cache, led to the root).
func TestRenameBelowItselfAfterInodeReuse(t *testing.T) {
	img := newFS(t, "4M", "-t", "ext2")
	f := openRW(t, img)
	must(t, f.Mkdir("old", 0o755))
	must(t, f.Mkdir("old/sub", 0o755))
	must(t, f.Mkdir("etc", 0o755))
	commit(t, f)
	// Cache the names of old and old/sub, then free both inodes.
	if _, err := f.Stat("old/sub/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat: %v", err)
	}
	must(t, f.RemoveAll("old"))
	must(t, f.Mkdir("etc/b", 0o755))
	must(t, f.Mkdir("etc/b/c", 0o755))
	for _, dst := range []string{"etc/b/f", "etc/b/c/f"} {
		if err := f.Rename("etc", dst); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("rename etc %s: %v, want a refusal", dst, err)
		}
	}
	commit(t, f)
	fsck(t, img)
}
