package lvm_test

// Fuzz targets: whatever the bytes, parsing and opening fail cleanly (an
// error wrapping an image.Err* class and naming the file) or succeed with
// volumes that read consistently; nothing panics, hangs or allocates
// more than the limits allow.
//
// Seeds named lvm2-* in testdata/fuzz/... are made by the lvm2 tools
// (see TestGenerate); any other file there is a crasher found by fuzzing,
// kept as a regression test.

import (
	"testing"

	"github.com/qimg/qimg/guestfs/lvm"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/imagetest"
)

// fuzzPVSize is the size of the PV a FuzzReadPV input starts: the
// example PV's, so that its seed (cut short of its zeros) is whole.
const fuzzPVSize = 2 << 20

// readPV returns the first metadata text of a PV.
func readPV(img image.Image) ([]byte, error) {
	h, err := lvm.ReadPVHeader(img, "pv.img")
	if err != nil {
		return nil, err
	}
	texts, err := lvm.ReadMetadata(img, "pv.img", h)
	if err != nil || len(texts) == 0 {
		return nil, err
	}
	return texts[0], nil
}

func FuzzReadPV(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		img := newMem(data, fuzzPVSize)
		if _, err := readPV(img); err != nil {
			imagetest.CheckError(t, "ReadPV", "pv.img", err)
		}
		vgs, err := lvm.Scan(lvm.Device{Name: "pv.img", Image: img})
		if err != nil {
			imagetest.CheckError(t, "Scan", "pv.img", err)
			return
		}
		for _, vg := range vgs {
			openAll(t, vg)
		}
	})
}

func FuzzParseMetadata(f *testing.F) {
	f.Fuzz(func(t *testing.T, text []byte) {
		if _, err := lvm.ParseMetadata(text, "meta.txt"); err != nil {
			imagetest.CheckError(t, "ParseMetadata", "meta.txt", err)
		}
		vg, err := lvm.ParseVG(text, "meta.txt")
		if err != nil {
			imagetest.CheckError(t, "ParseVG", "meta.txt", err)
			return
		}
		// Give every PV an image of zeros just large enough, or one
		// byte short for every other PV, so both paths are taken.
		for i, pv := range vg.PVs {
			size := pv.PEStart + pv.PECount*vg.ExtentSize - int64(i%2)
			pv.Image, pv.File = newMem(nil, max(size, 0)), "pv.img"
		}
		openAll(t, vg)
	})
}

// openAll opens each LV of vg and reads its ends.
func openAll(t *testing.T, vg *lvm.VG) {
	for _, lv := range vg.LVs {
		img, err := vg.Open(lv)
		if err != nil {
			imagetest.CheckError(t, "Open", "", err)
			continue
		}
		if img.Size() != lv.Size {
			t.Fatalf("LV %s of %d bytes opens as %d", lv.Name, lv.Size, img.Size())
		}
		buf := make([]byte, min(img.Size(), 4096))
		for _, off := range []int64{0, img.Size() - int64(len(buf))} {
			if n, err := img.ReadAt(buf, off); n != len(buf) {
				t.Fatalf("LV %s: ReadAt(%d) = %d, %v", lv.Name, off, n, err)
			}
		}
		if _, err := img.Extent(0, img.Size()); err != nil && img.Size() > 0 {
			t.Fatalf("LV %s: Extent: %v", lv.Name, err)
		}
		img.Close()
	}
}
