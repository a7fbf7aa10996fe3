package main

import (
	"fmt"
	"strings"

	"github.com/qimg/qimg/image"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/cmd/qimg/internal/qfmt"
	imgfmt "github.com/qimg/qimg/format"
	"github.com/qimg/qimg/format/qcow2"
)

func newCheckCmd(e *env) *cobra.Command {
	var format, output, repair string
	var quiet, forceShare bool
	cmd := &cobra.Command{
		Use:   "check [-f FMT] [--output=human|json] [-r leaks|all] [-q] [-U] FILENAME",
		Short: "Check a qcow2 image for consistency, and optionally repair it",
		Long: `Check the refcounts and metadata of a qcow2 image as qemu-img check does.
Without -r the image is only read. -r leaks frees leaked clusters; -r all
also repairs corruptions (rebuilding the refcounts if needed), then checks
again.

Exit codes (qemu-img's): 0 clean, 1 check not completed (internal error or
image unreadable), 2 corruptions, 3 only leaks, 63 format without checks
(raw).`,
		Args: exactArgs(1, "Expecting one image file name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if err := checkOutput(output); err != nil {
				return err
			}
			mode := qcow2.RepairNone
			switch repair {
			case "":
			case "leaks":
				mode = qcow2.RepairLeaks
			case "all":
				mode = qcow2.RepairAll
			default:
				return usageError("Unknown option value for -r (expecting 'leaks' or 'all'): %s", repair)
			}
			if format != "" && !knownFormat(format) {
				return fail("Could not open '%s': Unknown driver '%s'", path, format)
			}
			if format == "" {
				f, err := imgfmt.Probe(path)
				if err != nil {
					return openFailure(path, "", err)
				}
				format = f
			}
			if format != "qcow2" {
				// raw: make sure the file opens, then refuse like qemu-img.
				img, _, err := openImage(path, format, false, image.IgnoreBacking)
				if err != nil {
					return err
				}
				img.Close()
				return &exitError{code: 63, msg: "This image format does not support checks"}
			}
			img, err := qcow2.Open(path, &qcow2.OpenOptions{Writable: mode != qcow2.RepairNone, ForCheck: true, Backing: image.IgnoreBacking})
			if err != nil {
				return openFailure(path, format, err)
			}
			if err := checkOpenable(path, img, e.untrusted); err != nil {
				img.Close()
				return err
			}
			res, err := img.Check(e.ctx, mode)
			if cerr := img.Close(); err == nil && cerr != nil {
				err = cerr
			}
			if err != nil {
				return fail("Check failed: %s", reason(path, err))
			}
			for _, m := range res.Messages {
				fmt.Fprintln(e.stderr, m)
			}
			res.Filename, res.Format = path, "qcow2"
			if output == "json" {
				if _, err := fmt.Fprintln(e.stdout, qfmt.JSON(checkDict(res))); err != nil {
					return err
				}
			} else if !quiet {
				var b strings.Builder
				if err := res.WriteHuman(&b); err != nil {
					return err
				}
				if _, err := fmt.Fprint(e.stdout, b.String()); err != nil {
					return err
				}
			}
			if code := res.ExitCode(); code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&format, "format", "f", "", "image format; probed if omitted")
	f.StringVar(&output, "output", "human", "output format: human or json")
	f.StringVarP(&repair, "repair", "r", "", "repair: leaks (free leaked clusters) or all (also fix corruptions)")
	f.BoolVarP(&quiet, "quiet", "q", false, "print nothing on success")
	f.BoolVarP(&forceShare, "force-share", "U", false, "accepted for compatibility: qimg never locks images")
	return cmd
}

// checkDict is ImageCheck, members in schema order, zero counts omitted.
func checkDict(r *qcow2.CheckResult) qfmt.Dict {
	d := qfmt.Dict{}.Add("filename", r.Filename).Add("format", r.Format).Add("check-errors", r.CheckErrors)
	for _, f := range []struct {
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
		if f.v != 0 {
			d = d.Add(f.key, f.v)
		}
	}
	return d
}
