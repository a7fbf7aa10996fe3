package main

import (
	"errors"
	"math"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/cmd/qimg/internal/qfmt"
	"github.com/qimg/qimg/cmd/qimg/internal/report"
	imgfmt "github.com/qimg/qimg/format"
)

func newMapCmd(e *env) *cobra.Command {
	var format, output, startArg, lengthArg string
	var forceShare bool
	var keys keyFlags
	cmd := &cobra.Command{
		Use:   "map [-f FMT] [--output=human|json] [--start-offset=OFFSET] [--max-length=LEN] [-U] FILENAME",
		Short: "Show where the guest data of an image is stored",
		Long: `Show how the guest bytes of an image map to its file and backing chain.

With --output=json every run is listed with start, length, depth (0 is the
image, 1 its backing file, ...), present, zero, data and the host offset
when the run is stored uncompressed, exactly as qemu-img map does. The
human form lists only the runs holding data, with the file they live in,
and fails on compressed clusters as qemu-img does.`,
		Args: exactArgs(1, "Expecting one image file name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			start, length := int64(0), int64(math.MaxInt64)
			if startArg != "" {
				n, err := qfmt.ParseSize(startArg)
				if err != nil || n > math.MaxInt64 {
					return fail("Invalid start offset specified! You may use k, M, G, T, P or E suffixes for \nkilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.")
				}
				start = int64(n)
			}
			if lengthArg != "" {
				n, err := qfmt.ParseSize(lengthArg)
				if err != nil || n > math.MaxInt64 {
					return fail("Invalid max length specified! You may use k, M, G, T, P or E suffixes for \nkilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.")
				}
				length = int64(n)
			}
			spec, err := keys.resolve(args[0], format)
			if err != nil {
				return err
			}
			if spec.format != "" && !imgfmt.Known(spec.format) {
				return fail("Could not open '%s': Unknown driver '%s'", spec.name, spec.format)
			}
			// The chain is walked layer by layer below; opening it whole
			// first refuses, in qemu-img's words, what qemu-img refuses: a
			// missing backing or data file, an encrypted layer.
			img, _, err := openDataSpec(spec, false, e.chainPolicy())
			if err != nil {
				return err
			}
			img.Close()
			chain, err := report.OpenChain(spec.path, spec.format, e.untrusted)
			if err != nil {
				return openFailureAs(spec.name, spec.path, spec.format, err)
			}
			defer chain.Close()
			length = min(length, math.MaxInt64-start)
			if output == "json" {
				err = chain.MapJSON(e.stdout, start, length)
			} else {
				err = chain.MapHuman(e.stdout, start, length)
			}
			if errors.Is(err, report.ErrMapHuman) {
				return fail("%s", err)
			}
			if err != nil {
				return fail("%s", reason(args[0], err))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&format, "format", "f", "", "image format; probed if omitted")
	f.StringVar(&output, "output", "human", "output format: human or json")
	f.StringVarP(&startArg, "start-offset", "s", "", "first guest byte to map")
	f.StringVarP(&lengthArg, "max-length", "l", "", "map at most this many bytes")
	f.BoolVarP(&forceShare, "force-share", "U", false, "accepted for compatibility: qimg never locks images")
	keys.add(f)
	return cmd
}
