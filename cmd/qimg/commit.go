package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/image"
)

func newCommitCmd(e *env) *cobra.Command {
	var format, base, cache, rate string
	var keep, quiet, progress bool
	cmd := &cobra.Command{
		Use:   "commit [-f FMT] [-d] [-p] [-q] FILENAME",
		Short: "Write an overlay's changes into its backing file",
		Long: `Write everything FILENAME (a qcow2 overlay) holds itself into its backing
file, growing that file if it is smaller, then empty FILENAME so that it
reads the backing file's new content through (-d keeps it as it was).
Prints "Image committed." unless -q. -b may only name the immediate
backing file.`,
		Args: exactArgs(1, "Expecting one image file name"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			path := args[0]
			opened, _, err := openImage(path, format, true, e.chainPolicy())
			if err != nil {
				return err
			}
			defer closeImage(opened, &err)
			img, ok := opened.(image.Committer)
			var backingName, backingFmt string
			if b, ok := opened.(image.BackingNamer); ok {
				backingName, backingFmt = b.BackingFile()
			}
			if !ok || backingName == "" {
				return fail("Image does not have a backing file")
			}
			full := image.ResolveName(path, backingName)
			if base != "" && base != backingName && base != full {
				return fail("qimg commit -b supports only the image's own backing file ('%s')", backingName)
			}
			opened, _, err = openImage(full, backingFmt, true, e.chainPolicy())
			if err != nil {
				return err
			}
			defer closeImage(opened, &err)
			target, ok := opened.(image.WritableImage)
			if !ok {
				return fail("Could not open '%s' for writing: Operation not supported", full)
			}
			pr := newProgress(e.stderr, progress && !quiet)
			err = img.Commit(e.ctx, target, keep, pr.update)
			pr.done(err == nil)
			if err != nil {
				return fail("%s", reason(path, err))
			}
			if !quiet {
				_, err = fmt.Fprintln(e.stdout, "Image committed.")
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&format, "format", "f", "", "image format; probed if omitted")
	f.BoolVarP(&keep, "keep", "d", false, "do not empty FILENAME after the commit")
	f.StringVarP(&base, "base", "b", "", "the backing file to commit into (only the image's own)")
	f.BoolVarP(&progress, "progress", "p", false, "show progress (only when standard error is a terminal)")
	f.BoolVarP(&quiet, "quiet", "q", false, "do not print \"Image committed.\"")
	f.StringVarP(&cache, "cache", "t", "", "accepted for compatibility")
	f.StringVarP(&rate, "rate-limit", "r", "", "accepted for compatibility")
	return cmd
}
