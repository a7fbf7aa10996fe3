package hive_test

import (
	"bytes"
	"testing"

	"github.com/qimg/qimg/guestfs/hive"
	"github.com/qimg/qimg/internal/hivetest"
	"github.com/qimg/qimg/internal/imagetest"
)

// seedTree is tree() with a big value just over one "db" segment, so
// that seeds stay small.
func seedTree() *hivetest.Key {
	root := &hivetest.Key{Name: "ROOT"}
	cv := root.Path(`Microsoft\Windows NT\CurrentVersion`)
	cv.Values = []hivetest.Value{
		hivetest.SZ("ProductName", "Windows 11 Pro"),
		hivetest.DWord("CurrentMajorVersionNumber", 10),
		hivetest.QWord("Q", 7),
		hivetest.MultiSZ("M", "a", "b"),
		hivetest.Binary("Big", bytes.Repeat([]byte{7}, 16400)),
	}
	for _, k := range []string{`Select`, `ControlSet001\Control\ComputerName\ComputerName`, `A\B\C\D`, `A\E`, `A\F☃`} {
		root.Path(k).Values = []hivetest.Value{hivetest.SZ("V", k)}
	}
	return root
}

// FuzzOpen opens mutated hives and walks them as inspection would, to a
// bounded depth: every error is classified and names the file.
func FuzzOpen(f *testing.F) {
	for _, opt := range layouts {
		f.Add(hivetest.Build(seedTree(), opt))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "FUZZ.hive"
		h, err := hive.Open(bytes.NewReader(data), int64(len(data)), name)
		if err != nil {
			imagetest.CheckError(t, "Open", name, err)
			return
		}
		root, err := h.Root()
		if err != nil {
			imagetest.CheckError(t, "Root", name, err)
			return
		}
		budget := 2000
		walk(t, root, 0, &budget)
		if _, err := h.Key(`Microsoft\Windows NT\CurrentVersion`); err != nil {
			t.Log(err) // missing keys are fine
		}
	})
}

func walk(t *testing.T, k *hive.Key, depth int, budget *int) {
	const name = "FUZZ.hive"
	if depth > 16 || *budget <= 0 {
		return
	}
	*budget--
	vals, err := k.Values()
	if err != nil {
		imagetest.CheckError(t, "Values", name, err)
	}
	for _, v := range vals {
		_, err := v.Data()
		if err != nil {
			imagetest.CheckError(t, "Data", name, err)
		}
		v.String()
		v.Strings()
		v.Uint()
	}
	subs, err := k.Subkeys()
	if err != nil {
		imagetest.CheckError(t, "Subkeys", name, err)
	}
	*budget -= len(subs) + len(vals)
	for _, s := range subs {
		walk(t, s, depth+1, budget)
	}
}
