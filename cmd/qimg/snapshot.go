package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/qimg/qimg/format/qcow2"
	"github.com/spf13/pflag"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/cmd/qimg/internal/report"
	"github.com/qimg/qimg/image"
)

func newSnapshotCmd(e *env) *cobra.Command {
	var format string
	var list, quiet, forceShare bool
	var create, apply, del string
	cmd := &cobra.Command{
		Use:   "snapshot [-l | -a SNAPSHOT | -c SNAPSHOT | -d SNAPSHOT] [-f FMT] [-U] [-q] FILENAME",
		Short: "List, create, apply or delete the internal snapshots of a qcow2 image",
		Long: `List the internal snapshots of a qcow2 image in qemu-img's table (-l: ID,
tag, VM state size, date (local time), VM clock and instruction count),
create one of the active layer (-c NAME, with the next numeric ID; names
need not be unique), apply one (-a ID or NAME: the active layer becomes
the snapshot again, with its virtual size) or delete one (-d NAME, the
first of that name).

Each change is one header write that switches to metadata written
beforehand, followed by a recount of the refcounts; on a version 3 image
the dirty bit covers it, so an interrupted change leaves the old image or
the new one, whose refcounts are rebuilt when it is next opened for
writing (version 2 images: qemu-img check -r all repairs what an
interrupted change leaves).`,
		Args: exactArgs(1, "Expecting one image file name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			actions := 0
			for _, set := range []bool{list, cmd.Flags().Changed("create"), cmd.Flags().Changed("apply"), cmd.Flags().Changed("delete")} {
				if set {
					actions++
				}
			}
			switch {
			case actions > 1:
				return usageError("Cannot mix '-l', '-a', '-c', '-d'")
			case actions == 0:
				return nil // qemu-img does nothing
			case !list:
				return changeSnapshot(e, args[0], format, cmd.Flags(), create, apply, del)
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
			if err := refuseUnopenable(imageSpec{name: args[0], path: args[0], format: format}, img, false, e.untrusted); err != nil {
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
	f.StringVarP(&create, "create", "c", "", "create a snapshot named SNAPSHOT of the active layer")
	f.StringVarP(&apply, "apply", "a", "", "make the snapshot with this ID or name the active layer")
	f.StringVarP(&del, "delete", "d", "", "delete the first snapshot with this name")
	return cmd
}

// snapshotter is an image whose internal snapshots can change (qcow2).
type snapshotter interface {
	CreateSnapshot(ctx context.Context, name string, now time.Time) error
	ApplySnapshot(ctx context.Context, id string) error
	DeleteSnapshot(ctx context.Context, name string) error
}

// changeSnapshot runs -c, -a or -d, with qemu-img's messages.
func changeSnapshot(e *env, path, format string, flags *pflag.FlagSet, create, apply, del string) error {
	verb, name := "create", create
	switch {
	case flags.Changed("apply"):
		verb, name = "apply", apply
	case flags.Changed("delete"):
		verb, name = "delete", del
	}
	img, _, err := openImage(path, format, true, image.IgnoreBacking)
	if err != nil {
		return err
	}
	defer img.Close()
	s, ok := img.(snapshotter)
	if !ok {
		switch verb {
		case "create":
			return fail("Could not create snapshot '%s': -95 (Operation not supported)", name)
		case "apply":
			return fail("Could not apply snapshot '%s': Block driver does not support snapshots", name)
		}
		return fail("Could not delete snapshot '%s': snapshot not found", name)
	}
	switch verb {
	case "create":
		err = s.CreateSnapshot(e.ctx, name, time.Now())
	case "apply":
		err = s.ApplySnapshot(e.ctx, name)
	default:
		err = s.DeleteSnapshot(e.ctx, name)
	}
	if cerr := img.Close(); err == nil {
		err = cerr
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, qcow2.ErrSnapshotNotFound) && verb == "apply":
		return fail("Could not apply snapshot '%s': Failed to load snapshot: No such file or directory", name)
	case errors.Is(err, qcow2.ErrSnapshotNotFound):
		return fail("Could not delete snapshot '%s': snapshot not found", name)
	case errors.Is(err, qcow2.ErrNoSnapshots):
		return fail("Could not create snapshot '%s': -95 (Operation not supported)", name)
	}
	return fail("Could not %s snapshot '%s': %s", verb, name, reason(path, err))
}
