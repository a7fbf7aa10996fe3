package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/customize"
	imgfmt "github.com/qimg/qimg/format"
	"github.com/qimg/qimg/guestfs"
	"github.com/qimg/qimg/guestfs/inspect"
	"github.com/qimg/qimg/image"
)

// editOptions are the flags of the commands that edit a guest.
type editOptions struct {
	format, device string
	dryRun, quiet  bool
	ops            []customize.Op
	// checkRoot, when set, vets the device about to be mounted for
	// editing; an error stops before anything is opened for writing.
	checkRoot func(d *guestfs.Disk, dev string) error
}

// opFlag is one edit option; every occurrence appends to the shared list,
// so edits apply in command-line order whatever the option.
type opFlag struct {
	name string
	ops  *[]customize.Op
}

func (f *opFlag) String() string { return "" }
func (f *opFlag) Type() string   { return "string" }
func (f *opFlag) Set(v string) error {
	op, err := customize.Parse(f.name, v)
	if err != nil {
		return err
	}
	*f.ops = append(*f.ops, op)
	return nil
}

func (o *editOptions) flags(cmd *cobra.Command, withOps bool) {
	f := cmd.Flags()
	f.StringVarP(&o.format, "format", "f", "", "image format; probed if omitted")
	f.StringVarP(&o.device, "mount", "m", "", "the device holding the guest's root filesystem (/dev/sda1, /dev/VG/LV); found when omitted")
	f.StringVar(&o.device, "root", "", "same as --mount")
	f.StringVar(&o.device, "partition", "", "same as --mount")
	f.BoolVarP(&o.dryRun, "dry-run", "n", false, "go through every edit in memory and print it; the image is not changed")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print nothing but errors")
	if withOps {
		for _, n := range customize.Names() {
			f.Var(&opFlag{name: n, ops: &o.ops}, n, customize.Help(n)+" ("+customize.Syntax(n)+")")
		}
		for _, n := range customize.OfflineNames() {
			f.Var(&opFlag{name: n, ops: &o.ops}, n, "refused: qimg edits offline and runs nothing in the guest (see --firstboot-command)")
		}
	}
}

// editSession is an image opened for editing, with its filesystem.
type editSession struct {
	img  image.Image
	disk *guestfs.Disk
	dev  string // the device of fsys
	fsys guestfs.WritableFileSystem
}

// openEdit opens imagePath writable (or, for a dry run, read-only under
// an in-memory overlay) and the root filesystem to edit.
func (o *editOptions) openEdit(e *env, imagePath string) (*editSession, error) {
	var img image.Image
	var err error
	if o.dryRun {
		img, _, err = openData(imagePath, o.format, false, e.chainPolicy())
	} else {
		if err := refuseUneditable(imagePath, o.format); err != nil {
			return nil, err
		}
		img, _, err = openData(imagePath, o.format, true, e.chainPolicy())
	}
	if err != nil {
		return nil, err
	}
	view := img
	if o.dryRun {
		view = image.NewOverlay(img)
	}
	disk, err := guestfs.Open(view, imagePath)
	if err == nil {
		err = o.pendingEdit(e, disk, imagePath)
	}
	dev := o.device
	if err == nil && dev == "" {
		dev, err = inspect.Root(disk)
	}
	if err == nil && o.checkRoot != nil {
		if err = o.checkRoot(disk, dev); err != nil {
			img.Close()
			return nil, err
		}
	}
	var fsys guestfs.WritableFileSystem
	if err == nil {
		var opts []guestfs.EditOption
		if !o.dryRun {
			opts = append(opts, guestfs.WithRedoLog(guestfs.RedoLogPath(imagePath)), guestfs.WithRedoTrace(e.redoTrace))
		}
		fsys, err = disk.MountWritable(dev, opts...)
	}
	if err != nil {
		img.Close()
		return nil, fail("%s", reason(imagePath, err))
	}
	return &editSession{img: img, disk: disk, dev: dev, fsys: fsys}, nil
}

// pendingEdit deals with an edit a crash interrupted, before the guest
// is inspected: a real edit finishes it (or drops it if it never
// committed); a dry run starts from the image as that edit leaves it,
// in memory.
func (o *editOptions) pendingEdit(e *env, disk *guestfs.Disk, imagePath string) error {
	log := guestfs.RedoLogPath(imagePath)
	if !o.dryRun {
		dev, err := disk.Recover(e.ctx, log, guestfs.WithRedoTrace(e.redoTrace))
		if dev != "" && !o.quiet {
			fmt.Fprintf(e.stderr, "qimg: finished the interrupted edit of %s recorded in %s\n", dev, log)
		}
		return err
	}
	dev, _, err := disk.ViewRedoLog(log) // the log stays open until the process ends
	if dv, ok := disk.Device(dev); ok && err == nil {
		dv.Image = image.NewOverlay(dv.Image)
	}
	return err
}

