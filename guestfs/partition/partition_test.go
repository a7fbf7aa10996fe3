package partition_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/guestfs/partition"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/imagetest"
	"github.com/qimg/qimg/internal/qemutest"
)

const mbrScript = `label: dos
label-id: 0x1234abcd
,8M,83,*
,8M,82
,,5
,4M,83
,4M,7
,,b
`

const gptScript = `label: gpt
label-id: 04731C40-B339-8A46-9F14-CFB7BFD04FEC
size=8M, type=L, name=boot, attrs="LegacyBIOSBootable GUID:63"
size=8M, type=S, name="swap space"
size=4M, type=U, name=EFI, attrs=RequiredPartition
type=L, name=rooté
`

// An MBR with primaries, a bootable flag and an extended partition of
// three logical ones reads as sfdisk reads it.
func TestMBR(t *testing.T) {
	p := newDisk(t, 64<<20, mbrScript)
	tab := readFile(t, p)
	compareSfdisk(t, p, tab)
	var logical []int
	for _, q := range tab.Partitions {
		if q.Logical {
			logical = append(logical, q.Number)
		}
	}
	if !slices.Equal(logical, []int{5, 6, 7}) || !tab.Partitions[2].Extended {
		t.Errorf("logical partitions %v, extended %+v", logical, tab.Partitions[2])
	}
	want := []string{"/dev/sda1", "/dev/sda2", "/dev/sda3", "/dev/sda5", "/dev/sda6", "/dev/sda7"}
	if got := tab.Devices(); !slices.Equal(got, want) {
		t.Errorf("devices %v, want %v", got, want)
	}
	if q, _ := tab.Partition(6); q.UUID != "1234abcd-06" {
		t.Errorf("PARTUUID of sda6 %q, Linux says 1234abcd-06", q.UUID)
	}
}

// A GPT made by sfdisk, with names (one not ASCII) and attributes.
func TestGPTBySfdisk(t *testing.T) {
	p := newDisk(t, 64<<20, gptScript)
	tab := readFile(t, p)
	compareSfdisk(t, p, tab)
	if tab.UsedBackup || tab.PrimaryErr != nil || tab.BackupErr != nil {
		t.Errorf("a whole GPT: backup %v, %v, %v", tab.UsedBackup, tab.PrimaryErr, tab.BackupErr)
	}
}

// A GPT made by sgdisk, then renamed and retyped by it, reads as both
// sfdisk and sgdisk -i read it.
func TestGPTBySgdisk(t *testing.T) {
	p := newDisk(t, 32<<20, "")
	qemutest.Run(t, "sgdisk", "-o", "-n", "1:2048:+4M", "-t", "1:ef00", "-c", "1:EFI System",
		"-n", "2:0:+8M", "-t", "2:8300", "-c", "2:root", "-n", "4:0:0", "-t", "4:8200", "-A", "4:set:2", p)
	qemutest.Run(t, "sgdisk", "-c", "2:Ωmega root", "-t", "2:8e00", "-t", "4:a504", "-A", "4:set:60", p)
	tab := readFile(t, p)
	compareSfdisk(t, p, tab)
	for _, q := range tab.Partitions {
		compareSgdisk(t, p, q)
	}
	if q, _ := tab.Partition(2); q.Name != "Ωmega root" || q.Type != "E6D6D379-F507-44C2-A23C-238F2A3DF928" {
		t.Errorf("renamed and retyped partition 2: %+v", q)
	}
}

// compareSgdisk compares one partition with sgdisk -i.
func compareSgdisk(t *testing.T, p string, q partition.Partition) {
	t.Helper()
	out := qemutest.Run(t, "sgdisk", "-i", strconv.Itoa(q.Number), p)
	field := func(re string) string {
		m := regexp.MustCompile(re).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("sgdisk -i %d: no %s in\n%s", q.Number, re, out)
		}
		return m[1]
	}
	first, _ := strconv.ParseInt(field(`First sector: (\d+)`), 10, 64)
	size, _ := strconv.ParseInt(field(`Partition size: (\d+) sectors`), 10, 64)
	attr, _ := strconv.ParseUint(field(`Attribute flags: ([0-9a-fA-F]+)`), 16, 64)
	if q.Type != field(`Partition GUID code: (\S+)`) || q.UUID != field(`Partition unique GUID: (\S+)`) ||
		q.Start != first*512 || q.Size != size*512 || q.Attributes != attr || q.Name != field(`Partition name: '(.*)'`) {
		t.Errorf("partition %d: read %+v\nsgdisk:\n%s", q.Number, q, out)
	}
}

// gptDisk makes a GPT disk and returns its path and table.
func gptDisk(t *testing.T) (string, *partition.Table) {
	p := newDisk(t, 16<<20, "label: gpt\nsize=4M, name=a\nsize=4M, name=b\n")
	return p, readFile(t, p)
}

// corrupted copies a disk and overwrites 4 bytes at each offset.
func corrupted(t *testing.T, p string, offs ...int64) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range offs {
		copy(data[off:], "XXXX")
	}
	q := filepath.Join(t.TempDir(), "damaged.raw")
	if err := os.WriteFile(q, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return q
}

