package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/cmd/qimg/internal/qfmt"
	"github.com/qimg/qimg/cmd/qimg/internal/report"
	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/format/raw"
	"github.com/qimg/qimg/format/vdi"
	"github.com/qimg/qimg/format/vhd"
	"github.com/qimg/qimg/format/vhdx"
	"github.com/qimg/qimg/format/vmdk"
)

func newInfoCmd(e *env) *cobra.Command {
	var format, output string
	var chain, forceShare bool
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
			infos, err := collectInfo(args[0], format, chain, e.untrusted)
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
	return cmd
}

// collectInfo describes the image, and with chain its backing files
// (which untrusted refuses to open).
func collectInfo(path, format string, chain, untrusted bool) ([]*report.ImageInfo, error) {
	var infos []*report.ImageInfo
	seen := map[string]bool{}
	for depth := 0; ; depth++ {
		if seen[path] {
			return nil, fail("Backing file '%s' creates an infinite loop.", path)
		}
		seen[path] = true
		if depth > report.MaxChain {
			return nil, fail("Backing chain of '%s' is deeper than %d images", infos[0].Filename, report.MaxChain)
		}
		in, err := oneInfo(path, format)
		if err != nil {
			return nil, err
		}
		infos = append(infos, in)
		if !chain || in.BackingFilename == "" {
			return infos, nil
		}
		if untrusted {
			return nil, fail("Could not open '%s': backing file '%s' not opened: --untrusted refuses backing files", path, in.BackingFilename)
		}
		path, format = in.FullBackingFilename, in.BackingFormat
	}
}

func oneInfo(path, format string) (*report.ImageInfo, error) {
	img, format, err := openForInfo(path, format)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	var in *report.ImageInfo
	switch i := img.(type) {
	case *qcow2.Image:
		in, err = report.QCOW2Info(path, i)
	case *raw.Image:
		in, err = report.RawInfo(path, i.Size())
	case *vdi.Image:
		in, err = report.BasicInfo(path, format, i.Size(), i.Params().BlockSize)
	case *vhdx.Image:
		in, err = report.BasicInfo(path, format, i.Size(), i.Params().BlockSize)
	case *vhd.Image:
		in, err = report.BasicInfo(path, format, i.Size(), i.BlockSize())
	case *vmdk.Image:
		in, err = report.VMDKInfo(path, i)
	default:
		err = fmt.Errorf("format %s has no info", format)
	}
	if err != nil {
		return nil, fail("%s", reason(path, err))
	}
	return in, nil
}
