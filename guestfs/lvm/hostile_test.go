package lvm_test

// Hostile and unusual input, without the lvm2 tools: the example PV
// patched, and metadata texts written by hand where the tools cannot
// make the real thing here (RAID, thin and snapshot LVs need the device
// mapper to be created).

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/qimg/qimg/guestfs/lvm"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/imagetest"
)

func examplePV(t *testing.T) []byte {
	t.Helper()
	f, err := os.Open("testdata/pv.img.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lvmCRC is LVM's calc_crc, computed independently of the package.
func lvmCRC(b []byte) uint32 {
	crc := uint32(0xf597a6cf)
	for _, c := range b {
		crc ^= uint32(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xedb88320
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

var le = binary.LittleEndian

// The example PV's layout: label in sector 1, metadata area at 4096.
const (
	labelOff = 512
	mdaOff   = 4096
)

func fixLabel(b []byte) {
	le.PutUint32(b[labelOff+16:], lvmCRC(b[labelOff+20:labelOff+512]))
}

func fixMDA(b []byte) { le.PutUint32(b[mdaOff:], lvmCRC(b[mdaOff+4:mdaOff+512])) }

func TestHostilePV(t *testing.T) {
	if lvmCRC([]byte("123456789")) != ^crc32.Update(^uint32(0xf597a6cf), crc32.IEEETable, []byte("123456789")) {
		t.Fatal("the test's CRC disagrees with the table one")
	}
	base := examplePV(t)
	mdaSize := int(le.Uint64(base[mdaOff+32:]))
	textOff, textSize := int(le.Uint64(base[mdaOff+40:])), int(le.Uint64(base[mdaOff+48:]))
	for _, c := range []struct {
		name  string
		patch func(b []byte) []byte
		class error
		text  string
	}{
		{"no label", func(b []byte) []byte { copy(b[labelOff:], "LABELTWO"); return b }, image.ErrWrongFormat, "no LVM2 label"},
		{"label claims sector 2", func(b []byte) []byte { b[labelOff+8] = 2; fixLabel(b); return b }, image.ErrWrongFormat, "no LVM2 label"},
		{"label checksum", func(b []byte) []byte { b[labelOff+100] ^= 1; return b }, image.ErrCorrupt, "checksum"},
		{"label type", func(b []byte) []byte { copy(b[labelOff+24:], "LVM3 001"); fixLabel(b); return b }, image.ErrUnsupported, "LVM3"},
		{"header offset", func(b []byte) []byte { le.PutUint32(b[labelOff+20:], 500); fixLabel(b); return b }, image.ErrCorrupt, "PV header at offset"},
		{"bad UUID", func(b []byte) []byte { b[labelOff+32] = '-'; fixLabel(b); return b }, image.ErrCorrupt, "UUID"},
		{"endless area list", func(b []byte) []byte {
			for o := labelOff + 72; o < labelOff+512; o += 8 {
				le.PutUint64(b[o:], 4096)
			}
			fixLabel(b)
			return b
		}, image.ErrCorrupt, "area"},
		{"area overflow", func(b []byte) []byte { le.PutUint64(b[labelOff+104:], 1<<63-1); fixLabel(b); return b }, image.ErrCorrupt, "area at"},
		{"mda past the end", func(b []byte) []byte { le.PutUint64(b[labelOff+104:], 1<<40); fixLabel(b); return b }, image.ErrCorrupt, "past the end"},
		{"mda checksum", func(b []byte) []byte { b[mdaOff+100] = 1; return b }, image.ErrCorrupt, "header checksum"},
		{"mda magic", func(b []byte) []byte { b[mdaOff+5] = 'X'; fixMDA(b); return b }, image.ErrCorrupt, "magic"},
		{"mda version", func(b []byte) []byte { b[mdaOff+20] = 2; fixMDA(b); return b }, image.ErrUnsupported, "version"},
		{"mda start", func(b []byte) []byte { b[mdaOff+24] = 1; fixMDA(b); return b }, image.ErrCorrupt, "says it is at"},
		{"text too large", func(b []byte) []byte { le.PutUint64(b[mdaOff+48:], 5<<20); fixMDA(b); return b }, image.ErrLimit, "metadata text of"},
		{"text outside", func(b []byte) []byte { le.PutUint64(b[mdaOff+40:], uint64(mdaSize)); fixMDA(b); return b }, image.ErrCorrupt, "outside the area"},
		{"text checksum", func(b []byte) []byte { b[mdaOff+textOff+10] ^= 1; return b }, image.ErrCorrupt, "text checksum"},
		{"text garbage", func(b []byte) []byte {
			text := b[mdaOff+textOff : mdaOff+textOff+textSize]
			copy(text, "vg { id = }")
			le.PutUint32(b[mdaOff+56:], lvmCRC(text))
			fixMDA(b)
			return b
		}, image.ErrCorrupt, "line 1: expected a value"},
		{"segment past the PV", func(b []byte) []byte { return b[:50000] }, image.ErrCorrupt, "past the end of PV"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := c.patch(bytes.Clone(base))
			img := newMem(b, int64(len(b)))
			vgs, err := lvm.Scan(lvm.Device{Name: "pv.img", Image: img})
			if err == nil && c.class == image.ErrWrongFormat && len(vgs) == 0 {
				_, err = lvm.ReadPVHeader(img, "pv.img") // Scan skips non-PVs
			}
			if err == nil && len(vgs) == 1 {
				_, err = vgs[0].Open(vgs[0].LV("root"))
			}
			if !errors.Is(err, c.class) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("got %v, want %v mentioning %q", err, c.class, c.text)
			}
			imagetest.CheckError(t, c.name, "pv.img", err)
		})
	}
}

// A text that runs past the end of the metadata area continues right
// after the area's header: move the example's text so that it wraps.
func TestWrappedText(t *testing.T) {
	b := examplePV(t)
	mdaSize := int(le.Uint64(b[mdaOff+32:]))
	textOff, textSize := int(le.Uint64(b[mdaOff+40:])), int(le.Uint64(b[mdaOff+48:]))
	text := bytes.Clone(b[mdaOff+textOff : mdaOff+textOff+textSize])
	area := b[mdaOff+512 : mdaOff+mdaSize]
	clear(area)
	start := mdaSize - 1000 // the first 1000 bytes at the end, the rest after the header
	copy(b[mdaOff+start:mdaOff+mdaSize], text)
	copy(b[mdaOff+512:], text[1000:])
	le.PutUint64(b[mdaOff+40:], uint64(start))
	fixMDA(b)
	vgs, err := lvm.Scan(lvm.Device{Name: "pv.img", Image: newMem(b, int64(len(b)))})
	if err != nil {
		t.Fatal(err)
	}
	if vgs[0].Name != "qimgexample" || len(vgs[0].LVs) != 2 {
		t.Fatalf("wrapped text read as %+v", vgs[0])
	}
}

func TestParseMetadata(t *testing.T) {
	s, err := lvm.ParseMetadata([]byte(`# comment
a = "q\"uo\\te" # trailing comment
n = -12
f = 1.5
arr = [ "x", 2, ]
empty = []
1 { b = "multi
line" }
`), "t")
	if err != nil {
		t.Fatal(err)
	}
	v := s.Values
	if v["a"].Str != `q"uo\te` || v["n"].Int != -12 || v["f"].Float != 1.5 || len(v["arr"].Array) != 2 ||
		v["arr"].Array[1].Int != 2 || v["empty"].Kind != lvm.Array || len(v["empty"].Array) != 0 ||
		s.Section("1") == nil || s.Section("1").Values["b"].Str != "multi\nline" {
		t.Fatalf("parsed %+v", s)
	}
	deep := strings.Repeat("a {", 40) + strings.Repeat("}", 40)
	many := strings.Repeat("[1,", 1) + strings.Repeat("1,", 300000) + "1]"
	for _, c := range []struct {
		text  string
		class error
		msg   string
	}{
		{`a = "open`, image.ErrCorrupt, "never closed"},
		{`a = 1 a = 2`, image.ErrCorrupt, "set twice"},
		{`s { } s { }`, image.ErrCorrupt, "given twice"},
		{`a { b = 1`, image.ErrCorrupt, "not closed"},
		{`a = [1 2]`, image.ErrCorrupt, "expected ','"},
		{`a = [[1]]`, image.ErrCorrupt, "expected a value"},
		{"a = 1\n}", image.ErrCorrupt, "line 2: unexpected '}'"},
		{"a = \x00", image.ErrCorrupt, "byte 0x"},
		{`a = 99999999999999999999999`, errNone, ""}, // a float, as LVM's strtod would read it
		{deep, image.ErrLimit, "nested"},
		{"a = " + many, image.ErrLimit, "values"},
		{"a = \"" + strings.Repeat("x", lvm.MaxMetadataSize) + "\"", image.ErrLimit, "bytes, more than"},
	} {
		_, err := lvm.ParseMetadata([]byte(c.text), "meta.txt")
		if c.class == errNone {
			if err != nil {
				t.Errorf("%.40q: %v", c.text, err)
			}
			continue
		}
		if !errors.Is(err, c.class) || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "meta.txt") {
			t.Errorf("%.40q: %v, want %v mentioning %q", c.text, err, c.class, c.msg)
		}
	}
}

var errNone = errors.New("no error expected")

// vgText is a VG of two PVs; %SEG% is replaced by an LV's segments.
const vgText = `vg {
id = "ZVo8Kq-Ap5B-kpRD-xvqB-2HFL-Wb3S-2Q3dKc"
seqno = 3
extent_size = 8
physical_volumes {
pv0 { id = "bKpV5x-0z3A-5Qke-b1Xw-UjK2-4Q0n-vO6Hjs" pe_start = 2048 pe_count = 10 }
pv1 { id = "cKpV5x-0z3A-5Qke-b1Xw-UjK2-4Q0n-vO6Hjs" pe_start = 2048 pe_count = 10 }
}
logical_volumes {
lv { id = "1cRmqf-aNbT-3ZMa-QkJx-sUUx-xlUP-MkRcPa" status = ["VISIBLE"]
%SEG%
}
%MORE%
}
}
`

func seg(n, start, count int, body string) string {
	return "segment" + itoa(n) + " { start_extent = " + itoa(start) + " extent_count = " + itoa(count) + " " + body + " }\n"
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestParseVGHostile(t *testing.T) {
	linear := func(pv string, pe int) string {
		return `type = "striped" stripe_count = 1 stripes = ["` + pv + `", ` + itoa(pe) + `]`
	}
	for _, c := range []struct {
		name, segs, more string
		class            error // of ParseVG, or of Open if ParseVG succeeds
		msg              string
	}{
		{"linear", seg(1, 0, 2, linear("pv0", 1)), "", errNone, ""},
		{"two PVs", seg(1, 0, 2, linear("pv0", 1)) + seg(2, 2, 3, linear("pv1", 0)), "", errNone, ""},
		{"gap", seg(1, 0, 2, linear("pv0", 1)) + seg(2, 3, 1, linear("pv1", 0)), "", image.ErrCorrupt, "starts at extent 3, not 2"},
		{"overlap", seg(1, 0, 2, linear("pv0", 1)) + seg(2, 1, 1, linear("pv1", 0)), "", image.ErrCorrupt, "starts at extent 1"},
		{"not from 0", seg(1, 1, 2, linear("pv0", 1)), "", image.ErrCorrupt, "starts at extent 1, not 0"},
		{"past pe_count", seg(1, 0, 2, linear("pv0", 9)), "", image.ErrCorrupt, "outside its 10 extents"},
		{"unknown PV", seg(1, 0, 2, linear("pv7", 0)), "", image.ErrCorrupt, "not a PV"},
		{"no extents", seg(1, 0, 0, linear("pv0", 0)), "", image.ErrCorrupt, "extent_count is 0"},
		{"negative", seg(1, 0, 2, linear("pv0", 0)) + seg(2, 2, 1, `type = "striped" stripe_count = 1 stripes = ["pv0", -5]`), "", image.ErrCorrupt, "outside"},
		{"bad stripes", seg(1, 0, 2, `type = "striped" stripe_count = 2 stripes = ["pv0", 0]`), "", image.ErrCorrupt, "pairs"},
		{"uneven stripes", seg(1, 0, 3, `type = "striped" stripe_count = 2 stripes = ["pv0", 0, "pv1", 0]`), "", image.ErrCorrupt, "do not split"},
		{"striped", seg(1, 0, 4, `type = "striped" stripe_count = 2 stripes = ["pv0", 0, "pv1", 0]`), "", image.ErrUnsupported, "striped over 2 PVs"},
		{"raid1", seg(1, 0, 2, `type = "raid1" device_count = 2 raids = ["lv_rmeta_0", "lv_rimage_0"]`), "", image.ErrUnsupported, "type raid1"},
		{"thin", seg(1, 0, 2, `type = "thin" thin_pool = "pool" device_id = 1`), "", image.ErrUnsupported, "type thin"},
		{"mirror", seg(1, 0, 2, `type = "mirror" mirror_count = 2`), "", image.ErrUnsupported, "type mirror"},
		{"cache", seg(1, 0, 2, `type = "cache" cache_pool = "c"`), "", image.ErrUnsupported, "type cache"},
		{"snapshot COW store", seg(1, 0, 2, linear("pv0", 0)),
			`snapshot0 { id = "2cRmqf-aNbT-3ZMa-QkJx-sUUx-xlUP-MkRcPa" segment1 { start_extent = 0 extent_count = 4 type = "snapshot" chunk_size = 8 origin = "origin" cow_store = "lv" } }`,
			image.ErrUnsupported, "copy-on-write store of a snapshot of origin"},
		{"segment_count", seg(1, 0, 2, linear("pv0", 1)) + " segment_count = 2", "", image.ErrCorrupt, "segment_count"},
		{"no id", seg(1, 0, 2, linear("pv0", 1)), `x { segment1 { start_extent = 0 extent_count = 1 type = "zero" } }`, image.ErrCorrupt, "id is missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			text := strings.NewReplacer("%SEG%", c.segs, "%MORE%", c.more).Replace(vgText)
			vg, err := lvm.ParseVG([]byte(text), "meta.txt")
			if err == nil {
				for _, pv := range vg.PVs {
					pv.Image, pv.File = newMem(nil, pv.PEStart+pv.PECount*vg.ExtentSize), "pv.img"
				}
				var img image.Image
				if img, err = vg.Open(vg.LV("lv")); err == nil && img.Size() != vg.LV("lv").Size {
					t.Fatalf("size %d, LV %d", img.Size(), vg.LV("lv").Size)
				}
			}
			if c.class == errNone {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, c.class) || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "meta.txt") {
				t.Fatalf("got %v, want %v mentioning %q", err, c.class, c.msg)
			}
		})
	}
	for _, c := range []struct{ from, to, msg string }{
		{"extent_size = 8", "extent_size = 0", "extent_size is 0"},
		{"extent_size = 8", "extent_size = 4294967296", "outside"},
		{"pe_start = 2048 pe_count = 10 }\npv1", "pe_start = 18014398509481983 pe_count = 4294967295 }\npv1", "overflow"},
		{"seqno = 3", `seqno = "3"`, "not an integer"},
		{`cKpV5x`, `bKpV5x`, "listed twice"},
	} {
		text := strings.Replace(strings.NewReplacer("%SEG%", "", "%MORE%", "").Replace(vgText), c.from, c.to, 1)
		if _, err := lvm.ParseVG([]byte(text), "meta.txt"); !errors.Is(err, image.ErrCorrupt) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want %q", c.to, err, c.msg)
		}
	}
}

// A missing PV is named by the error of each LV on it.
func TestMissingPV(t *testing.T) {
	text := strings.NewReplacer("%SEG%", `segment1 { start_extent = 0 extent_count = 1 type = "striped" stripe_count = 1 stripes = ["pv1", 0] }`, "%MORE%", "").Replace(vgText)
	vg, err := lvm.ParseVG([]byte(text), "meta.txt")
	if err != nil {
		t.Fatal(err)
	}
	_, err = vg.Open(vg.LV("lv"))
	if err == nil || !strings.Contains(err.Error(), "cKpV5x-0z3A-5Qke-b1Xw-UjK2-4Q0n-vO6Hjs") || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("Open on a missing PV: %v", err)
	}
	if _, err := vg.Open(vg.LV("nonesuch")); !errors.Is(err, image.ErrInvalidArgument) {
		t.Fatalf("Open of an unknown LV: %v", err)
	}
	if len(vg.Missing()) != 2 {
		t.Fatalf("Missing: %v", vg.Missing())
	}
}
