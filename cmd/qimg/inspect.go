package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/guestfs"
	"github.com/qimg/qimg/guestfs/inspect"
)

func newInspectCmd(e *env) *cobra.Command {
	var format, output string
	cmd := &cobra.Command{
		Use:   "inspect [-f FMT] [--output=human|json] IMAGE",
		Short: "Find the operating systems inside an image",
		Long: `Find the operating systems inside a guest image, as virt-inspector does:
for each root filesystem, its type (linux or windows), distribution,
version, product name, architecture, hostname, package format and
manager, and the mount points of /etc/fstab resolved to the image's
devices (libguestfs's names: /dev/sda1, /dev/VG/LV).

Linux roots are read from ext2/3/4 and XFS, Windows roots from NTFS and their
SOFTWARE and SYSTEM registry hives. The image is only read, in any
format qimg reads, without a kernel, appliance or root. It is an error
when no operating system is found.`,
		Args: exactArgs(1, "Expecting one image file name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			img, disk, err := openDisk(e, args[0], format)
			if err != nil {
				return err
			}
			defer img.Close()
			oses, err := inspect.Inspect(disk)
			if len(oses) == 0 {
				return fail("%s", noOS(args[0], disk, err))
			}
			if output == "json" {
				var b []byte
				if b, err = json.MarshalIndent(oses, "", "    "); err == nil {
					_, err = fmt.Fprintf(e.stdout, "%s\n", b)
				}
				return err
			}
			return printOSes(e.stdout, oses)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&format, "format", "f", "", "image format; probed if omitted")
	f.StringVar(&output, "output", "human", "output format: human or json")
	return cmd
}

// noOS is the message when inspection finds nothing: what the image
// holds, and why filesystems could not be read.
func noOS(path string, disk *guestfs.Disk, err error) string {
	var what []string
	for _, dv := range disk.Devices {
		if dv.Content.Type != "" {
			what = append(what, dv.Name+" ("+dv.Content.Type+")")
		}
	}
	msg := fmt.Sprintf("%s: no operating system found", path)
	if len(what) == 0 {
		msg += "; no filesystem found"
	} else {
		msg += " on " + strings.Join(what, ", ") + "; qimg reads " + strings.Join(guestfs.Readable(), ", ")
	}
	if err != nil {
		msg += "\n" + reason(path, err)
	}
	return msg
}

// printOSes prints what virt-inspector's report holds, one block per
// root.
func printOSes(w io.Writer, oses []inspect.OS) error {
	var b strings.Builder
	for i, os := range oses {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "Root: %s\n", os.Root)
		field := func(name, v string) {
			if v != "" {
				fmt.Fprintf(&b, "  %-19s %s\n", name+":", v)
			}
		}
		field("Type", os.Type)
		field("Distro", os.Distro)
		field("Product name", os.ProductName)
		field("Product variant", os.ProductVariant)
		field("Version", fmt.Sprintf("%d.%d", os.MajorVersion, os.MinorVersion))
		field("Build", os.Build)
		field("Edition", os.Edition)
		field("Arch", os.Arch)
		field("Hostname", os.Hostname)
		field("Package format", os.PackageFormat)
		field("Package management", os.PackageManagement)
		field("System root", os.SystemRoot)
		if os.VirtioStorage != nil {
			field("Virtio storage", map[bool]string{true: "yes", false: "no (give the instance a SATA or IDE disk, or install the virtio-win drivers, or it will not boot: INACCESSIBLE_BOOT_DEVICE)"}[*os.VirtioStorage])
		}
		b.WriteString("  Mountpoints:\n")
		width := 0
		for _, m := range os.Mountpoints {
			width = max(width, len(m.Path))
		}
		for _, m := range os.Mountpoints {
			fmt.Fprintf(&b, "    %-*s %s\n", width, m.Path, m.Device)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
