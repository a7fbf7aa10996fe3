package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/customize"
	"github.com/qimg/qimg/customize/sysprep"
	"github.com/qimg/qimg/guestfs"
	"github.com/qimg/qimg/guestfs/inspect"
)

// sysprepOptions are the flags of qimg sysprep.
type sysprepOptions struct {
	edit       editOptions
	disk       string
	operations []string
	enable     string
	list       bool
}

func newSysprepCmd(e *env) *cobra.Command {
	var o sysprepOptions
	cmd := &cobra.Command{
		Use:   "sysprep [-f FMT] [-m DEV] [--operations LIST] [--dry-run] [-a IMAGE | IMAGE]",
		Short: "Prepare a Linux guest image for cloning, as virt-sysprep does",
		Long: `Remove what makes a guest one machine, in pure Go with no appliance: the
machine ID, ssh host keys, network configuration bound to MAC addresses,
DHCP leases, cloud-init's instance state, logs, histories, temporary files
and caches. Operations have virt-sysprep's names; --list-operations shows
them, '*' marking those run by default. --operations takes a comma
separated list of names, "defaults" and "all", and "-NAME" to leave one
out (--operations defaults,-ssh-userdir); --enable names exactly the
operations to run. Every change is printed and committed at once; with
--dry-run, on an in-memory copy, so the image is not changed.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.list {
				_, err := io.WriteString(e.stdout, sysprep.List())
				return err
			}
			return o.run(e, args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.disk, "add", "a", "", "the image to prepare")
	f.Var(&listFlag{&o.operations}, "operations", "operations to add (NAME, defaults, all) or, as -NAME, remove; comma separated")
	f.Var(&listFlag{&o.operations}, "operation", "same as --operations")
	f.StringVar(&o.enable, "enable", "", "run exactly these operations (comma separated)")
	f.BoolVar(&o.list, "list-operations", false, "list the operations ('*': on by default) and exit")
	o.edit.flags(cmd, false)
	return cmd
}

func (o *sysprepOptions) run(e *env, args []string) error {
	imagePath, err := o.image(args)
	if err != nil {
		return err
	}
	ops, err := sysprep.Select(o.enable, o.operations)
	if err != nil {
		return usageError("%s", err)
	}
	if len(ops) == 0 {
		return usageError("no operation selected")
	}
	var guest inspect.OS
	o.edit.checkRoot = func(d *guestfs.Disk, dev string) error {
		var rerr error
		guest, rerr = linuxRoot(imagePath, d, dev)
		return rerr
	}
	start := time.Now()
	s, err := o.edit.openEdit(e, imagePath)
	if err != nil {
		return err
	}
	var log io.Writer
	if !o.edit.quiet {
		log = &stampWriter{w: e.stdout, start: start}
	}
	if o.edit.dryRun {
		fmt.Fprintf(e.stdout, "Dry run: every change is made in memory; %s is not changed\n", imagePath)
	}
	if log != nil {
		fmt.Fprintf(log, "Preparing %s (%s on %s)\n", imagePath, guest.ProductName, s.dev)
		for _, w := range separateMounts(guest) {
			fmt.Fprintf(log, "Warning: %s\n", w)
		}
	}
	g := &customize.Guest{FS: s.fsys, Log: log}
	err = sysprep.Run(e.ctx, g, guest, ops)
	cerr := s.img.Close()
	if err != nil {
		return fail("%s: %s", imagePath, reason(imagePath, err))
	}
	if cerr != nil {
		return fail("%s", reason(imagePath, cerr))
	}
	return nil
}

// image is the image named by -a or as the argument (one of them).
func (o *sysprepOptions) image(args []string) (string, error) {
	switch {
	case len(args) > 1:
		return "", usageError("Unexpected argument: %s", args[1])
	case len(args) == 1 && o.disk != "":
		return "", usageError("Expecting one image: -a %s or %s, not both", o.disk, args[0])
	case len(args) == 1:
		return args[0], nil
	case o.disk != "":
		return o.disk, nil
	}
	return "", usageError("Expecting an image: -a IMAGE")
}

// linuxRoot is the operating system inspection finds on dev, which must
// be Linux: a Windows guest is generalized from inside, by Windows.
func linuxRoot(imagePath string, d *guestfs.Disk, dev string) (inspect.OS, error) {
	found, err := inspect.Inspect(d)
	for _, os := range found {
		if os.Root != dev {
			continue
		}
		if os.Type == "windows" {
			return os, fail("%s holds %s: qimg cannot edit NTFS, and Windows is prepared for cloning from inside: "+
				"run sysprep /generalize /oobe /shutdown there (with cloudbase-init's unattend file), "+
				"and give each instance its settings with a config drive (qimg seed --config-drive)", imagePath, os.ProductName)
		}
		return os, nil
	}
	if err != nil {
		return inspect.OS{}, fail("%s: %s", imagePath, reason(imagePath, err))
	}
	return inspect.OS{}, fail("%s: no Linux operating system on %s, nothing to prepare (name the root with -m)", imagePath, dev)
}

// separateMounts warns about the filesystems the guest mounts below
// the directories sysprep cleans: only the root filesystem is edited.
func separateMounts(os inspect.OS) []string {
	var warnings []string
	for _, m := range os.Mountpoints {
		for _, dir := range []string{"/var", "/home", "/root", "/tmp", "/srv"} {
			if m.Path == dir || strings.HasPrefix(m.Path, dir+"/") {
				warnings = append(warnings, fmt.Sprintf("%s is a separate filesystem (%s), which qimg sysprep does not clean", m.Path, m.Device))
				break
			}
		}
	}
	return warnings
}

// listFlag appends each occurrence of an option, under any of its
// names, to one list.
type listFlag struct{ list *[]string }

func (f *listFlag) String() string { return "" }
func (f *listFlag) Type() string   { return "LIST" }
func (f *listFlag) Set(v string) error {
	*f.list = append(*f.list, v)
	return nil
}