// A damaged primary GPT, header or entries, gives way to the backup, and
// the table says so, as sgdisk -v does.
func TestGPTBackup(t *testing.T) {
	p, whole := gptDisk(t)
	for _, c := range []struct {
		what  string
		off   int64
		sgdik string
	}{
		{"header", 512 + 20, "Main header: ERROR"},
		{"entry array", 1024 + 56, "Main partition table: ERROR"},
	} {
		q := corrupted(t, p, c.off)
		tab := readFile(t, q)
		if !tab.UsedBackup || !errors.Is(tab.PrimaryErr, image.ErrCorrupt) ||
			!slices.Equal(tab.Partitions, whole.Partitions) || tab.DiskGUID != whole.DiskGUID {
			t.Errorf("damaged primary %s: backup %v (%v), %+v", c.what, tab.UsedBackup, tab.PrimaryErr, tab.Partitions)
		}
		out, _, stderr := qemutest.RunCode(t, "sgdisk", "-v", q)
		out += stderr
		if !strings.Contains(out, c.sgdik) || !strings.Contains(out, "Backup header: OK") {
			t.Errorf("sgdisk -v does not see the damaged %s:\n%s", c.what, out)
		}
		t.Logf("%s: %v", c.what, tab.PrimaryErr)
	}
	// A disk grown after partitioning has no backup at its end: the
	// primary is used, as sfdisk does, and the missing backup reported.
	grown := corrupted(t, p)
	if err := os.Truncate(grown, 20<<20); err != nil {
		t.Fatal(err)
	}
	if tab := readFile(t, grown); tab.UsedBackup || !errors.Is(tab.BackupErr, image.ErrCorrupt) {
		t.Errorf("grown disk: used %v, %v", tab.UsedBackup, tab.BackupErr)
	} else {
		compareSfdisk(t, grown, tab)
		t.Logf("grown: %v", tab.BackupErr)
	}
	// A damaged backup alone is reported and the primary used.
	q := corrupted(t, p, 16<<20-512+20)
	if tab := readFile(t, q); tab.UsedBackup || !errors.Is(tab.BackupErr, image.ErrCorrupt) {
		t.Errorf("damaged backup: used %v, %v", tab.UsedBackup, tab.BackupErr)
	}
}

// With both GPT headers damaged the table is corrupt, and the error
// names the image.
func TestGPTBothDamaged(t *testing.T) {
	p, _ := gptDisk(t)
	q := corrupted(t, p, 512+20, 16<<20-512+20)
	img, _, err := format.Open(q, format.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	_, err = partition.Read(img, q)
	if !errors.Is(err, image.ErrCorrupt) {
		t.Fatalf("both headers damaged: %v", err)
	}
	imagetest.CheckError(t, "Read", q, err)
	t.Log(err)
}

// Any image will do: a qcow2 converted from the MBR disk reads the same,
// and a partition opened through it reads the bytes written there.
func TestQcow2(t *testing.T) {
	p := newDisk(t, 64<<20, mbrScript)
	tab := readFile(t, p)
	q6, _ := tab.Partition(6)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("inside sda6"), q6.Start); err != nil {
		t.Fatal(err)
	}
	f.Close()
	qc := filepath.Join(t.TempDir(), "disk.qcow2")
	qemutest.Img(t, "convert", "-f", "raw", "-O", "qcow2", p, qc)
	img, name, err := format.Open(qc, format.OpenOptions{})
	if err != nil || name != format.QCOW2 {
		t.Fatalf("%s %v", name, err)
	}
	defer img.Close()
	got, err := partition.Read(img, qc)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Partitions, tab.Partitions) {
		t.Fatalf("qcow2 %+v\nraw %+v", got.Partitions, tab.Partitions)
	}
	sec, err := q6.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 11)
	if _, err := sec.ReadAt(buf, 0); err != nil || string(buf) != "inside sda6" || sec.Size() != q6.Size {
		t.Fatalf("sda6 reads %q (%v), %d bytes", buf, err, sec.Size())
	}
}

// A disk without a table, zeros or a file system's boot sector, is one
// device, /dev/sda, as libguestfs shows it.
func TestNoTable(t *testing.T) {
	fat := make([]byte, 4096)
	copy(fat, "\xeb\x3c\x90mkfs.fat")
	fat[510], fat[511] = 0x55, 0xaa
	fat[446] = 0x29 // a volume ID where a status byte would be
	for name, disk := range map[string][]byte{"zeros": make([]byte, 4096), "fat": fat, "tiny": {1, 2, 3}} {
		tab, err := partition.Read(memImage(disk), name)
		if err != nil || tab.Scheme != partition.SchemeNone || !slices.Equal(tab.Devices(), []string{"/dev/sda"}) {
			t.Errorf("%s: %+v %v", name, tab, err)
		}
	}
}

func TestDeviceName(t *testing.T) {
	for n, want := range map[int]string{0: "/dev/sda", 1: "/dev/sda1", 5: "/dev/sda5", 12: "/dev/sda12"} {
		if got := partition.DeviceName(n); got != want {
			t.Errorf("DeviceName(%d) = %s", n, got)
		}
	}
}