// refuseUneditable fails for formats qimg reads but does not write in
// place, saying how to convert first.
func refuseUneditable(path, format string) error {
	if format == "" {
		p, err := imgfmt.Probe(path)
		if err != nil {
			return nil // openData says what is wrong
		}
		format = p
	}
	if format == imgfmt.QCOW2 || format == imgfmt.Raw {
		return nil
	}
	return fail("%s is a %s image, which qimg reads but does not edit; convert it first: qimg convert -O qcow2 %s edited.qcow2", path, format, path)
}

// run applies ops and closes the image; any error leaves it unchanged.
func (o *editOptions) run(e *env, imagePath string, ops []customize.Op) error {
	if len(ops) == 0 {
		return usageError("no operation given")
	}
	s, err := o.openEdit(e, imagePath)
	if err != nil {
		return err
	}
	start := time.Now()
	var log io.Writer
	if !o.quiet {
		log = &stampWriter{w: e.stdout, start: start}
	}
	g := &customize.Guest{FS: s.fsys, Log: log}
	if o.dryRun {
		fmt.Fprintf(e.stdout, "Dry run: every edit is made in memory; %s is not changed\n", imagePath)
	}
	// A dry run commits to its in-memory overlay, so it goes through
	// every step of the real edit.
	err = customize.Apply(e.ctx, g, ops)
	cerr := s.img.Close()
	if err != nil {
		return fail("%s: %s", imagePath, reason(imagePath, err))
	}
	if cerr != nil {
		return fail("%s", reason(imagePath, cerr))
	}
	return nil
}

// stampWriter prefixes each line with the elapsed time, as
// virt-customize does ("[   0.3] Uploading: ...").
type stampWriter struct {
	w     io.Writer
	start time.Time
}

func (s *stampWriter) Write(p []byte) (int, error) {
	fmt.Fprintf(s.w, "[%6.1f] %s", time.Since(s.start).Seconds(), p)
	return len(p), nil
}

func newInjectCmd(e *env) *cobra.Command {
	var o editOptions
	cmd := &cobra.Command{
		Use:   "inject [-f FMT] [-m DEV] [--dry-run] IMAGE OPERATIONS...",
		Short: "Edit files inside an image, as virt-customize's file options do",
		Long: `Edit files inside a guest image in pure Go, with no kernel, appliance or
root: the operations apply in command-line order and are committed all at
once: an error or a crash leaves the image as it was, or with every
edit made. ext3 and ext4 commit through their journal; ext2 (and ext4
without a journal) and FAT through a redo log written beside the image
(IMAGE.qimg-redo, removed once the edit is in the image), which the next
qimg edit of the image finishes if qimg was killed. Paths are inside
the guest; symbolic links resolve within the guest. New files are
root:root 0644, new directories 0755. qcow2 (with backing files and
compressed clusters) and raw images are edited; ext2, ext3, ext4 and
FAT filesystems.`,
		Args: exactArgs(1, "Expecting one image"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(e, args[0], o.ops)
		},
	}
	o.flags(cmd, true)
	return cmd
}

func newCustomizeCmd(e *env) *cobra.Command {
	var o editOptions
	var disk string
	cmd := &cobra.Command{
		Use:   "customize -a IMAGE [-f FMT] [-m DEV] [--dry-run] OPERATIONS...",
		Short: "inject under virt-customize's name and -a flag",
		Args:  exactArgs(0, "Expecting no arguments: name the image with -a"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if disk == "" {
				return usageError("Expecting an image: -a IMAGE")
			}
			return o.run(e, disk, o.ops)
		},
	}
	cmd.Flags().StringVarP(&disk, "add", "a", "", "the image to customize")
	o.flags(cmd, true)
	return cmd
}

func newCopyInCmd(e *env) *cobra.Command {
	var o editOptions
	cmd := &cobra.Command{
		Use:   "copy-in [-f FMT] [-m DEV] IMAGE LOCAL... REMOTEDIR",
		Short: "Copy local files and directories into an image, as virt-copy-in does",
		Long: `Copy local files and directories recursively into the directory
REMOTEDIR (which must exist) inside a guest image, keeping modes and
symbolic links (copied as links, never followed); owners are root.`,
		Args: minArgs(3, "Expecting an image, at least one local path and a remote directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			remote := args[len(args)-1]
			var ops []customize.Op
			for _, local := range args[1 : len(args)-1] {
				op, err := customize.Parse("copy-in", local+":"+remote)
				if err != nil {
					return usageError("%s", err)
				}
				ops = append(ops, op)
			}
			return o.run(e, args[0], ops)
		},
	}
	o.flags(cmd, false)
	return cmd
}
