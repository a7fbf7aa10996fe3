package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/cmd/qimg/internal/report"
	"github.com/qimg/qimg/image"
)

func newSnapshotCmd(e *env) *cobra.Command {
	var format string
	var list, quiet, forceShare bool
	var create, apply, del string
	cmd := &cobra.Command{
		Use:   "snapshot -l [-f FMT] [-U] FILENAME",
		Short: "List the internal snapshots of a qcow2 image",
		Long: `List the internal snapshots of a qcow2 image in qemu-img's table: ID, tag,
VM state size, date (local time), VM clock and instruction count.

qimg only lists snapshots; creating (-c), applying (-a) and deleting (-d)
them is not implemented and fails without touching the image.`,
		Args: exactArgs(1, "Expecting one image file name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case create != "" || apply != "" || del != "":
				return fail("qimg snapshot only lists snapshots (-l); -c, -a and -d are not supported")
			case !list:
				return usageError("Expecting -l (qimg snapshot only lists snapshots)")
			}
			img, _, err := openImage(args[0], format, false, image.IgnoreBacking)
			if err != nil {
				return err
			}
			defer img.Close()
			d, ok := img.(image.Describer)
			if !ok {
				return nil // no snapshots: qemu-img prints nothing
			}
			if err := refuseUnopenable(args[0], format, img, false, e.untrusted); err != nil {
				return err
			}
			desc, err := d.Describe()
			if err != nil {
				return fail("%s", reason(args[0], err))
			}
			if len(desc.Snapshots) == 0 {
				return nil
			}
			_, err = fmt.Fprint(e.stdout, "Snapshot list:\n"+report.SnapshotTable(desc.Snapshots))
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&list, "list", "l", false, "list the snapshots")
	f.StringVarP(&format, "format", "f", "", "image format; probed if omitted")
	f.BoolVarP(&forceShare, "force-share", "U", false, "accepted for compatibility: qimg never locks images")
	f.BoolVarP(&quiet, "quiet", "q", false, "accepted for compatibility")
	f.StringVarP(&create, "create", "c", "", "not supported")
	f.StringVarP(&apply, "apply", "a", "", "not supported")
	f.StringVarP(&del, "delete", "d", "", "not supported")
	return cmd
}
