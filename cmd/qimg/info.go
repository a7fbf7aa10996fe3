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

func newInfoCmd(e *env) *cobra.Command {
	var format, output string
	var chain, forceShare bool
	var keys keyFlags
	cmd := &cobra.Command{
		Use:   "info [-f FMT] [--output=human|json] [--backing-chain] [-U] FILENAME",
		Short: "Show an image's format, sizes, backing file and format details",
		Long: `Show the format, virtual size, disk usage, cluster size, backing file,
snapshots and format-specific details of an image, as qemu-img info does.

info reads only the image's metadata: it never opens the backing file
unless --backing-chain is given, and never writes to the image.`,
		Args: exactArgs(1, "Expecting one image file name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			spec, err := keys.resolveMetadata(args[0], format)
			if err != nil {
				return err
			}
			infos, err := collectInfo(spec, chain, e.untrusted)
			if err != nil {
				return err
			}
			var b strings.Builder
			switch {
			case output == "json" && chain:
				l := make([]any, len(infos))
				for i, in := range infos {
					l[i] = in.Dict()
				}
				b.WriteString(qfmt.JSON(l) + "\n")
			case output == "json":
				b.WriteString(qfmt.JSON(infos[0].Dict()) + "\n")
			default:
				for i, in := range infos {
					if i > 0 {
						b.WriteString("\n")
					}
					b.WriteString(in.Human())
				}
			}
			_, err = fmt.Fprint(e.stdout, b.String())
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&format, "format", "f", "", "image format (qcow2 or raw); probed from the content if omitted")
	f.StringVar(&output, "output", "human", "output format: human or json")
	f.BoolVar(&chain, "backing-chain", false, "also show every image of the backing chain")
	f.BoolVarP(&forceShare, "force-share", "U", false, "accepted for compatibility: qimg never locks images")
	keys.add(f)
	return cmd
}

// collectInfo describes the image, and with chain its backing files
// (which untrusted refuses to open).
func collectInfo(s imageSpec, chain, untrusted bool) ([]*report.ImageInfo, error) {
	path, format := s.path, s.format
	if !chain || untrusted {
		in, err := oneInfo(s)
		if err != nil {
			return nil, err
		}
		if chain && in.BackingFilename != "" {
			return nil, fail("Could not open '%s': backing file '%s' not opened: --untrusted refuses backing files", path, in.BackingFilename)
		}
		return []*report.ImageInfo{in}, nil
	}
	layers, err := imgfmt.OpenChain(path, imgfmt.OpenOptions{Format: format, MetadataOnly: true})
	if err != nil {
		return nil, chainFailure(path, format, err)
	}
	defer layers.Close()
	infos := make([]*report.ImageInfo, len(layers))
	for i, l := range layers {
		if infos[i], err = describe(l.Name, l.Image); err != nil {
			return nil, err
		}
	}
	return infos, nil
}

// chainFailure is qemu-img info's message for a backing chain that does
// not open.
func chainFailure(path, format string, err error) error {
	var loop *imgfmt.LoopError
	var be *imgfmt.BackingError
	switch {
	case errors.As(err, &loop):
		return fail("Backing file '%s' creates an infinite loop.", loop.Name)
	case errors.Is(err, imgfmt.ErrChainTooDeep):
		return fail("Backing chain of '%s' is deeper than %d images", path, image.MaxChainDepth)
	case errors.As(err, &be):
		return openFailure(be.Name, "", be.Err)
	}
	return openFailure(path, format, err)
}

func oneInfo(s imageSpec) (*report.ImageInfo, error) {
	img, format, err := openForInfo(s)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	in, err := describe(s.path, img)
	if err == nil {
		in.Filename = s.qemuName(format)
	}
	return in, err
}

func describe(path string, img image.Image) (*report.ImageInfo, error) {
	in, err := report.Describe(path, img)
	if err != nil {
		return nil, fail("%s", reason(path, err))
	}
	return in, nil
}
