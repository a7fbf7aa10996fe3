package ext4

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// debugfsScript runs debugfs -w with commands on its standard input.
func debugfsScript(t *testing.T, img, script string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "cmds")
	must(t, os.WriteFile(f, []byte(script), 0o644))
	run(t, "debugfs", "-w", "-f", f, img)
}

// TestReplayMatchesE2fsck replays journals written by debugfs (as the
// kernel writes them: 64-bit tags, checksums v3, a revoke record) and
// compares the result with e2fsck's replay of the same image.
func TestReplayMatchesE2fsck(t *testing.T) {
	need(t, "mkfs.ext4", "e2fsck", "debugfs")
	for _, csum := range []string{"", " -c"} {
		t.Run("jo"+csum, func(t *testing.T) {
			dir := t.TempDir()
			img := newFS(t, "16M")
			a, b := pattern(1024, 1), pattern(2048, 2)
			must(t, os.WriteFile(filepath.Join(dir, "a"), a, 0o644))
			must(t, os.WriteFile(filepath.Join(dir, "b"), b, 0o644))
			debugfsScript(t, img, "jo"+csum+"\njw -b 3000 "+filepath.Join(dir, "a")+"\njw -b 3001,3002 "+filepath.Join(dir, "b")+"\njc\njo\njw -r 3000\njc\n")
			if !strings.Contains(run(t, "dumpe2fs", "-h", img), "needs_recovery") {
				t.Fatal("debugfs left no journal to replay")
			}
			theirs := filepath.Join(dir, "theirs.img")
			copyFile(t, img, theirs)
			e2fsckFix(t, theirs, "-E", "journal_only", "-y")

			f := openRW(t, img) // replays
			if f.Info().NeedsReplay {
				t.Fatal("still needs recovery after OpenWritable")
			}
			fsck(t, img)
			mine, err := os.ReadFile(img)
			must(t, err)
			want, err := os.ReadFile(theirs)
			must(t, err)
			blk := func(img []byte, n int) []byte { return img[n*1024 : (n+1)*1024] }
			if !bytes.Equal(blk(mine, 3001), b[:1024]) || !bytes.Equal(blk(mine, 3002), b[1024:]) || bytes.Equal(blk(mine, 3000), a) {
				t.Fatal("blocks 3001-3002 not replayed, or revoked block 3000 replayed")
			}
			for _, n := range []int{3000, 3001, 3002} {
				if !bytes.Equal(blk(mine, n), blk(want, n)) {
					t.Errorf("block %d differs from e2fsck's replay", n)
				}
			}
		})
	}
}
