package main

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/cmd/qimg/internal/qfmt"
	"github.com/qimg/qimg/image"
)

func newResizeCmd(e *env) *cobra.Command {
	var format, prealloc string
	var shrink, quiet bool
	cmd := &cobra.Command{
		Use:   "resize [-f FMT] [--shrink] [-q] FILENAME [+|-]SIZE",
		Short: "Grow or shrink an image's virtual size",
		Long: `Set the virtual size of FILENAME to SIZE, or change it by +SIZE or -SIZE
(use "--" before a negative size). Growing adds space that reads as zeros.
Shrinking deletes everything past the new end and needs --shrink.
Prints "Image resized." unless -q.`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) < 2:
				return usageError("Not enough arguments")
			case len(args) > 2:
				return usageError("Unexpected argument: %s", args[2])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			path, arg := args[0], args[1]
			if prealloc != "" && prealloc != "off" {
				return fail("qimg resize does not support --preallocation=%s", prealloc)
			}
			rel := 0
			if strings.HasPrefix(arg, "+") {
				rel, arg = 1, arg[1:]
			} else if strings.HasPrefix(arg, "-") {
				rel, arg = -1, arg[1:]
			}
			n, err := qfmt.ParseSize(arg)
			if err != nil || n > math.MaxInt64 {
				return hinted(fail("Parameter 'size' expects a non-negative number below 2^64"), sizeSuffixHint)
			}
			img, detected, err := openImage(path, format, true, e.chainPolicy())
			if err != nil {
				return err
			}
			defer closeImage(img, &err)
			if format == "" && detected == "raw" {
				e.warnProbedRaw(path)
			}
			cur := img.Size()
			size := int64(n)
			switch rel {
			case 1:
				size = cur + size
			case -1:
				size = cur - size
			}
			if size <= 0 {
				return fail("New image size must be positive")
			}
			if size < cur && !shrink {
				return fail("Use the --shrink option to perform a shrink operation.\n" +
					"warning: Shrinking an image will delete all data beyond the shrunken image's end. Before performing such an operation, make sure there is no important data there.")
			}
			r, ok := img.(image.Resizer)
			if !ok {
				return fail("Image format driver does not support resize")
			}
			err = r.Resize(size, shrink)
			if errors.Is(err, image.ErrUnaligned) {
				return fail("The new size must be a multiple of 512")
			}
			if err != nil {
				return fail("%s", reason(path, err))
			}
			if !quiet {
				_, err = fmt.Fprintln(e.stdout, "Image resized.")
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&format, "format", "f", "", "image format; probed if omitted")
	f.BoolVar(&shrink, "shrink", false, "allow the image to get smaller (deletes data past the new end)")
	f.BoolVarP(&quiet, "quiet", "q", false, "do not print \"Image resized.\"")
	f.StringVar(&prealloc, "preallocation", "", "only \"off\" is supported")
	return cmd
}
