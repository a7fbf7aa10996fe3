package main

import (
	"errors"
	"fmt"
	"math"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/cmd/qimg/internal/qfmt"
	"github.com/qimg/qimg/convert"
)

func newMeasureCmd(e *env) *cobra.Command {
	var format, outFmt, output, sizeArg string
	var options []string
	var forceShare bool
	var keys keyFlags
	cmd := &cobra.Command{
		Use:   "measure [--output=human|json] [-O FMT] [-o OPTIONS] (--size N | [-f FMT] FILENAME)",
		Short: "Compute the file size a new image needs",
		Long: `Print the file size needed by an image of format -O (default raw) created
with options -o: "required size" for the data of FILENAME (or an empty
image of --size N), "fully allocated size" when every cluster is
allocated, and for a qcow2 v3 source "bitmaps size". The arithmetic is
qemu-img's, so the numbers are the same.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if outFmt == "" {
				outFmt = "raw"
			}
			hasSize := cmd.Flags().Changed("size")
			switch {
			case hasSize && len(args) > 0:
				return fail("--size N cannot be used together with a filename.")
			case !hasSize && len(args) == 0:
				return fail("Either --size N or one filename must be specified.")
			case hasSize && format != "":
				return fail("--image-opts, -f, and -l require a filename argument.")
			}
			if !creatableFormat(outFmt) {
				return formatError(outFmt)
			}
			secrets, err := keys.secrets()
			if err != nil {
				return err
			}
			opts := qfmt.NewOpts(createOptsFor(outFmt))
			if l := joinOptions(options); l != "" {
				if err := opts.Parse(l); err != nil {
					return fail("%s", err)
				}
			}
			var size int64
			if hasSize {
				n, err := qfmt.ParseSize(sizeArg)
				if err != nil || n > math.MaxInt64 {
					return fail("Invalid image size specified. You may use k, M, G, T, P or E suffixes for\nkilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.")
				}
				size = int64(n)
			}
			mo := convert.MeasureOptions{Format: outFmt}
			if p := opts.String("preallocation", "off"); p != "off" && p != "metadata" && p != "falloc" && p != "full" {
				return fail("invalid parameter value: %s", p)
			}
			if outFmt == "qcow2" {
				var err error
				if mo.QCOW2, err = qcow2Options(opts, secrets); err != nil {
					return err
				}
			}
			var m convert.Measurement
			if len(args) == 1 {
				spec, err := keys.resolve(args[0], format)
				if err != nil {
					return err
				}
				img, _, err := openDataSpec(spec, false, e.chainPolicy())
				if err != nil {
					return err
				}
				defer img.Close()
				m, err = convert.Measure(img, mo)
				if err != nil {
					return measureFailure(args[0], err)
				}
			} else {
				var err error
				if m, err = convert.MeasureSize(size, mo); err != nil {
					return measureFailure("", err)
				}
			}
			required, full, bitmaps, bitmapsSize := m.Required, m.FullyAllocated, m.HasBitmaps, m.Bitmaps
			if output == "json" {
				d := qfmt.Dict{}.Add("required", required).Add("fully-allocated", full)
				if bitmaps {
					d = d.Add("bitmaps", bitmapsSize)
				}
				_, err := fmt.Fprintln(e.stdout, qfmt.JSON(d))
				return err
			}
			s := fmt.Sprintf("required size: %d\nfully allocated size: %d\n", required, full)
			if bitmaps {
				s += fmt.Sprintf("bitmaps size: %d\n", bitmapsSize)
			}
			_, err = fmt.Fprint(e.stdout, s)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&output, "output", "human", "output format: human or json")
	f.StringVarP(&outFmt, "output-format", "O", "", "format of the image to measure for: raw (default) or qcow2")
	f.StringArrayVarP(&options, "options", "o", nil, "creation options key=value,... as for 'qimg create'")
	f.StringVar(&sizeArg, "size", "", "measure an empty image of this virtual size")
	f.StringVarP(&format, "format", "f", "", "format of FILENAME; probed if omitted")
	f.BoolVarP(&forceShare, "force-share", "U", false, "accepted for compatibility: qimg never locks images")
	keys.add(f)
	return cmd
}

// measureFailure is qemu-img's message for a measurement that fails.
func measureFailure(path string, err error) error {
	var bs *convert.BlockStatusError
	if errors.As(err, &bs) {
		return fail("Unable to get block status: %s", reason(path, bs.Err))
	}
	return fail("%s", reason(path, err))
}
