package partition_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/qimg/qimg/guestfs/partition"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/imagetest"
)

func twoParts(g0 int64) []gptPart {
	return []gptPart{
		{typ: linuxFS, uuid: [16]byte{1}, first: uint64(g0), last: uint64(g0 + 7), name: "one"},
		{typ: linuxFS, uuid: [16]byte{2}, first: uint64(g0 + 8), last: uint64(g0 + 15), name: "two", attrs: 1 << 2},
	}
}

// The GPT builder the hostile tests rely on writes what sfdisk reads.
func TestBuiltGPTMatchesSfdisk(t *testing.T) {
	g := buildGPT(512, 64<<10, 128, 128, twoParts(40))
	p := filepath.Join(t.TempDir(), "built.raw")
	if err := os.WriteFile(p, g.disk, 0o644); err != nil {
		t.Fatal(err)
	}
	tab := readFile(t, p)
	compareSfdisk(t, p, tab)
	if tab.BackupErr != nil || len(tab.Partitions) != 2 {
		t.Fatalf("%+v", tab)
	}
}

// A GPT for 4096-byte sectors is found at byte 4096, and its backup at
// the last 4 KiB when the primary is damaged.
func TestGPT4K(t *testing.T) {
	g := buildGPT(4096, 1<<20, 128, 128, twoParts(8))
	check := func(what string, wantBackup bool) {
		tab, err := partition.Read(g.disk, what)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		p := tab.Partitions[1]
		if tab.SectorSize != 4096 || tab.UsedBackup != wantBackup || p.Start != 16*4096 || p.Size != 8*4096 || p.Name != "two" {
			t.Fatalf("%s: %+v", what, tab)
		}
	}
	check("4k", false)
	copy(g.disk[4096+20:], "XXXX")
	check("4k damaged primary", true)
	copy(g.disk[4096:], "XXXXXXXX") // no signature left at the front
	check("4k primary gone", true)
}

// hostile GPTs: every one is an error of the right class naming the
// image, never a panic or a huge allocation.
func TestHostileGPT(t *testing.T) {
	for _, c := range []struct {
		name   string
		class  error
		change func(g *gptLayout)
	}{
		{"huge entry count", image.ErrLimit, func(g *gptLayout) {
			g.both(func(h []byte) { le.PutUint32(h[80:], 0xffffffff) })
		}},
		{"entry size 100", image.ErrCorrupt, func(g *gptLayout) {
			g.both(func(h []byte) { le.PutUint32(h[84:], 100) })
		}},
		{"entry size 0", image.ErrCorrupt, func(g *gptLayout) {
			g.both(func(h []byte) { le.PutUint32(h[84:], 0) })
		}},
		{"header size past the sector", image.ErrCorrupt, func(g *gptLayout) {
			g.both(func(h []byte) { le.PutUint32(h[12:], 4096) })
		}},
		{"entry array in the usable sectors", image.ErrCorrupt, func(g *gptLayout) {
			g.both(func(h []byte) { le.PutUint64(h[72:], 40) })
		}},
		{"entry array past the disk", image.ErrCorrupt, func(g *gptLayout) {
			g.both(func(h []byte) { le.PutUint64(h[72:], 1<<62) })
		}},
		{"usable sectors past the disk", image.ErrCorrupt, func(g *gptLayout) {
			g.both(func(h []byte) { le.PutUint64(h[48:], 1<<63) })
		}},
		{"partition past the usable sectors", image.ErrCorrupt, func(g *gptLayout) {
			g.bothEntries(1, func(e []byte) { le.PutUint64(e[40:], uint64(g.lastUsable()+1)) })
		}},
		{"partition over the entry array", image.ErrCorrupt, func(g *gptLayout) {
			g.bothEntries(0, func(e []byte) { le.PutUint64(e[32:], 2) })
		}},
		{"partition ending before it starts", image.ErrCorrupt, func(g *gptLayout) {
			g.bothEntries(0, func(e []byte) { le.PutUint64(e[40:], 1) })
		}},
		{"huge partition", image.ErrCorrupt, func(g *gptLayout) {
			g.bothEntries(0, func(e []byte) { le.PutUint64(e[40:], 1<<64-1) })
		}},
		{"overlapping partitions", image.ErrCorrupt, func(g *gptLayout) {
			g.bothEntries(1, func(e []byte) { le.PutUint64(e[32:], 44) })
		}},
		{"header elsewhere than it says", image.ErrCorrupt, func(g *gptLayout) {
			g.both(func(h []byte) { le.PutUint64(h[24:], 7) })
		}},
	} {
		g := buildGPT(512, 64<<10, 128, 128, twoParts(40))
		c.change(g)
		expectError(t, c.name, g.disk, c.class)
	}
}

