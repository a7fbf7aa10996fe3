package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/cmd/qimg/internal/osc"
	"github.com/qimg/qimg/openstack"
)

func newUploadCmd(e *env) *cobra.Command {
	var cloud cloudFlags
	var out outputFlags
	var o openstack.UploadOptions
	var props []string
	var url string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "upload IMAGE --name NAME [flags]",
		Short: "Upload an image to OpenStack Glance, checked first and verified after",
		Long: `Upload a disk image to an OpenStack cloud's image service (Glance).

Before a byte is sent, the image is checked as Glance's format inspector
and Nova do: its real format must match --disk-format (default: the
detected format); a qcow2 with a backing file, an external data file or
unknown incompatible features is refused, as is an image whose data is in
other files (VMDK extents) or that 'qimg check' finds corrupt; zstd
compression gives a warning.

The data is streamed with a Content-Length in constant memory, hashed on
the way (sha512), and compared with Glance's os_hash_value (its md5
checksum on a cloud without one) once the image is active; a mismatch
deletes the image.
Ctrl-C deletes the half-made image; a transfer cut by the network or a
server error is retried. Guest inspection suggests properties (os_type,
os_distro, os_version, architecture, hw_disk_bus, hw_vif_model,
hw_qemu_guest_agent, hw_firmware_type=uefi) and min_disk (the virtual
size in GiB); --property and --min-disk override them, --no-presets
turns them off.

--convert raw streams the guest disk as raw (for Ceph-backed clouds);
--convert qcow2 converts into a temporary file first. --import
glance-direct stages the data and lets Glance import it; --import
web-download --url U makes Glance fetch the image itself.

The cloud comes from --os-cloud / OS_CLOUD (clouds.yaml in ., ~/.config/
openstack or /etc/openstack, with secure.yaml) or the OS_* variables of
an openrc file, as for the openstack CLI. The new image is printed as
'qimg image show' prints it.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			if o.Name == "" {
				return usageError("--name is required")
			}
			var err error
			if o.Properties, err = parseProperties(props); err != nil {
				return err
			}
			if o.Visibility, err = visibility(cmd); err != nil {
				return err
			}
			webDownload := o.Import == openstack.WebDownload
			switch {
			case webDownload && (url == "" || len(args) > 0):
				return usageError("--import web-download takes --url and no IMAGE")
			case !webDownload && url != "":
				return usageError("--url goes with --import web-download")
			case !webDownload && len(args) == 0:
				return usageError("Expecting one image file name")
			}
			if o.Retries == 0 {
				o.Retries = -1 // none; the package's zero value means its default
			}
			cl, err := cloud.connect(e, cmd)
			if err != nil {
				return err
			}
			bar := newRateBar(e.stderr, !quiet)
			o.Progress = bar.update
			o.Warn = func(msg string) { fmt.Fprintf(e.stderr, "qimg: warning: %s\n", msg) }
			var res *openstack.UploadResult
			if webDownload {
				res, err = cl.ImportURL(e.ctx, url, o)
			} else {
				res, err = cl.Upload(e.ctx, args[0], o)
			}
			bar.done()
			if err != nil {
				return uploadFailure(err)
			}
			if res.Skipped && !quiet {
				fmt.Fprintf(e.stderr, "qimg: image %s (%s) already holds this data (os_hash_value %s...): nothing uploaded\n",
					res.Image.ID(), res.Image.Name(), res.Digests.SHA512[:16])
			}
			return osc.Show(e.stdout, out.format, imageFields(res.Image, false), out.columns)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Name, "name", "", "image name (required)")
	f.StringVar(&o.DiskFormat, "disk-format", "", "Glance disk_format (default: the detected format); must match the data")
	f.StringVar(&o.ContainerFormat, "container-format", "bare", "Glance container_format")
	f.StringVar(&o.Convert, "convert", "", "convert on the way: raw (streamed) or qcow2 (through a temporary file)")
	f.StringVar(&o.TempDir, "tmpdir", "", "directory for --convert qcow2's temporary file (default: $TMPDIR)")
	f.IntVar(&o.MinDisk, "min-disk", 0, "minimum disk size in GiB (default: the virtual size, rounded up)")
	f.IntVar(&o.MinRAM, "min-ram", 0, "minimum RAM in MiB")
	addVisibilityFlags(f, "image is")
	f.BoolVar(&o.Protected, "protected", false, "protect the image from deletion")
	f.StringArrayVar(&props, "property", nil, "set a property KEY=VALUE (repeatable)")
	f.StringArrayVar(&o.Tags, "tag", nil, "add a tag (repeatable)")
	f.BoolVar(&o.NoPresets, "no-presets", false, "do not set properties from guest inspection nor min_disk from the virtual size")
	f.BoolVar(&o.SkipExisting, "skip-existing", false, "upload nothing if an active image with the same sha512 exists")
	f.StringVar(&o.Import, "import", "", "interoperable import method: glance-direct or web-download")
	f.StringVar(&url, "url", "", "the URL Glance fetches with --import web-download")
	f.StringSliceVar(&o.Stores, "stores", nil, "stores to import into (comma-separated; multi-store clouds)")
	f.IntVar(&o.Retries, "retries", 2, "how often a failed transfer is tried again")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	out.add(f)
	cloud.add(f)
	return cmd
}

// uploadFailure words an upload error for the user.
func uploadFailure(err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, openstack.ErrRefused):
		msg = strings.TrimSuffix(msg, ": "+openstack.ErrRefused.Error()) + "\nnothing was uploaded"
	case errors.Is(err, openstack.ErrHashMismatch):
		msg += "\nthe data was damaged on the way or by the cloud"
	}
	return fail("%s", msg)
}
