package main

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/cmd/qimg/internal/qfmt"
	"github.com/qimg/qimg/convert"
	imgfmt "github.com/qimg/qimg/format"
)

// ddOperands are qemu-img dd's key=value operands.
type ddOperands struct {
	in, out string
	convert.DDOptions
}

func newDDCmd(e *env) *cobra.Command {
	var srcFmt, outFmt string
	var forceShare bool
	var keys keyFlags
	cmd := &cobra.Command{
		Use:   "dd [-U] [-f FMT] [-O OUTPUT_FMT] [bs=BLOCK_SIZE] [count=BLOCKS] [skip=BLOCKS] if=INPUT of=OUTPUT",
		Short: "Copy a byte range of an image into a new image, as qemu-img dd does",
		Long: `Copy the guest data of INPUT, from skip blocks to count blocks (count
counts from the start of the input, not from skip, as in qemu-img 7.2),
into a new image OUTPUT of format OUTPUT_FMT (raw by default, or qcow2;
convert writes the other formats). bs is the block size in bytes (default 512; k, M, G, T, P and E
suffixes); count and skip are in blocks (suffixes multiply them). Every
block is written, zeros included, so the output is the one qemu-img dd
writes (its size rounded up to whole 512-byte sectors). A skip past the end of the input writes an empty image, with a
warning, as dd(1) does. OUTPUT is written beside its final name and
renamed into place when complete.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ops, err := parseDDOperands(args)
			if err != nil {
				return err
			}
			if outFmt == "" {
				outFmt = imgfmt.Raw
			}
			if !imgfmt.Known(outFmt) {
				return fail("Unknown file format")
			}
			if outFmt != imgfmt.Raw && outFmt != imgfmt.QCOW2 {
				return fail("%s: qimg dd writes raw and qcow2 images; use convert -O %s for %s", ops.out, outFmt, outFmt)
			}
			spec, err := keys.resolve(ops.in, srcFmt)
			if err != nil {
				return err
			}
			img, _, err := openDataSpec(spec, false, e.chainPolicy())
			if err != nil {
				return err
			}
			defer img.Close()
			ops.Format = outFmt
			r, err := convert.DD(e.ctx, img, ops.out, ops.DDOptions)
			if r.SkippedPast {
				fmt.Fprintf(e.stderr, "qimg: %s: cannot skip to specified offset\n", ops.in)
			}
			if err != nil {
				if isPathError(err, "") {
					return fail("%s: error while creating output image: Could not create '%s': %s", ops.out, ops.out, reason(ops.out, err))
				}
				return fail("%s", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&srcFmt, "format", "f", "", "input format; probed if omitted")
	f.StringVarP(&outFmt, "output-format", "O", "", "output format: raw (default) or qcow2")
	f.BoolVarP(&forceShare, "force-share", "U", false, "accepted for compatibility: qimg never locks images")
	keys.add(f)
	return cmd
}

// parseDDOperands reads the key=value operands in order, failing at the
// first bad one with qemu-img's message.
func parseDDOperands(args []string) (ddOperands, error) {
	o := ddOperands{DDOptions: convert.DDOptions{BlockSize: 512, Count: -1}}
	for _, a := range args {
		key, val, ok := strings.Cut(a, "=")
		var err error
		switch {
		case !ok:
			err = fail("unrecognized operand %s", a)
		case key == "if":
			o.in = val
		case key == "of":
			o.out = val
		case key == "bs":
			o.BlockSize, err = ddNumber("bs", val)
			if err == nil && (o.BlockSize < 1 || o.BlockSize > math.MaxInt32) {
				err = fail("Invalid bs specified. Must be between 1 and %d.", math.MaxInt32)
			}
		case key == "count":
			o.Count, err = ddNumber("count", val)
		case key == "skip":
			o.Skip, err = ddNumber("skip", val)
		default:
			err = fail("unrecognized operand %s", key)
		}
		if err != nil {
			return o, err
		}
	}
	if o.in == "" || o.out == "" {
		return o, fail("Must specify both input and output files")
	}
	return o, nil
}

// ddNumber parses a size operand as qemu_strtosz does.
func ddNumber(name, val string) (int64, error) {
	n, err := qfmt.ParseSize(val)
	if err == nil && n > math.MaxInt64 {
		err = qfmt.ErrRange
	}
	if errors.Is(err, qfmt.ErrRange) && name == "bs" {
		return 0, fail("Invalid bs specified. Must be between 1 and %d.", math.MaxInt32)
	}
	if err != nil {
		return 0, fail("Invalid %s specified. You may use k, M, G, T, P or E suffixes for\nkilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.", name)
	}
	return int64(n), nil
}
