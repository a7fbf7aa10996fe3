package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/convert"
	"github.com/qimg/qimg/image"
)

func newCompareCmd(e *env) *cobra.Command {
	var fmt1, fmt2 string
	var strict, quiet, progress, forceShare bool
	var keys keyFlags
	cmd := &cobra.Command{
		Use:   "compare [-f FMT] [-F FMT] [-s] [-q] [-p] FILENAME1 FILENAME2",
		Short: "Tell whether two images have the same guest content",
		Long: `Compare the guest content of two images, whatever their formats.

Images of different sizes are identical when the larger one reads as zeros
past the end of the smaller one ("Warning: Image size mismatch!"); -s
(strict) makes a size or allocation difference a mismatch.

Exit codes: 0 identical, 1 different, 2 error (qemu-img's).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return &exitError{code: 2, msg: "Expecting two image file names", usage: true}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			asCode2 := func(err error) error {
				if ee, ok := err.(*exitError); ok {
					ee.code = 2
					return ee
				}
				return &exitError{code: 2, msg: err.Error()}
			}
			sa, err := keys.resolve(args[0], fmt1)
			if err != nil {
				return asCode2(err)
			}
			sb, err := keys.resolve(args[1], fmt2)
			if err != nil {
				return asCode2(err)
			}
			a, _, err := openDataSpec(sa, false, e.chainPolicy())
			if err != nil {
				return asCode2(err)
			}
			defer a.Close()
			b, _, err := openDataSpec(sb, false, e.chainPolicy())
			if err != nil {
				return asCode2(err)
			}
			defer b.Close()
			say := func(s string) {
				if !quiet {
					fmt.Fprintln(e.stdout, s)
				}
			}
			pr := newProgress(e.stderr, progress && !quiet)
			res, err := convert.Compare(e.ctx, a, b, convert.CompareOptions{Strict: strict, Progress: pr.update})
			pr.done(err == nil)
			if err != nil {
				return compareFailure(args, err)
			}
			// qemu-img warns once the common part has compared equal.
			if !strict && a.Size() != b.Size() && (res.Identical || res.Offset >= min(a.Size(), b.Size())) {
				say("Warning: Image size mismatch!")
			}
			if !res.Identical {
				say(res.Reason)
				return exitCode(1)
			}
			say("Images are identical.")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&fmt1, "a-format", "f", "", "format of FILENAME1; probed if omitted")
	f.StringVarP(&fmt2, "b-format", "F", "", "format of FILENAME2; probed if omitted")
	f.BoolVarP(&strict, "strict", "s", false, "strict: differing sizes or allocation are a mismatch")
	f.BoolVarP(&quiet, "quiet", "q", false, "print nothing; only the exit code tells")
	f.BoolVarP(&progress, "progress", "p", false, "show progress (only when standard error is a terminal)")
	f.BoolVarP(&forceShare, "force-share", "U", false, "accepted for compatibility: qimg never locks images")
	keys.add(f)
	return cmd
}

// compareFailure is qemu-img compare's error: a failed read exits with 4
// naming the image and the offset, anything else with 2.
func compareFailure(names []string, err error) error {
	var re *convert.ReadError
	if !errors.As(err, &re) {
		return &exitError{code: 2, msg: err.Error()}
	}
	name := names[0]
	if re.Second {
		name = names[1]
	}
	why := reason(name, re.Err)
	if errors.Is(err, image.ErrCorrupt) {
		why = "Invalid argument" // QEMU's EINVAL for a corrupt image
	}
	return &exitError{code: 4, msg: fmt.Sprintf("Error while reading offset %d of %s: %s", re.Offset, name, why)}
}
