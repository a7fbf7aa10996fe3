package lvm_test

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/format/raw"
	"github.com/qimg/qimg/guestfs/lvm"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

// A VG on two PVs made by lvm2: a linear LV, one grown by lvextend into
// two segments around another LV, one spanning both PVs, a name with a
// dash and a striped LV. What Scan and ParseVG find must be what vgs,
// pvs and lvs report, the LVs must read back the bytes written at the
// tools' offsets, through raw files and through a qcow2 conversion, and a
// missing PV must fail only the LVs on it.
func TestAgainstLVM(t *testing.T) {
	e := newLVM(t, 64<<20, 32<<20)
	a, b := e.loops[0], e.loops[1]
	vg := e.vg
	e.lvm("pvcreate", a, b)
	e.lvm("vgcreate", vg, a, b)
	lvc := func(args ...string) { e.lvm("lvcreate", append([]string{"-an", "-Zn"}, args...)...) }
	lvc("-L", "8M", "-n", "root", vg, a)
	lvc("-L", "4M", "-n", "swap", vg, a)
	e.lvm("lvextend", "-L", "+4M", vg+"/root", a)
	lvc("-L", "8M", "-n", "my-data", vg, a)
	lvc("-L", "12M", "-n", "span", vg, a)
	e.lvm("lvextend", "-L", "+8M", vg+"/span", b)
	lvc("-i", "2", "-L", "8M", "-n", "striped", vg, a, b)

	vgRows := e.report("vgs", "vg_name,vg_uuid,vg_extent_size,vg_seqno,pv_count,lv_count", vg)
	pvRows := e.report("pvs", "pv_name,pv_uuid,dev_size,pe_start,pv_pe_count,vg_name")
	lvRows := e.report("lvs", "lv_name,lv_uuid,lv_size,seg_start,seg_size,segtype,stripes,seg_pe_ranges", "-a", vg)
	e.close()

	extentSize := atoi(t, vgRows[0]["vg_extent_size"])
	want := e.fillLVs(lvRows, pvRows, extentSize)

	// Both PVs, as raw files.
	imgs := make([]image.Image, 2)
	for i, f := range e.files {
		img, err := raw.Open(f, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer img.Close()
		imgs[i] = img
	}
	vgs, err := lvm.Scan(lvm.Device{Name: e.files[0], Image: imgs[0]}, lvm.Device{Name: e.files[1], Image: imgs[1]})
	if err != nil {
		t.Fatal(err)
	}
	if len(vgs) != 1 {
		t.Fatalf("Scan found %d VGs", len(vgs))
	}
	g := vgs[0]
	compareVG(t, g, e, vgRows, pvRows, lvRows)

	for _, h := range []struct {
		i    int
		file string
	}{{0, e.files[0]}, {1, e.files[1]}} {
		ph, err := lvm.ReadPVHeader(imgs[h.i], h.file)
		if err != nil {
			t.Fatal(err)
		}
		row := pvRows[slices.IndexFunc(pvRows, func(r map[string]string) bool { return r["pv_name"] == e.loops[h.i] })]
		if ph.UUID != row["pv_uuid"] || ph.DeviceSize != atoi(t, row["dev_size"]) || ph.Sector != 1 ||
			len(ph.DataAreas) != 1 || ph.DataAreas[0].Offset != atoi(t, row["pe_start"]) || len(ph.MetadataAreas) != 1 {
			t.Errorf("PV header of %s: %+v, pvs says %v", h.file, ph, row)
		}
	}

	readLVs(t, g, want, "raw")
	s, err := g.Open(g.LV("striped"))
	if !errors.Is(err, image.ErrUnsupported) || !strings.Contains(err.Error(), "striped over 2 PVs") {
		t.Errorf("Open of a striped LV: %v, %v", s, err)
	}

	// The first PV converted to qcow2, read through format.Open.
	q := filepath.Join(t.TempDir(), "pv0.qcow2")
	qemutest.Img(t, "convert", "-f", "raw", "-O", "qcow2", e.files[0], q)
	qimg, _, err := format.Open(q, format.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer qimg.Close()
	vgs, err = lvm.Scan(lvm.Device{Name: q, Image: qimg}, lvm.Device{Name: e.files[1], Image: imgs[1]})
	if err != nil {
		t.Fatal(err)
	}
	readLVs(t, vgs[0], want, "qcow2")

	// The first PV alone: the second is missing, and only the LVs on it
	// (span and striped) fail.
	vgs, err = lvm.Scan(lvm.Device{Name: q, Image: qimg})
	if err != nil {
		t.Fatal(err)
	}
	g = vgs[0]
	pv1 := pvRows[slices.IndexFunc(pvRows, func(r map[string]string) bool { return r["pv_name"] == b })]
	if m := g.Missing(); len(m) != 1 || m[0].UUID != pv1["pv_uuid"] {
		t.Fatalf("Missing = %v, want %s", m, pv1["pv_uuid"])
	}
	if _, err := g.Open(g.LV("span")); err == nil || !strings.Contains(err.Error(), pv1["pv_uuid"]) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Open of an LV on a missing PV: %v", err)
	}
	delete(want, "span")
	readLVs(t, g, want, "qcow2, one PV")

	// Writes through an LV over two PVs land on both, at the places
	// lvs reports: write across the boundary, then read the raw files
	// through a fresh scan.
	var devs []lvm.Device
	for _, f := range e.files {
		img, err := raw.Open(f, &raw.OpenOptions{Writable: true})
		if err != nil {
			t.Fatal(err)
		}
		defer img.Close()
		devs = append(devs, lvm.Device{Name: f, Image: img})
	}
	vgs, err = lvm.Scan(devs...)
	if err != nil {
		t.Fatal(err)
	}
	span, err := vgs[0].Open(vgs[0].LV("span"))
	if err != nil {
		t.Fatal(err)
	}
	w, ok := span.(image.WritableImage)
	if !ok {
		t.Fatalf("span over writable PVs is a %T, not writable", span)
	}
	boundary := 12 << 20 // span's first segment is 12 MiB
	if sg := vgs[0].LV("span").Segments; len(sg) != 2 || sg[0].ExtentCount*vgs[0].ExtentSize != int64(boundary) || sg[0].Stripes[0].PV == sg[1].Stripes[0].PV {
		t.Fatalf("span's segments: %+v", sg)
	}
	msg := bytes.Repeat([]byte("written across PVs "), 100)
	if _, err := w.WriteAt(msg, int64(boundary-len(msg)/2)); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteZeroes(int64(boundary-512), 1024); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	expect := bytes.Clone(msg)
	clear(expect[len(msg)/2-512 : len(msg)/2+512])
	g2, err := lvm.Scan(lvm.Device{Name: e.files[0], Image: imgs[0]}, lvm.Device{Name: e.files[1], Image: imgs[1]})
	if err != nil {
		t.Fatal(err)
	}
	r, err := g2[0].Open(g2[0].LV("span"))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := r.ReadAt(got, int64(boundary-len(msg)/2)); err != nil || !bytes.Equal(got, expect) {
		t.Fatalf("read back across PVs: %v\n%q", err, got)
	}
	if _, err := w.WriteAt([]byte("x"), span.Size()); !errors.Is(err, image.ErrInvalidArgument) {
		t.Fatalf("write past the end of an LV: %v", err)
	}
}

// readLVs opens each LV of want and compares its bytes, and reads across
// segment boundaries in small pieces.
func readLVs(t *testing.T, g *lvm.VG, want map[string][]byte, how string) {
	t.Helper()
	for name, w := range want {
		lv := g.LV(name)
		if lv == nil {
			t.Fatalf("%s: no LV %s", how, name)
		}
		img, err := g.Open(lv)
		if err != nil {
			t.Fatalf("%s: Open %s: %v", how, name, err)
		}
		if img.Size() != int64(len(w)) {
			t.Fatalf("%s: %s is %d bytes, want %d", how, name, img.Size(), len(w))
		}
		if got := readAll(t, img); !bytes.Equal(got, w) {
			i := 0
			for i < len(w) && got[i] == w[i] {
				i++
			}
			t.Fatalf("%s: %s differs at byte %d: %q", how, name, i, got[i:min(i+40, len(got))])
		}
		for _, seg := range lv.Segments[1:] {
			off := seg.StartExtent*g.ExtentSize - 100
			buf := make([]byte, 200)
			if _, err := img.ReadAt(buf, off); err != nil || !bytes.Equal(buf, w[off:off+200]) {
				t.Fatalf("%s: %s across segments at %d: %v", how, name, off, err)
			}
		}
		for e, err := range image.Extents(img, 0, img.Size()) {
			if err != nil {
				t.Fatalf("%s: extents of %s: %v", how, name, err)
			}
			if !e.Data && !bytes.Equal(w[e.Start:e.End()], make([]byte, e.Length)) {
				t.Fatalf("%s: %s extent %+v is a hole but holds data", how, name, e)
			}
		}
		if _, err := img.ReadAt(make([]byte, 1), img.Size()); err == nil {
			t.Fatalf("%s: read past the end of %s succeeded", how, name)
		}
		img.Close()
	}
}

// compareVG checks a scanned VG against the tools' reports.
func compareVG(t *testing.T, g *lvm.VG, e *lvmEnv, vgRows, pvRows, lvRows []map[string]string) {
	t.Helper()
	v := vgRows[0]
	if g.Name != v["vg_name"] || g.UUID != v["vg_uuid"] || g.ExtentSize != atoi(t, v["vg_extent_size"]) ||
		g.Seqno != atoi(t, v["vg_seqno"]) || int64(len(g.PVs)) != atoi(t, v["pv_count"]) {
		t.Errorf("VG %s %s extent %d seqno %d, %d PVs; vgs says %v", g.Name, g.UUID, g.ExtentSize, g.Seqno, len(g.PVs), v)
	}
	visible := 0
	for _, lv := range g.LVs {
		if lv.Visible {
			visible++
		}
	}
	if int64(visible) != atoi(t, v["lv_count"]) {
		t.Errorf("%d visible LVs, vgs says %s", visible, v["lv_count"])
	}
	for i, r := range pvRows {
		pv := g.PVs[slices.IndexFunc(g.PVs, func(p *lvm.PV) bool { return p.UUID == r["pv_uuid"] })]
		if pv.Device != r["pv_name"] || pv.DevSize != atoi(t, r["dev_size"]) || pv.PEStart != atoi(t, r["pe_start"]) ||
			pv.PECount != atoi(t, r["pv_pe_count"]) || pv.File != e.files[slices.Index(e.loops, r["pv_name"])] {
			t.Errorf("PV %d: %+v; pvs says %v", i, pv, r)
		}
	}
	var segs []string
	for _, lv := range g.LVs {
		for _, s := range lv.Segments {
			typ := s.Type
			if typ == "striped" && s.StripeCount == 1 {
				typ = "linear" // as lvs names it
			}
			var ranges []string
			for _, st := range s.Stripes {
				per := s.ExtentCount / s.StripeCount
				ranges = append(ranges, fmt.Sprintf("%s:%d-%d", g.PV(st.PV).Device, st.StartExtent, st.StartExtent+per-1))
			}
			segs = append(segs, fmt.Sprintf("%s %s %d %d %d %s %d %s", lv.Name, lv.UUID, lv.Size,
				s.StartExtent*g.ExtentSize, s.ExtentCount*g.ExtentSize, typ, s.StripeCount, strings.Join(ranges, " ")))
		}
	}
	var want []string
	for _, r := range lvRows {
		want = append(want, fmt.Sprintf("%s %s %s %s %s %s %s %s", r["lv_name"], r["lv_uuid"], r["lv_size"],
			r["seg_start"], r["seg_size"], r["segtype"], r["stripes"], r["seg_pe_ranges"]))
	}
	slices.Sort(segs)
	slices.Sort(want)
	if !slices.Equal(segs, want) {
		t.Errorf("segments:\n%s\nlvs says:\n%s", strings.Join(segs, "\n"), strings.Join(want, "\n"))
	}
}

// LVM keeps its metadata in a circular buffer: with the smallest
// metadata area lvm2 allows, a few dozen updates make the newest text
// run past the area's end and continue after the header. Scan must read
// it as lvs does.
func TestWrappedMetadata(t *testing.T) {
	e := newLVM(t, 8<<20)
	vg := e.vg
	e.lvm("pvcreate", "--metadatasize", "32k", "--dataalignment", "4k", e.loops[0])
	e.lvm("vgcreate", "-s", "64k", vg, e.loops[0])
	wrapped := func() bool {
		img, err := raw.Open(e.files[0], nil)
		if err != nil {
			t.Fatal(err)
		}
		defer img.Close()
		h, err := lvm.ReadPVHeader(img, e.files[0])
		if err != nil {
			t.Fatal(err)
		}
		mda := h.MetadataAreas[0]
		hdr := make([]byte, 64)
		if _, err := img.ReadAt(hdr, mda.Offset); err != nil {
			t.Fatal(err)
		}
		off, size := le64(hdr[40:]), le64(hdr[48:])
		return off+size > mda.Size
	}
	n := 0
	for ; n < 60 && !wrapped(); n++ {
		e.lvm("lvcreate", "-an", "-Zn", "-L", "64k", "-n", fmt.Sprintf("lv%d", n), vg)
	}
	if !wrapped() {
		t.Fatalf("metadata did not wrap after %d updates", n)
	}
	vgRows := e.report("vgs", "vg_name,vg_uuid,vg_extent_size,vg_seqno,pv_count,lv_count", vg)
	pvRows := e.report("pvs", "pv_name,pv_uuid,dev_size,pe_start,pv_pe_count,vg_name")
	lvRows := e.report("lvs", "lv_name,lv_uuid,lv_size,seg_start,seg_size,segtype,stripes,seg_pe_ranges", "-a", vg)
	e.close()
	want := e.fillLVs(lvRows, pvRows, atoi(t, vgRows[0]["vg_extent_size"]))
	img, err := raw.Open(e.files[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	vgs, err := lvm.Scan(lvm.Device{Name: e.files[0], Image: img})
	if err != nil {
		t.Fatal(err)
	}
	compareVG(t, vgs[0], e, vgRows, pvRows, lvRows)
	readLVs(t, vgs[0], want, "wrapped")
	t.Logf("wrapped after %d updates", n)
}

func le64(b []byte) int64 {
	var v int64
	for i := 7; i >= 0; i-- {
		v = v<<8 | int64(b[i])
	}
	return v
}
