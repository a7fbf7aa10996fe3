package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/guestfs"
)

func newFilesystemsCmd(e *env) *cobra.Command {
	var format, output string
	cmd := &cobra.Command{
		Use:   "filesystems [-f FMT] [--output=human|json] IMAGE",
		Short: "List the partitions, volumes and filesystems inside an image",
		Long: `List what a guest image holds, as virt-filesystems --long --all --uuid
does: every filesystem (and swap, LUKS or other content, named by type),
LVM2 logical volumes, volume groups and physical volumes, partitions and
the disk, with libguestfs's device names (/dev/sda1, /dev/VG/LV), label,
MBR partition type, size in bytes, parent device and UUID.

The image is only read, in any format qimg reads, without a kernel,
appliance or root.`,
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
			entries := disk.Entries()
			if output == "json" {
				var b []byte
				if b, err = json.MarshalIndent(entries, "", "    "); err == nil {
					_, err = fmt.Fprintf(e.stdout, "%s\n", b)
				}
			} else {
				_, err = fmt.Fprint(e.stdout, entriesTable(entries))
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&format, "format", "f", "", "image format; probed if omitted")
	f.StringVar(&output, "output", "human", "output format: human or json")
	return cmd
}

// entriesTable is the listing as virt-filesystems prints it: a header and
// left-aligned columns, "-" for what a row does not have.
func entriesTable(entries []guestfs.Entry) string {
	rows := [][]string{{"Name", "Type", "VFS", "Label", "MBR", "Size", "Parent", "UUID"}}
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, en := range entries {
		rows = append(rows, []string{en.Name, en.Type, dash(en.VFS), dash(en.Label), dash(en.MBR),
			strconv.FormatInt(en.Size, 10), dash(en.Parent), dash(en.UUID)})
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len(c))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, c := range r {
			if i == len(r)-1 {
				b.WriteString(c + "\n")
			} else {
				fmt.Fprintf(&b, "%-*s ", widths[i], c)
			}
		}
	}
	return b.String()
}
