package inspect

import (
	"strings"

	"github.com/qimg/qimg/guestfs"
	"github.com/qimg/qimg/image"
)

// Root names the device a command works on when not told which: the
// root of the one operating system found, or else the only filesystem
// qimg reads (a seed ISO, a data disk). Several operating systems, or
// several filesystems and no OS, are an error listing them.
func Root(d *guestfs.Disk) (string, error) {
	found, _ := Inspect(d)
	switch len(found) {
	case 1:
		return found[0].Root, nil
	case 0:
		return d.OnlyFilesystem()
	}
	var roots []string
	for _, os := range found {
		roots = append(roots, os.Root)
	}
	return "", image.FileErrorf(d.Name, "several operating systems (roots %s): say which with -m: %w", strings.Join(roots, ", "), image.ErrInvalidArgument)
}
