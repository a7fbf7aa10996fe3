package lvm_test

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

var gen = flag.Bool("gen", false, "regenerate testdata/pv.img.gz and the lvm2-made fuzz seeds with the lvm2 tools")

// TestGenerate makes, with `go test ./guestfs/lvm/ -run TestGenerate -args -gen`
// (as root, lvm2 installed), the files under testdata that come from the
// real tools:
//
//   - pv.img.gz, the PV of the runnable example: a 2 MiB device with the
//     smallest layout lvm2 allows, made by
//     pvcreate --metadatasize 32k --dataalignment 4k DEV
//     vgcreate -s 4k VG DEV
//     lvcreate -an -Zn -L 8k -n root VG
//     lvcreate -an -Zn -L 4k -n swap VG
//     lvextend -L +8k VG/root
//     (so root has two segments, around swap) and each LV's sectors then
//     filled with pattern(): "root sector 0\n", ...
//   - testdata/fuzz/FuzzReadPV/lvm2-*: the same PV before its LVs were
//     written, with its current metadata text moved to the start of the
//     metadata area (where LVM writes its first) and the older copies
//     dropped, cut short of its trailing zeros (the fuzz target pads it):
//     a small input fuzzes much faster;
//   - testdata/fuzz/FuzzParseMetadata/lvm2-*: the metadata texts of that
//     VG and of a two-PV VG with a striped LV.
func TestGenerate(t *testing.T) {
	if !*gen {
		t.Skip("regenerates testdata with -gen")
	}
	e := newLVM(t, 2<<20)
	vg := "qimgexample"
	dev := e.loops[0]
	e.lvm("pvcreate", "--metadatasize", "32k", "--dataalignment", "4k", dev)
	e.vg = vg // a fixed name: it shows in the example's output
	e.lvm("vgcreate", "-s", "4k", vg, dev)
	e.lvm("lvcreate", "-an", "-Zn", "-L", "8k", "-n", "root", vg)
	e.lvm("lvcreate", "-an", "-Zn", "-L", "4k", "-n", "swap", vg)
	e.lvm("lvextend", "-L", "+8k", vg+"/root")
	vgRows := e.report("vgs", "vg_extent_size", vg)
	pvRows := e.report("pvs", "pv_name,pe_start")
	lvRows := e.report("lvs", "lv_name,lv_size,seg_start,seg_size,segtype,seg_pe_ranges", vg)
	e.close()
	// Remove the VG's trace from the host: nothing to do, the tools were
	// told only about the loop device, which is gone.

	pristine, err := os.ReadFile(e.files[0])
	if err != nil {
		t.Fatal(err)
	}
	e.fillLVs(lvRows, pvRows, atoi(t, vgRows[0]["vg_extent_size"]))
	full, err := os.ReadFile(e.files[0])
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	w.Write(full)
	w.Close()
	writeFile(t, "testdata/pv.img.gz", gz.Bytes())
	writeSeed(t, "FuzzReadPV", "lvm2-example", compactPV(pristine))
	writeSeed(t, "FuzzParseMetadata", "lvm2-example", metadataText(t, full))

	// A second VG on two PVs, for a striped segment and two PV sections.
	e2 := newLVM(t, 4<<20, 4<<20)
	e2.lvm("pvcreate", "--metadatasize", "32k", "--dataalignment", "4k", e2.loops[0], e2.loops[1])
	e2.lvm("vgcreate", "-s", "16k", e2.vg, e2.loops[0], e2.loops[1])
	e2.lvm("lvcreate", "-an", "-Zn", "-L", "64k", "-n", "lv-linear", e2.vg, e2.loops[0])
	e2.lvm("lvcreate", "-an", "-Zn", "-i", "2", "-L", "64k", "-n", "striped", e2.vg)
	e2.lvm("lvextend", "-L", "+32k", e2.vg+"/lv-linear", e2.loops[1])
	e2.close()
	b, err := os.ReadFile(e2.files[1])
	if err != nil {
		t.Fatal(err)
	}
	writeSeed(t, "FuzzParseMetadata", "lvm2-two-pvs", metadataText(t, b))
}

// compactPV moves the current metadata text of the example PV right
// after its metadata area header, clears the rest of the area and cuts
// the zeros off the end.
func compactPV(pv []byte) []byte {
	b := bytes.Clone(pv)
	const mda = 4096
	size := le.Uint64(b[mda+32:])
	off, n := le.Uint64(b[mda+40:]), le.Uint64(b[mda+48:])
	text := bytes.Clone(b[mda+off : mda+off+n])
	clear(b[mda+512 : mda+size])
	copy(b[mda+512:], text)
	le.PutUint64(b[mda+40:], 512)
	fixMDA(b)
	return bytes.TrimRight(b, "\x00")
}

// metadataText returns the newest metadata text of a PV image.
func metadataText(t *testing.T, pv []byte) []byte {
	t.Helper()
	img := newMem(pv, int64(len(pv)))
	h, err := readPV(img)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeSeed writes a fuzz corpus file in the format go test reads.
func writeSeed(t *testing.T, target, name string, b []byte) {
	t.Helper()
	writeFile(t, filepath.Join("testdata/fuzz", target, name), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b))))
}