// expectError fails unless reading disk fails with class and names it.
func expectError(t *testing.T, name string, disk memImage, class error) {
	t.Helper()
	tab, err := partition.Read(disk, name)
	if !errors.Is(err, class) {
		t.Errorf("%s: %+v, %v; want %v", name, tab, err, class)
		return
	}
	imagetest.CheckError(t, name, name, err)
	t.Log(err)
}

// hostile MBRs and EBR chains.
func TestHostileMBR(t *testing.T) {
	const size = 1 << 20 // 2048 sectors
	ebrChain := func(d memImage, links int, next func(i int) uint32) {
		putMBREntry(d, 0, 0, 0x05, 100, 1900)
		for i := range links {
			lba := 100 + 10*i
			putMBREntry(d[lba*512:], 0, 0, 0x83, 1, 5)
			putMBREntry(d[lba*512:], 1, 0, 0x05, next(i), 10)
		}
	}
	for _, c := range []struct {
		name  string
		build func(d memImage)
	}{
		{"partition past the disk", func(d memImage) { putMBREntry(d, 0, 0, 0x83, 2000, 100) }},
		{"partition over the MBR", func(d memImage) { putMBREntry(d, 0, 0, 0x83, 0, 100) }},
		{"partition of 2^32 sectors", func(d memImage) { putMBREntry(d, 0, 0, 0x83, 0xffffffff, 0xffffffff) }},
		{"overlapping primaries", func(d memImage) {
			putMBREntry(d, 0, 0, 0x83, 100, 100)
			putMBREntry(d, 1, 0, 0x83, 150, 100)
		}},
		{"two extended partitions", func(d memImage) {
			putMBREntry(d, 0, 0, 0x05, 100, 100)
			putMBREntry(d, 1, 0, 0x0f, 300, 100)
			putMBREntry(d[100*512:], 0, 0, 0x83, 1, 5)
		}},
		{"EBR without signature", func(d memImage) { putMBREntry(d, 0, 0, 0x05, 100, 100) }},
		{"EBR linking to itself", func(d memImage) { ebrChain(d, 1, func(int) uint32 { return 0 }) }},
		{"EBR loop", func(d memImage) {
			ebrChain(d, 3, func(i int) uint32 { return uint32(10 * ((i + 1) % 3)) })
		}},
		{"EBR chain too long", func(d memImage) { ebrChain(d, 180, func(i int) uint32 { return uint32(10 * (i + 1)) }) }},
		{"EBR link past the extended partition", func(d memImage) { ebrChain(d, 1, func(int) uint32 { return 5000 }) }},
		{"logical partition past the extended", func(d memImage) {
			putMBREntry(d, 0, 0, 0x05, 100, 100)
			putMBREntry(d[100*512:], 0, 0, 0x83, 1, 200)
		}},
		{"logical partition over its EBR", func(d memImage) {
			putMBREntry(d, 0, 0, 0x05, 100, 100)
			putMBREntry(d[100*512:], 0, 0, 0x83, 0, 20)
		}},
		{"logical partition over the next EBR", func(d memImage) {
			ebrChain(d, 2, func(i int) uint32 { return uint32(10 * (i + 1)) })
			putMBREntry(d[110*512:], 1, 0, 0, 0, 0) // the chain ends at 110
			putMBREntry(d[100*512:], 0, 0, 0x83, 1, 15)
		}},
	} {
		d := mbrDisk(size, 0xdeadbeef)
		c.build(d)
		expectError(t, c.name, d, image.ErrCorrupt)
	}
}

// A long but finite EBR chain within the limit reads, numbered from 5.
func TestLongEBRChain(t *testing.T) {
	d := mbrDisk(1<<20, 0xdeadbeef)
	putMBREntry(d, 0, 0x80, 0x05, 100, 1900)
	const links = 100
	for i := range links {
		lba := 100 + 10*i
		putMBREntry(d[lba*512:], 0, 0, 0x83, 1, 5)
		if i < links-1 {
			putMBREntry(d[lba*512:], 1, 0, 0x05, uint32(10*(i+1)), 10)
		}
	}
	tab, err := partition.Read(d, "long")
	if err != nil {
		t.Fatal(err)
	}
	last := tab.Partitions[len(tab.Partitions)-1]
	if len(tab.Partitions) != links+1 || last.Number != 4+links || last.UUID != "deadbeef-68" || last.Start != (100+10*99+1)*512 {
		t.Fatalf("%d partitions, last %+v", len(tab.Partitions), last)
	}
}
