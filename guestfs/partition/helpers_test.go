package partition_test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/guestfs/partition"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

// memImage is a disk held in memory, for fuzzing and for tables built
// byte by byte.
type memImage []byte

func (m memImage) Size() int64  { return int64(len(m)) }
func (m memImage) Close() error { return nil }

func (m memImage) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, image.ErrInvalidArgument
	}
	if off >= int64(len(m)) {
		return 0, io.EOF
	}
	n := copy(p, m[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m memImage) Extent(start, length int64) (image.Extent, error) {
	return image.Extent{Start: start, Length: min(length, int64(len(m))-start), Data: true, Allocated: true, HostOffset: -1}, nil
}

// sparse is a disk of any size that holds head at its start, tail at its
// end and zeros between, so that a fuzzer can try huge disks cheaply.
type sparse struct {
	head, tail []byte
	size       int64
}

// maxSparse bounds fuzzed disk sizes to what an int64 offset survives.
const maxSparse = 1 << 60

func newSparse(head, tail []byte, size int64) *sparse {
	size = min(max(size, int64(len(head)+len(tail))), maxSparse)
	return &sparse{head: head, tail: tail, size: size}
}

func (s *sparse) Size() int64  { return s.size }
func (s *sparse) Close() error { return nil }

func (s *sparse) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, image.ErrInvalidArgument
	}
	if off >= s.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), s.size-off))
	clear(p[:n])
	if off < int64(len(s.head)) {
		copy(p[:n], s.head[off:])
	}
	tailStart := s.size - int64(len(s.tail))
	if end := off + int64(n); end > tailStart {
		from := max(off, tailStart)
		copy(p[from-off:n], s.tail[from-tailStart:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (s *sparse) Extent(start, length int64) (image.Extent, error) {
	return image.Extent{Start: start, Length: min(length, s.size-start), Data: true, Allocated: true, HostOffset: -1}, nil
}

// newDisk makes a sparse raw file of size bytes and writes a table into
// it with sfdisk's script.
func newDisk(t *testing.T, size int64, script string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.Truncate(createEmpty(t, p), size); err != nil {
		t.Fatal(err)
	}
	if script != "" {
		sfdisk(t, p, script)
	}
	return p
}

func createEmpty(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// sfdisk writes a table with an sfdisk script.
func sfdisk(t *testing.T, p, script string) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "script")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(script)
	f.Close()
	// sfdisk reads its script from standard input; a shell gives it one.
	qemutest.Run(t, "sh", "-c", `sfdisk -q --no-reread --no-tell-kernel "$1" < "$2"`, "sh", p, f.Name())
}

// readFile opens any image with format.Open and reads its table.
func readFile(t *testing.T, p string) *partition.Table {
	t.Helper()
	img, _, err := format.Open(p, format.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	tab, err := partition.Read(img, p)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// sfdiskTable is what sfdisk --json prints.
type sfdiskTable struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		SectorSize int64  `json:"sectorsize"`
		Partitions []struct {
			Node     string `json:"node"`
			Start    int64  `json:"start"`
			Size     int64  `json:"size"`
			Type     string `json:"type"`
			UUID     string `json:"uuid"`
			Name     string `json:"name"`
			Attrs    string `json:"attrs"`
			Bootable bool   `json:"bootable"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

// compareSfdisk fails unless tab is what sfdisk --json reads in p, field
// by field: label, disk id, and each partition's number, start, size,
// type, uuid, name, attributes and bootable flag.
func compareSfdisk(t *testing.T, p string, tab *partition.Table) {
	t.Helper()
	var want sfdiskTable
	if err := json.Unmarshal([]byte(qemutest.Run(t, "sfdisk", "--json", p)), &want); err != nil {
		t.Fatal(err)
	}
	pt := want.PartitionTable
	label := map[string]string{"dos": partition.SchemeMBR, "gpt": partition.SchemeGPT}[pt.Label]
	if tab.Scheme != label || tab.SectorSize != pt.SectorSize {
		t.Fatalf("scheme %s, sectors of %d; sfdisk: %s, %d", tab.Scheme, tab.SectorSize, pt.Label, pt.SectorSize)
	}
	if id := diskID(tab); !strings.EqualFold(id, pt.ID) {
		t.Errorf("disk id %s, sfdisk %s", id, pt.ID)
	}
	if len(tab.Partitions) != len(pt.Partitions) {
		t.Fatalf("%d partitions, sfdisk %d:\n%+v", len(tab.Partitions), len(pt.Partitions), tab.Partitions)
	}
	for i, w := range pt.Partitions {
		g := tab.Partitions[i]
		n, _ := strconv.Atoi(strings.TrimPrefix(w.Node, p))
		wantUUID := w.UUID
		if tab.Scheme == partition.SchemeMBR {
			wantUUID = fmt.Sprintf("%s-%02x", strings.TrimPrefix(pt.ID, "0x"), n)
		}
		ss := pt.SectorSize
		if g.Number != n || g.Start != w.Start*ss || g.Size != w.Size*ss || g.Type != w.Type ||
			g.UUID != wantUUID || g.Name != w.Name || g.Bootable != w.Bootable || g.Attributes != attrs(t, w.Attrs) {
			t.Errorf("partition %d: read %+v\nsfdisk %+v", i, g, w)
		}
	}
}

// diskID spells the table's identifier as sfdisk does.
func diskID(tab *partition.Table) string {
	if tab.Scheme == partition.SchemeGPT {
		return tab.DiskGUID
	}
	return fmt.Sprintf("0x%08x", tab.DiskSignature)
}

// attrs turns sfdisk's GPT attribute words into bits.
func attrs(t *testing.T, s string) uint64 {
	var bits uint64
	for w := range strings.FieldsSeq(s) {
		switch {
		case w == "RequiredPartition":
			bits |= 1 << 0
		case w == "NoBlockIOProtocol":
			bits |= 1 << 1
		case w == "LegacyBIOSBootable":
			bits |= 1 << 2
		case strings.HasPrefix(w, "GUID:"):
			for b := range strings.SplitSeq(strings.TrimPrefix(w, "GUID:"), ",") {
				n, err := strconv.Atoi(b)
				if err != nil {
					t.Fatalf("sfdisk attribute %q", w)
				}
				bits |= 1 << n
			}
		default:
			t.Fatalf("sfdisk attribute %q", w)
		}
	}
	return bits
}
