package partition_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/qimg/qimg/guestfs/partition"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/imagetest"
	"github.com/qimg/qimg/internal/qemutest"
)

// FuzzRead reads hostile disks of any size: head at the start, tail at
// the end, zeros between (so that a seed keeps a GPT's backup without
// the empty middle). Errors must be classified and name the image; a
// table read must be sane.
func FuzzRead(f *testing.F) {
	g := buildGPT(4096, 32<<10, 4, 128, twoParts(3)[:1]).disk
	f.Add([]byte(g[:3*4096]), []byte(g[len(g)-2*4096:]), int64(len(g)))
	f.Fuzz(func(t *testing.T, head, tail []byte, size int64) {
		disk := newSparse(head, tail, size)
		tab, err := partition.Read(disk, "fuzz.img")
		if err != nil {
			imagetest.CheckError(t, "Read", "fuzz.img", err)
			return
		}
		checkSane(t, disk, tab)
	})
}

// checkSane fails unless every partition lies on the disk, opens, and
// numbers rise.
func checkSane(t *testing.T, disk image.Image, tab *partition.Table) {
	last := 0
	for _, p := range tab.Partitions {
		if p.Number <= last || p.Start < 0 || p.Size < 0 || p.Start+p.Size > disk.Size() {
			t.Fatalf("partition %+v after number %d on a disk of %d bytes", p, last, disk.Size())
		}
		last = p.Number
		if _, err := p.Open(disk); err != nil {
			t.Fatalf("partition %d does not open: %v", p.Number, err)
		}
	}
	if len(tab.Devices()) == 0 {
		t.Fatal("no devices")
	}
}

// seeds are small disks whose tables sfdisk and sgdisk wrote; each is a
// seed of FuzzRead, and TestSeeds checks them against sfdisk.
var seeds = []struct {
	name, size string
	cmd        []string // a shell command; $1 is the disk
}{
	{"sfdisk-gpt", "8K", []string{`printf 'label: gpt\nlabel-id: AD7AEA00-6F81-1044-91CA-62275DA69138\ntable-length: 4\nfirst-lba: 3\nstart=4, size=4, type=L, name=a\nstart=8, size=4, type=S, name="sw ap", attrs=LegacyBIOSBootable\n' | sfdisk -q "$1"`}},
	{"sfdisk-mbr-logical", "8K", []string{`printf 'label: dos\nlabel-id: 0xcafe0001\nstart=1, size=2, type=83, bootable\nstart=3, size=13, type=5\nstart=4, size=2, type=83\nstart=7, size=2, type=7\nstart=10, size=6, type=b\n' | sfdisk -q "$1"`}},
	{"sgdisk-gpt", "40K", []string{`sgdisk -o --resize-table=4 -n 1:3:+8 -c 1:x -t 1:ef00 -n 2:0:0 -t 2:8300 -c 2:ÿ "$1" >/dev/null`}},
}

// TestSeeds checks the seeds in testdata/fuzz/FuzzRead against sfdisk,
// and with QIMG_REGEN_SEEDS=1 first writes them anew with the tools.
func TestSeeds(t *testing.T) {
	for _, s := range seeds {
		corpus := filepath.Join("testdata", "fuzz", "FuzzRead", s.name)
		disk := filepath.Join(t.TempDir(), "seed.img")
		if os.Getenv("QIMG_REGEN_SEEDS") == "1" {
			qemutest.Run(t, "truncate", "-s", s.size, disk)
			qemutest.Run(t, "sh", append([]string{"-c"}, append(s.cmd, "sh", disk)...)...)
			writeSeed(t, corpus, disk)
		}
		data := readSeed(t, corpus)
		if err := os.WriteFile(disk, data, 0o644); err != nil {
			t.Fatal(err)
		}
		compareSfdisk(t, disk, readFile(t, disk))
	}
}

// writeSeed stores a disk as a corpus entry: its first half up to the
// last sector that is not zero, its second half from the first such
// sector, and its size.
func writeSeed(t *testing.T, corpus, disk string) {
	data, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	half := len(data) / 2 &^ 511
	head, tail := data[:half], data[half:]
	for len(head) > 0 && allZero(head[len(head)-512:]) {
		head = head[:len(head)-512]
	}
	for len(tail) > 0 && allZero(tail[:512]) {
		tail = tail[512:]
	}
	entry := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n[]byte(%q)\nint64(%d)\n", head, tail, len(data))
	if err := os.WriteFile(corpus, entry, 0o644); err != nil {
		t.Fatal(err)
	}
}

func allZero(b []byte) bool { return strings.Count(string(b), "\x00") == len(b) }

// readSeed rebuilds the disk of a corpus entry written by writeSeed.
func readSeed(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 4 {
		t.Fatalf("%s: %d lines", p, len(lines))
	}
	var parts [2][]byte
	for i := range parts {
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1+i], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		parts[i] = []byte(s)
	}
	size, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(lines[3], "int64("), ")"), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	data := make([]byte, size)
	copy(data, parts[0])
	copy(data[size-int64(len(parts[1])):], parts[1])
	return data
}
