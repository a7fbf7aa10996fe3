package main

import (
	"errors"

	"github.com/spf13/cobra"

	imgfmt "github.com/qimg/qimg/format"
	"github.com/qimg/qimg/image"
)

func newRebaseCmd(e *env) *cobra.Command {
	var format, backing, backingFmt, cache, srcCache string
	var unsafe, quiet, progress, shareRW bool
	cmd := &cobra.Command{
		Use:   "rebase [-f FMT] [-u] [-p] [-q] -b BACKING [-F BACKING_FMT] FILENAME",
		Short: "Change the backing file of a qcow2 image",
		Long: `Make BACKING (relative to FILENAME's directory; "" for none) the backing
file of FILENAME, a qcow2 image. By default the guest-visible content does
not change: wherever FILENAME does not hold the data itself and the old
and new backing files differ, the old content is copied into FILENAME
first. With -u (unsafe) only the name in the header changes; the new
backing file need not exist. -F names its format and is required with a
backing file, as in qemu-img 7.2.`,
		Args: exactArgs(1, "Expecting one image file name"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			path := args[0]
			if !cmd.Flags().Changed("backing") && !unsafe {
				return usageError("Must specify backing file (-b) or use unsafe mode (-u)")
			}
			if backingFmt != "" && !imgfmt.Known(backingFmt) {
				return fail("Invalid format name: '%s'", backingFmt)
			}
			policy := e.chainPolicy()
			if unsafe {
				// -u only renames: like qemu-img, it never opens the old
				// backing file, which may be gone (the reason to use -u).
				policy = image.IgnoreBacking
			}
			opened, detected, err := openImage(path, format, true, policy)
			if err != nil {
				return err
			}
			defer closeImage(opened, &err)
			if format == "" && detected == "raw" {
				e.warnProbedRaw(path)
			}
			if backing != "" && backingFmt == "" {
				// qemu-img 7.2 copies the data first and then fails on the
				// header with this message; failing first changes nothing.
				return fail("Could not change the backing file to '%s': backing format must be specified", backing)
			}
			img, ok := opened.(image.Rebaser)
			if !ok {
				return fail("Could not change the backing file to '%s': Operation not supported", backing)
			}
			if unsafe {
				if err := img.SetBacking(backing, backingFmt); err != nil {
					return fail("Could not change the backing file to '%s': %s", backing, reason(path, err))
				}
				return nil
			}
			var newBase image.Image
			if backing != "" {
				full := image.ResolveName(path, backing)
				nb, _, err := openImage(full, backingFmt, false, e.chainPolicy())
				if err != nil {
					return newBackingFailure(backing, err)
				}
				defer nb.Close()
				newBase = nb
			}
			pr := newProgress(e.stderr, progress && !quiet)
			err = img.Rebase(e.ctx, newBase, backing, backingFmt, pr.update)
			pr.done(err == nil)
			if err != nil {
				return fail("Could not change the backing file to '%s': %s", backing, reason(path, err))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&format, "format", "f", "", "image format; probed if omitted")
	f.StringVarP(&backing, "backing", "b", "", "new backing file (\"\" for none)")
	f.StringVarP(&backingFmt, "backing-format", "F", "", "format of the new backing file")
	f.BoolVarP(&unsafe, "unsafe", "u", false, "only change the name in the header")
	f.BoolVarP(&progress, "progress", "p", false, "show progress (only when standard error is a terminal)")
	f.BoolVarP(&quiet, "quiet", "q", false, "print nothing on success")
	f.StringVarP(&cache, "cache", "t", "", "accepted for compatibility")
	f.StringVarP(&srcCache, "source-cache", "T", "", "accepted for compatibility")
	f.BoolVarP(&shareRW, "force-share", "U", false, "accepted for compatibility")
	return cmd
}

// newBackingFailure is qemu-img's message for a new backing file that does
// not open: the name as given, then why opening the file failed.
func newBackingFailure(name string, err error) error {
	msg := err.Error()
	var x *exitError
	if errors.As(err, &x) && x.openReason != "" {
		msg = x.openReason
	}
	return fail("Could not open new backing file '%s': %s", name, msg)
}
