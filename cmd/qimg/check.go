package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/cmd/qimg/internal/qfmt"
	"github.com/qimg/qimg/cmd/qimg/internal/report"
	imgfmt "github.com/qimg/qimg/format"
	"github.com/qimg/qimg/image"
)

func newCheckCmd(e *env) *cobra.Command {
	var format, output, repair string
	var quiet, forceShare bool
	var keys keyFlags
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
			if err := checkOutput(output); err != nil {
				return err
			}
			spec, err := keys.resolve(args[0], format)
			if err != nil {
				return err
			}
			path, format := spec.path, spec.format
			mode := image.RepairNone
			switch repair {
			case "":
			case "leaks":
				mode = image.RepairLeaks
			case "all":
				mode = image.RepairAll
			default:
				return usageError("Unknown option value for -r (expecting 'leaks' or 'all'): %s", repair)
			}
			if format != "" && !imgfmt.Known(format) {
				return fail("Could not open '%s': Unknown driver '%s'", spec.name, format)
			}
			if format == "" {
				f, err := imgfmt.Probe(path)
				if err != nil {
					return openFailureAs(spec.name, path, "", err)
				}
				format = f
				if f == imgfmt.Raw && mode != image.RepairNone {
					// qemu-img opens the file for writing to repair it.
					e.warnProbedRaw(path)
				}
			}
			spec.format = format
			img, opened, err := openChecker(spec, false)
			if err == nil && mode != image.RepairNone && imgfmt.Writable(format) {
				// Opened read-only first, so that a format without checks
				// is refused as such; a repair needs it open for writing.
				// Formats qimg does not write are checked read-only: their
				// Check refuses a repair (as QEMU's VDI and VMDK checks do)
				// or has nothing to repair.
				opened.Close()
				img, opened, err = openChecker(spec, true)
			}
			if err != nil {
				return err
			}
			if err := refuseUnopenable(spec, opened, true, e.untrusted); err != nil {
				opened.Close()
				return err
			}
			res, err := img.Check(e.ctx, mode)
			if cerr := opened.Close(); err == nil && cerr != nil {
				err = cerr
			}
			if err != nil && res != nil && !errors.Is(err, image.ErrUnsupported) {
				// What the check printed before it failed, as qemu-img
				// prints it as it goes.
				printCheckMessages(e, res)
			}
			if err != nil && mode != image.RepairNone && errors.Is(err, image.ErrUnsupported) && !imgfmt.Writable(format) {
				return &exitError{code: 63, msg: "This image format does not support checks"}
			}
			if err != nil {
				return fail("Check failed: %s", reason(path, err))
			}
			printCheckMessages(e, res)
			res.Filename, res.Format = spec.name, format
			if output == "json" {
				if _, err := fmt.Fprintln(e.stdout, qfmt.JSON(report.DictOf(res.Fields()))); err != nil {
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
	keys.add(f)
	return cmd
}

// openChecker opens path for check, as an image.Checker, with qemu-img's
// messages when it does not open or the format has no checks.
func openChecker(s imageSpec, writable bool) (image.Checker, image.Image, error) {
	opened, _, err := openNamed(s.name, s.path, imgfmt.OpenOptions{Format: s.format, Writable: writable, ForCheck: true, Backing: image.IgnoreBacking, Key: s.key,
		BackingKeys: s.backingKeys}) // refused here if the image names no backing file
	if err != nil {
		return nil, nil, err
	}
	img, ok := opened.(image.Checker)
	if !ok {
		opened.Close()
		return nil, nil, &exitError{code: 63, msg: "This image format does not support checks"}
	}
	return img, opened, nil
}

// printCheckMessages prints what qemu-img prints on standard error while
// it checks: the driver's lines, then its error reports under qimg's name.
func printCheckMessages(e *env, res *image.CheckResult) {
	for _, m := range res.Messages {
		fmt.Fprintln(e.stderr, m)
	}
	for _, m := range res.Reports {
		fmt.Fprintln(e.stderr, "qimg: "+m)
	}
}
