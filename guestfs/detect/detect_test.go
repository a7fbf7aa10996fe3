package detect_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/qimg/qimg/guestfs/detect"
	"github.com/qimg/qimg/internal/qemutest"
)

// blkid is what blkid says of a file, as a Content.
func blkid(t *testing.T, path string) detect.Content {
	f := qemutest.Blkid(t, path)
	return detect.Content{Type: f["TYPE"], Label: f["LABEL"], UUID: f["UUID"]}
}

// run runs a command that must succeed.
func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// TestProbeMatchesBlkid makes each kind of content with its real tool and
// compares Probe with blkid on the same file.
func TestProbeMatchesBlkid(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, size string
		make       func(p string)
		noLabel    bool // blkid reads a label Probe does not (NTFS's $Volume)
	}{
		{"ext4", "32M", func(p string) { run(t, "mkfs.ext4", "-q", "-F", "-L", "root", p) }, false},
		{"ext3", "32M", func(p string) { run(t, "mkfs.ext3", "-q", "-F", "-L", "old", p) }, false},
		{"ext2", "32M", func(p string) { run(t, "mkfs.ext2", "-q", "-F", p) }, false},
		{"ext4-nocsum", "32M", func(p string) { run(t, "mkfs.ext4", "-q", "-F", "-O", "^metadata_csum,^64bit", p) }, false},
		{"xfs", "320M", func(p string) { run(t, "mkfs.xfs", "-q", "-f", "-L", "xroot", p) }, false},
		{"xfs-v4", "320M", func(p string) { run(t, "mkfs.xfs", "-q", "-f", "-m", "crc=0", "-L", "v4", p) }, false},
		{"vfat32", "64M", func(p string) { run(t, "mkfs.vfat", "-F", "32", "-n", "EFI", p) }, false},
		{"vfat16", "32M", func(p string) { run(t, "mkfs.vfat", "-F", "16", "-n", "CIDATA", p) }, false},
		{"vfat12", "2M", func(p string) { run(t, "mkfs.vfat", "-F", "12", p) }, false},
		{"btrfs", "128M", func(p string) { run(t, "mkfs.btrfs", "-q", "-f", "-L", "pool", p) }, false},
		{"swap", "16M", func(p string) { run(t, "mkswap", "-L", "swp", p) }, false},
		{"luks2", "32M", func(p string) { luks(t, p, "luks2") }, false},
		{"luks1", "32M", func(p string) { luks(t, p, "luks1") }, false},
		{"ntfs", "32M", func(p string) { run(t, "mkntfs", "-q", "-F", "-f", "-L", "win", p) }, true},
		{"iso9660", "", func(p string) { iso(t, p) }, false},
		{"zeros", "8M", func(p string) {}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name+".img")
			if c.size != "" {
				run(t, "truncate", "-s", c.size, p)
			}
			c.make(p)
			want := blkid(t, p)
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			got, err := detect.Probe(f, st.Size())
			if err != nil {
				t.Fatal(err)
			}
			if c.noLabel {
				want.Label = ""
			}
			if got != want {
				t.Errorf("Probe %+v, blkid %+v", got, want)
			}
			if c.name != "zeros" && got.Type == "" {
				t.Error("nothing recognised")
			}
		})
	}
}

func luks(t *testing.T, p, version string) {
	key := filepath.Join(filepath.Dir(p), "key")
	if err := os.WriteFile(key, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"luksFormat", "-q", "--type", version, "--pbkdf-force-iterations", "1000", "--key-file", key, p}
	if version == "luks2" {
		args = append(args[:len(args)-1], "--label", "vault", "--pbkdf", "pbkdf2", p)
	}
	run(t, "cryptsetup", args...)
}

func iso(t *testing.T, p string) {
	src := filepath.Join(filepath.Dir(p), "isosrc")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "user-data"), []byte("#cloud-config\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "xorriso", "-as", "mkisofs", "-quiet", "-V", "cidata", "-J", "-R", "-o", p, src)
}
