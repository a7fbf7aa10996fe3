package image

import (
	"context"
	"fmt"
	"io"
)

// Checker is an image that checks its own consistency, as qemu-img check
// does, and may repair what it finds.
type Checker interface {
	// Check verifies the image and, with a mode other than RepairNone,
	// repairs it (the image must then be open for writing).
	Check(ctx context.Context, repair RepairMode) (*CheckResult, error)
}

// RepairMode says what Check may fix (qemu-img check -r).
type RepairMode int

const (
	// RepairNone only reports.
	RepairNone RepairMode = iota
	// RepairLeaks lowers refcounts that are higher than the references
	// (-r leaks).
	RepairLeaks
	// RepairAll also fixes corruptions, rebuilding the refcount structure
	// when needed (-r all).
	RepairAll
)

// Leaks reports whether the mode repairs leaks.
func (m RepairMode) Leaks() bool { return m >= RepairLeaks }

// Errors reports whether the mode repairs corruptions.
func (m RepairMode) Errors() bool { return m >= RepairAll }

// CheckResult is the outcome of Check, with the fields of qemu-img check
// --output=json.
type CheckResult struct {
	Filename           string `json:"filename"`
	Format             string `json:"format"`
	CheckErrors        int64  `json:"check-errors"`
	ImageEndOffset     int64  `json:"image-end-offset,omitempty"`
	Corruptions        int64  `json:"corruptions,omitempty"`
	Leaks              int64  `json:"leaks,omitempty"`
	CorruptionsFixed   int64  `json:"corruptions-fixed,omitempty"`
	LeaksFixed         int64  `json:"leaks-fixed,omitempty"`
	TotalClusters      int64  `json:"total-clusters,omitempty"`
	AllocatedClusters  int64  `json:"allocated-clusters,omitempty"`
	FragmentedClusters int64  `json:"fragmented-clusters,omitempty"`
	CompressedClusters int64  `json:"compressed-clusters,omitempty"`
	// Messages are the lines qemu-img prints on standard error while it
	// checks, such as "Leaked cluster 5 refcount=2 reference=1".
	Messages []string `json:"-"`
	// Reports are the lines QEMU's drivers print with error_report,
	// which qemu-img prefixes with its name ("qemu-img: VHDX BAT entry
	// 3 ..."); they follow Messages.
	Reports []string `json:"-"`
	// Repaired is set when a repair changed the image; the counts then
	// describe a second check of the repaired image, as qemu-img does,
	// and only the *Fixed fields describe the repair.
	Repaired bool `json:"-"`
}

// ExitCode is qemu-img check's exit status: 0 clean, 1 the check could
// not complete, 2 corruptions, 3 leaks only.
func (r *CheckResult) ExitCode() int {
	switch {
	case r.CheckErrors > 0:
		return 1
	case r.Corruptions > 0:
		return 2
	case r.Leaks > 0:
		return 3
	}
	return 0
}

// Fields is QEMU's ImageCheck: members in schema order, zero counts left
// out, as qemu-img check --output=json prints them.
func (r *CheckResult) Fields() Fields {
	f := Fields{}.Add("filename", r.Filename).Add("format", r.Format).Add("check-errors", r.CheckErrors)
	for _, c := range []struct {
		key string
		v   int64
	}{
		{"image-end-offset", r.ImageEndOffset},
		{"corruptions", r.Corruptions},
		{"leaks", r.Leaks},
		{"corruptions-fixed", r.CorruptionsFixed},
		{"leaks-fixed", r.LeaksFixed},
		{"total-clusters", r.TotalClusters},
		{"allocated-clusters", r.AllocatedClusters},
		{"fragmented-clusters", r.FragmentedClusters},
		{"compressed-clusters", r.CompressedClusters},
	} {
		if c.v != 0 {
			f = f.Add(c.key, c.v)
		}
	}
	return f
}

// WriteHuman writes what qemu-img check prints on standard output.
func (r *CheckResult) WriteHuman(w io.Writer) error {
	var err error
	p := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, args...)
		}
	}
	if r.Repaired {
		p("The following inconsistencies were found and repaired:\n\n"+
			"    %d leaked clusters\n    %d corruptions\n\n"+
			"Double checking the fixed image now...\n", r.LeaksFixed, r.CorruptionsFixed)
	}
	if r.Corruptions == 0 && r.Leaks == 0 && r.CheckErrors == 0 {
		p("No errors were found on the image.\n")
	}
	if r.Corruptions > 0 {
		p("\n%d errors were found on the image.\n"+
			"Data may be corrupted, or further writes to the image may corrupt it.\n", r.Corruptions)
	}
	if r.Leaks > 0 {
		p("\n%d leaked clusters were found on the image.\n"+
			"This means waste of disk space, but no harm to data.\n", r.Leaks)
	}
	if r.CheckErrors > 0 {
		p("\n%d internal errors have occurred during the check.\n", r.CheckErrors)
	}
	if r.TotalClusters != 0 && r.AllocatedClusters != 0 {
		a := float64(r.AllocatedClusters)
		p("%d/%d = %0.2f%% allocated, %0.2f%% fragmented, %0.2f%% compressed clusters\n",
			r.AllocatedClusters, r.TotalClusters, a*100/float64(r.TotalClusters),
			float64(r.FragmentedClusters)*100/a, float64(r.CompressedClusters)*100/a)
	}
	if r.ImageEndOffset != 0 {
		p("Image end offset: %d\n", r.ImageEndOffset)
	}
	return err
}
