package inspect_test

// Helpers that build guest disks with the real tools: root filesystems
// with mkfs.ext4 -d from host directories, partition tables with sfdisk,
// LVM2 volume groups with the lvm2 tools on a loop device (as package
// lvm's tests do: --driverloaded n, LVs never activated, their bytes
// written at the offsets the tools report), and an NTFS root from
// package ntfs's test image with hives copied in by ntfscp.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stderr strings.Builder
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s%s", name, args, err, out, stderr.String())
	}
	return string(out)
}

// tree is a guest directory tree: files by path (content), and symbolic
// links by path (target).
type tree struct {
	files    map[string]string
	symlinks map[string]string
	elf      []string // paths that get a copy of the host's /bin/true
}

// ext4 makes an ext4 filesystem of 32 MiB from t's tree, with a label
// and UUID, and returns its file.
func (tr tree) ext4(t *testing.T, label, uuid string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "root")
	elf, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	write := func(p string, b []byte) {
		full := filepath.Join(src, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(src, 0o755)
	for p, c := range tr.files {
		write(p, []byte(c))
	}
	for _, p := range tr.elf {
		write(p, elf)
	}
	for p, target := range tr.symlinks {
		full := filepath.Join(src, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.Symlink(target, full); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "fs.img")
	args := []string{"-q", "-F", "-d", src, "-U", uuid}
	if label != "" {
		args = append(args, "-L", label)
	}
	run(t, "mkfs.ext4", append(args, img, "32M")...)
	return img
}

// disk is a raw disk partitioned by an sfdisk script.
type disk struct {
	t     *testing.T
	path  string
	parts map[int][2]int64 // partition number -> start, size in bytes
}

func newDisk(t *testing.T, size, script string) *disk {
	t.Helper()
	d := &disk{t: t, path: filepath.Join(t.TempDir(), "disk.raw"), parts: map[int][2]int64{}}
	run(t, "truncate", "-s", size, d.path)
	cmd := exec.Command("sfdisk", "-q", d.path)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	var l struct {
		PartitionTable struct {
			Partitions []struct {
				Node        string `json:"node"`
				Start, Size int64
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal([]byte(run(t, "sfdisk", "--json", d.path)), &l); err != nil {
		t.Fatal(err)
	}
	for _, p := range l.PartitionTable.Partitions {
		n, _ := strconv.Atoi(strings.TrimPrefix(p.Node, d.path))
		d.parts[n] = [2]int64{p.Start * 512, p.Size * 512}
	}
	return d
}

// partUUID is the PARTUUID sfdisk gave partition n.
func (d *disk) partUUID(n int) string {
	return strings.TrimSpace(run(d.t, "sfdisk", "--part-uuid", d.path, strconv.Itoa(n)))
}

// place writes the file src into partition n (n = 0: at the start of
// the disk), with dd, sparsely: a 320 MiB XFS is mostly holes.
func (d *disk) place(n int, src string) {
	d.t.Helper()
	fi, err := os.Stat(src)
	if err != nil {
		d.t.Fatal(err)
	}
	if n > 0 && fi.Size() > d.parts[n][1] {
		d.t.Fatalf("%s (%d bytes) does not fit partition %d", src, fi.Size(), n)
	}
	run(d.t, "dd", "if="+src, "of="+d.path, "bs=1M", "conv=sparse,notrunc", "oflag=seek_bytes", "status=none",
		"seek="+strconv.FormatInt(d.parts[n][0], 10))
}

func placeAt(t *testing.T, file string, data []byte, off int64) {
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

var vgCounter atomic.Int64

// pv makes an LVM2 physical volume of size bytes holding volume group vg
// with the logical volumes lvs (name, size in MiB, content file or "").
// The tools see only the test's loop device (--devices), so the VG can
// have a real name without meeting the host's or other runs' groups.
func pv(t *testing.T, size int64, vg string, lvs [][3]string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("building LVM needs root for a loop device (run the tests as root)")
	}
	file := filepath.Join(t.TempDir(), fmt.Sprintf("pv%d.raw", vgCounter.Add(1)))
	run(t, "truncate", "-s", strconv.FormatInt(size, 10), file)
	loop := strings.TrimSpace(run(t, "losetup", "--find", "--show", file))
	detached := false
	detach := func() {
		if !detached {
			detached = true
			exec.Command("losetup", "-d", loop).Run()
		}
	}
	defer detach()
	lvm := func(cmd string, args ...string) string {
		return run(t, "lvm", append([]string{cmd, "--driverloaded", "n", "--devices", loop}, args...)...)
	}
	lvm("pvcreate", "-q", loop)
	lvm("vgcreate", "-q", vg, loop)
	for _, lv := range lvs {
		lvm("lvcreate", "-q", "-an", "-Zn", "-n", lv[0], "-L", lv[1]+"M", vg)
	}
	var r struct {
		Report []map[string][]map[string]string `json:"report"`
	}
	out := lvm("lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "lv_name,seg_pe_ranges,vg_extent_size", vg)
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	var pr struct {
		Report []map[string][]map[string]string `json:"report"`
	}
	if err := json.Unmarshal([]byte(lvm("pvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "pe_start", loop)), &pr); err != nil {
		t.Fatal(err)
	}
	peStart := atoi(t, pr.Report[0]["pv"][0]["pe_start"])
	lvm("vgchange", "-q", "-an", vg)
	detach()
	for _, row := range r.Report[0]["lv"] {
		for _, lv := range lvs {
			if lv[0] != row["lv_name"] || lv[2] == "" {
				continue
			}
			rng := row["seg_pe_ranges"] // "/dev/loopN:first-last"
			first := atoi(t, strings.Split(rng[strings.LastIndexByte(rng, ':')+1:], "-")[0])
			data, err := os.ReadFile(lv[2])
			if err != nil {
				t.Fatal(err)
			}
			placeAt(t, file, data, peStart+first*atoi(t, row["vg_extent_size"]))
		}
	}
	return file
}

func atoi(t *testing.T, s string) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		t.Fatalf("number %q: %v", s, err)
	}
	return n
}

// xfs makes an XFS filesystem of 320 MiB (mkfs.xfs's minimum is 300)
// from t's tree with mkfs.xfs -p, and returns its file.
func (tr tree) xfs(t *testing.T, uuid string) string {
	t.Helper()
	dir := t.TempDir()
	type node struct {
		line     string
		children map[string]*node
	}
	root := &node{children: map[string]*node{}}
	add := func(p, line string) {
		cur := root
		parts := strings.Split(p, "/")
		for _, d := range parts[:len(parts)-1] {
			if cur.children[d] == nil {
				cur.children[d] = &node{line: "d--755 0 0", children: map[string]*node{}}
			}
			cur = cur.children[d]
		}
		cur.children[parts[len(parts)-1]] = &node{line: line, children: map[string]*node{}}
	}
	for p, c := range tr.files {
		src := filepath.Join(dir, strings.ReplaceAll(p, "/", "_"))
		if err := os.WriteFile(src, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		add(p, "---644 0 0 "+src)
	}
	for _, p := range tr.elf {
		add(p, "---755 0 0 /bin/true")
	}
	for p, target := range tr.symlinks {
		add(p, "l--777 0 0 "+target)
	}
	var b strings.Builder
	b.WriteString("qimg\n0 0\nd--755 0 0\n")
	var write func(n *node)
	write = func(n *node) {
		for name, c := range n.children {
			fmt.Fprintf(&b, "%s %s\n", name, c.line)
			if strings.HasPrefix(c.line, "d") {
				write(c)
				b.WriteString("$\n")
			}
		}
	}
	write(root)
	b.WriteString("$\n")
	proto := filepath.Join(dir, "proto")
	if err := os.WriteFile(proto, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "fs.img")
	run(t, "truncate", "-s", "320M", img)
	run(t, "mkfs.xfs", "-q", "-f", "-m", "uuid="+uuid, "-p", proto, img)
	return img
}
