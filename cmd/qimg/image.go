package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/cmd/qimg/internal/osc"
	"github.com/qimg/qimg/internal/atomicfile"
	"github.com/qimg/qimg/openstack"
)

func newImageCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image list|show|set|unset|delete|save",
		Short: "Manage OpenStack Glance images as the openstack CLI does",
		Long: `Manage the images of an OpenStack cloud with the openstack CLI's image
commands, flags and output (-f table|json|value, -c COLUMN). The cloud
comes from --os-cloud / OS_CLOUD (clouds.yaml) or the OS_* variables.
Images are named by ID or by name (a name several images share is an
error).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError("Expecting a subcommand: list, show, set, unset, delete or save")
		},
	}
	cmd.AddCommand(newImageListCmd(e), newImageShowCmd(e), newImageSetCmd(e), newImageUnsetCmd(e),
		newImageDeleteCmd(e), newImageSaveCmd(e))
	for _, c := range cmd.Commands() {
		c.Flags().SortFlags = false
		c.SilenceErrors, c.SilenceUsage = true, true
	}
	return cmd
}

func newImageListCmd(e *env) *cobra.Command {
	var cloud cloudFlags
	var out outputFlags
	var long, hidden bool
	var name, status, memberStatus, marker, sortSpec string
	var props, tags []string
	var limit int
	cmd := &cobra.Command{
		Use:   "list [--long] [--name N] [--status S] [--tag T] [--property K=V] [--public|--private|--shared|--community]",
		Short: "List images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			q := url.Values{}
			vis, err := visibility(cmd)
			if err != nil {
				return err
			}
			p, err := parseProperties(props)
			if err != nil {
				return err
			}
			for k, v := range p {
				q.Set(k, v)
			}
			for k, v := range map[string]string{"visibility": vis, "name": name, "status": status,
				"member_status": memberStatus, "marker": marker} {
				if v != "" {
					q.Set(k, v)
				}
			}
			for _, t := range tags {
				q.Add("tag", t)
			}
			if hidden {
				q.Set("os_hidden", "true")
			}
			if limit > 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			cl, err := cloud.connect(e, cmd)
			if err != nil {
				return err
			}
			images, err := cl.ListImages(e.ctx, q, limit)
			if err != nil {
				return fail("%v", err)
			}
			if err := sortImages(images, sortSpec); err != nil {
				return err
			}
			names, rows := listRows(images, long)
			if err := osc.List(e.stdout, out.format, names, rows, out.columns); err != nil {
				return usageError("%v", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	addVisibilityFlags(f, "list images")
	f.StringArrayVar(&props, "property", nil, "only images with this property KEY=VALUE (repeatable)")
	f.StringVar(&name, "name", "", "only images of this name")
	f.StringVar(&status, "status", "", "only images of this status")
	f.StringVar(&memberStatus, "member-status", "", "only images of this member status (accepted, pending, rejected, all)")
	f.StringArrayVar(&tags, "tag", nil, "only images with this tag (repeatable)")
	f.BoolVar(&hidden, "hidden", false, "list hidden images")
	f.BoolVar(&long, "long", false, "list more columns")
	f.IntVar(&limit, "limit", 0, "at most this many images")
	f.StringVar(&marker, "marker", "", "start after this image ID")
	f.StringVar(&sortSpec, "sort", "name:asc", "sort by KEY[:asc|desc][,KEY...]")
	out.add(f)
	cloud.add(f)
	return cmd
}

// findImage connects and finds one image by name or ID.
func findImage(e *env, cmd *cobra.Command, cloud *cloudFlags, nameOrID string) (*openstack.Client, openstack.Image, error) {
	cl, err := cloud.connect(e, cmd)
	if err != nil {
		return nil, nil, err
	}
	im, err := cl.FindImage(e.ctx, nameOrID)
	if err != nil {
		return nil, nil, fail("%v", err)
	}
	return cl, im, nil
}

func newImageShowCmd(e *env) *cobra.Command {
	var cloud cloudFlags
	var out outputFlags
	var human bool
	cmd := &cobra.Command{
		Use:   "show IMAGE",
		Short: "Show an image's fields and properties",
		Args:  exactArgs(1, "Expecting an image name or ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			_, im, err := findImage(e, cmd, &cloud, args[0])
			if err != nil {
				return err
			}
			if err := osc.Show(e.stdout, out.format, imageFields(im, human), out.columns); err != nil {
				return usageError("%v", err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&human, "human-readable", false, "print the size in K, M, G (powers of 1000)")
	out.add(cmd.Flags())
	cloud.add(cmd.Flags())
	return cmd
}

// setOptions are `openstack image set`'s flags.
type setOptions struct {
	name, containerFormat, diskFormat             string
	architecture, instanceID, kernelID, ramdiskID string
	osDistro, osVersion                           string
	minDisk, minRAM                               int
	protected, unprotected, hidden, unhidden      bool
	props, tags                                   []string
}

// patch is the JSON patch that makes im what the flags ask.
func (s *setOptions) patch(cmd *cobra.Command, im openstack.Image) ([]openstack.PatchOp, error) {
	var ops []openstack.PatchOp
	set := func(field string, v any) {
		op := "add"
		if _, ok := im[field]; ok {
			op = "replace"
		}
		ops = append(ops, openstack.PatchOp{Op: op, Path: "/" + field, Value: v})
	}
	changed := cmd.Flags().Changed
	for flag, field := range map[string]string{"name": "name", "container-format": "container_format",
		"disk-format": "disk_format", "architecture": "architecture", "instance-id": "instance_uuid",
		"kernel-id": "kernel_id", "ramdisk-id": "ramdisk_id", "os-distro": "os_distro", "os-version": "os_version"} {
		if changed(flag) {
			v, _ := cmd.Flags().GetString(flag)
			set(field, v)
		}
	}
	if changed("min-disk") {
		set("min_disk", s.minDisk)
	}
	if changed("min-ram") {
		set("min_ram", s.minRAM)
	}
	if s.protected || s.unprotected {
		set("protected", s.protected)
	}
	if s.hidden || s.unhidden {
		set("os_hidden", s.hidden)
	}
	vis, err := visibility(cmd)
	if err != nil {
		return nil, err
	}
	if vis != "" {
		set("visibility", vis)
	}
	props, err := parseProperties(s.props)
	if err != nil {
		return nil, err
	}
	for k, v := range props {
		set(k, v)
	}
	if len(s.tags) > 0 {
		tags := im.Tags()
		for _, t := range s.tags {
			if !slices.Contains(tags, t) {
				tags = append(tags, t)
			}
		}
		set("tags", tags)
	}
	return ops, nil
}

func newImageSetCmd(e *env) *cobra.Command {
	var cloud cloudFlags
	var s setOptions
	cmd := &cobra.Command{
		Use:   "set [flags] IMAGE",
		Short: "Change an image's fields, properties, tags or visibility",
		Args:  exactArgs(1, "Expecting an image name or ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if s.protected && s.unprotected || s.hidden && s.unhidden {
				return usageError("--protected/--unprotected and --hidden/--unhidden exclude each other")
			}
			cl, im, err := findImage(e, cmd, &cloud, args[0])
			if err != nil {
				return err
			}
			ops, err := s.patch(cmd, im)
			if err != nil || len(ops) == 0 {
				return err
			}
			if _, err := cl.UpdateImage(e.ctx, im.ID(), ops); err != nil {
				return fail("%v", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&s.name, "name", "", "new name")
	f.IntVar(&s.minDisk, "min-disk", 0, "minimum disk size in GiB")
	f.IntVar(&s.minRAM, "min-ram", 0, "minimum RAM in MiB")
	f.StringVar(&s.containerFormat, "container-format", "", "container format")
	f.StringVar(&s.diskFormat, "disk-format", "", "disk format (only while the image is queued)")
	f.BoolVar(&s.protected, "protected", false, "protect from deletion")
	f.BoolVar(&s.unprotected, "unprotected", false, "allow deletion")
	addVisibilityFlags(f, "make the image")
	f.StringArrayVar(&s.props, "property", nil, "set a property KEY=VALUE (repeatable)")
	f.StringArrayVar(&s.tags, "tag", nil, "add a tag (repeatable)")
	f.StringVar(&s.architecture, "architecture", "", "operating system architecture")
	f.StringVar(&s.instanceID, "instance-id", "", "ID of the server the image was made from")
	f.StringVar(&s.kernelID, "kernel-id", "", "ID of the kernel image")
	f.StringVar(&s.ramdiskID, "ramdisk-id", "", "ID of the ramdisk image")
	f.StringVar(&s.osDistro, "os-distro", "", "operating system distribution")
	f.StringVar(&s.osVersion, "os-version", "", "operating system version")
	f.BoolVar(&s.hidden, "hidden", false, "hide the image from default lists")
	f.BoolVar(&s.unhidden, "unhidden", false, "list the image again")
	cloud.add(f)
	return cmd
}

func newImageUnsetCmd(e *env) *cobra.Command {
	var cloud cloudFlags
	var tags, props []string
	cmd := &cobra.Command{
		Use:   "unset [--tag T] [--property KEY] IMAGE",
		Short: "Remove tags or properties of an image",
		Args:  exactArgs(1, "Expecting an image name or ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, im, err := findImage(e, cmd, &cloud, args[0])
			if err != nil {
				return err
			}
			var ops []openstack.PatchOp
			var missing []string
			for _, p := range props {
				if _, ok := im[p]; !ok || !openstack.IsProperty(p) {
					missing = append(missing, "property "+p)
					continue
				}
				ops = append(ops, openstack.PatchOp{Op: "remove", Path: "/" + p})
			}
			if len(tags) > 0 {
				kept := slices.DeleteFunc(im.Tags(), func(t string) bool { return slices.Contains(tags, t) })
				for _, t := range tags {
					if !slices.Contains(im.Tags(), t) {
						missing = append(missing, "tag "+t)
					}
				}
				ops = append(ops, openstack.PatchOp{Op: "replace", Path: "/tags", Value: kept})
			}
			if len(ops) > 0 {
				if _, err := cl.UpdateImage(e.ctx, im.ID(), ops); err != nil {
					return fail("%v", err)
				}
			}
			if len(missing) > 0 {
				return fail("image %s has no %v", im.ID(), missing)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "remove this tag (repeatable)")
	cmd.Flags().StringArrayVar(&props, "property", nil, "remove this property (repeatable)")
	cloud.add(cmd.Flags())
	return cmd
}

func newImageDeleteCmd(e *env) *cobra.Command {
	var cloud cloudFlags
	cmd := &cobra.Command{
		Use:   "delete IMAGE [IMAGE...]",
		Short: "Delete images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := cloud.connect(e, cmd)
			if err != nil {
				return err
			}
			failed := 0
			for _, a := range args {
				im, err := cl.FindImage(e.ctx, a)
				if err == nil {
					err = cl.DeleteImage(e.ctx, im.ID())
				}
				if err != nil {
					failed++
					fmt.Fprintf(e.stderr, "qimg: failed to delete image with name or ID '%s': %v\n", a, err)
				}
			}
			if failed > 0 {
				return fail("%d of %d images failed to delete.", failed, len(args))
			}
			return nil
		},
	}
	cloud.add(cmd.Flags())
	return cmd
}

func newImageSaveCmd(e *env) *cobra.Command {
	var cloud cloudFlags
	var file string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "save [--file FILE] IMAGE",
		Short: "Download an image's data, verified against its checksums",
		Long: `Download an image's data to FILE (standard output without --file),
streaming, and compare its size and a digest with Glance's record (sha512
with os_hash_value, or md5 with checksum when the cloud keeps no sha512).
A FILE is written beside its final name and
renamed into place only when the data matched; on a mismatch nothing is
left at FILE and the exit code is 1.`,
		Args: exactArgs(1, "Expecting an image name or ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, im, err := findImage(e, cmd, &cloud, args[0])
			if err != nil {
				return err
			}
			if file == "" {
				if _, err := cl.Save(e.ctx, im, e.stdout, nil); err != nil {
					return fail("%v", err)
				}
				return nil
			}
			bar := newRateBar(e.stderr, !quiet)
			err = atomicfile.Write(file, false, func(f *os.File) error {
				_, err := cl.Save(e.ctx, im, f, bar.update)
				return err
			})
			bar.done()
			if errors.Is(err, openstack.ErrHashMismatch) {
				return fail("%v\n%s was not written", err, file)
			}
			if err != nil {
				return fail("%v", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "write to FILE (default: standard output)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	cloud.add(cmd.Flags())
	return cmd
}
