package hive_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/qimg/qimg/guestfs/hive"
	"github.com/qimg/qimg/internal/hivetest"
)

// Read the product name and version of a Windows guest from its SOFTWARE
// hive (here one written by the tests' hive writer; a guest's is
// Windows/System32/config/SOFTWARE on its NTFS root).
func Example() {
	root := &hivetest.Key{Name: "ROOT"}
	root.Path(`Microsoft\Windows NT\CurrentVersion`).Values = []hivetest.Value{
		hivetest.SZ("ProductName", "Windows Server 2022 Datacenter"),
		hivetest.DWord("CurrentMajorVersionNumber", 10),
		hivetest.SZ("CurrentBuild", "20348"),
	}
	file := hivetest.Build(root, hivetest.Options{})

	h, err := hive.Open(bytes.NewReader(file), int64(len(file)), "SOFTWARE")
	if err != nil {
		log.Fatal(err)
	}
	cv, err := h.Key(`Microsoft\Windows NT\CurrentVersion`)
	if err != nil {
		log.Fatal(err)
	}
	vals, err := cv.Values()
	if err != nil {
		log.Fatal(err)
	}
	for _, v := range vals {
		switch v.Type() {
		case hive.String:
			s, _ := v.String()
			fmt.Printf("%s = %q\n", v.Name(), s)
		case hive.DWord:
			n, _ := v.Uint()
			fmt.Printf("%s = %d\n", v.Name(), n)
		}
	}
	// Output:
	// ProductName = "Windows Server 2022 Datacenter"
	// CurrentMajorVersionNumber = 10
	// CurrentBuild = "20348"
}
