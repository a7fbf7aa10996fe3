package build

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/qimg/qimg/boot"
	"github.com/qimg/qimg/customize/seed"
	"github.com/qimg/qimg/guestfs/iso9660"
	"github.com/qimg/qimg/image"
)

// maxBootFile bounds a kernel or initrd copied out of the ISO (Ubuntu's
// initrd is about 100 MiB).
const maxBootFile = 1 << 30

// serialConsole comes last on the kernel command line: the last console=
// is /dev/console, where installers talk.
const serialConsole = "console=ttyS0,115200n8"

// media is what the installer boots from, in the temporary directory.
type media struct {
	layout Layout
	kernel string // the kernel, copied out of the ISO
	initrd string // the initrd with the answer file appended
	seed   string // a NoCloud seed holding the answers, or ""
	// cdroms are more ISOs for the machine (a Windows answer medium, a
	// driver ISO); diskBus and nic its devices ("" for virtio); reboots
	// lets the guest reboot (Windows' setup).
	cdroms       []string
	diskBus, nic string
	reboots      bool
	uefi         *boot.UEFI // nil for BIOS
}

// bus is the disk's bus as Glance's hw_disk_bus names it.
func (m media) bus() string {
	if m.diskBus == "" {
		return boot.BusVirtio
	}
	return m.diskBus
}

// nicModel is the NIC's model as Glance's hw_vif_model names it.
func (m media) nicModel() string {
	if m.nic == "" {
		return boot.NICVirtio
	}
	return m.nic
}

// answersAt says where the answer file went, for the progress line.
func (m media) answersAt() string {
	if m.layout.Name == "windows" {
		return "an autounattend medium (/" + autounattendName + ")"
	}
	if m.seed != "" {
		return "a NoCloud seed (user-data)"
	}
	return "the initrd (/" + m.layout.Answers + ")"
}

// args is the kernel command line: the layout's arguments, the caller's,
// and the serial console last; none without a kernel to boot.
func (m media) args(extra string) string {
	if m.kernel == "" {
		return ""
	}
	return strings.Join(strings.Fields(m.layout.Args+" "+extra+" "+serialConsole), " ")
}

// layoutFailures are the messages an installer prints on the serial
// console only when an install has failed. A function, not a table, so
// that the patterns compile when a build runs, not when any qimg
// command starts.
func layoutFailures(layout string) []boot.Marker {
	switch layout {
	case "debian-installer":
		return []boot.Marker{
			{Name: "installation step failed", Pattern: regexp.MustCompile(`An installation step failed`)},
			// With priority=critical, a dialog d-i still shows (its title
			// marked [!!]) is an error or a question the answers left open:
			// nobody will answer it, so the install is stuck. Seen here when
			// the mirror lacked udebs: "[!!] Download installer components".
			{Name: "installer dialog", Pattern: regexp.MustCompile(`\[!!\] \S.*`)},
		}
	case "anaconda":
		return []boot.Marker{{Name: "anaconda error", Pattern: regexp.MustCompile(`Pane is dead|The installation was stopped due to`)}}
	}
	return nil
}

// failures are the layout's failure markers and the caller's.
func (m media) failures(extra []*regexp.Regexp) []boot.Marker {
	fail := layoutFailures(m.layout.Name)
	for _, re := range extra {
		fail = append(fail, boot.Marker{Name: "/" + re.String() + "/", Pattern: re})
	}
	return fail
}

// prepare reads the ISO, finds its installer and writes the kernel, the
// initrd with the answers (or a seed) into dir.
func prepare(ctx context.Context, o Options, answers []byte, dir string) (media, error) {
	m, err := prepareOS(ctx, o, answers, dir)
	if err != nil || o.Firmware != UEFI {
		return m, err
	}
	m.uefi, err = uefiFirmware(dir)
	return m, err
}

// prepareOS prepares what the installer of o.OS boots from.
func prepareOS(ctx context.Context, o Options, answers []byte, dir string) (media, error) {
	if o.OS == "windows" {
		return prepareWindows(o, answers, dir)
	}
	var m media
	f, err := os.Open(o.ISO)
	if err != nil {
		return m, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return m, err
	}
	iso, err := iso9660.Open(f, st.Size(), o.ISO)
	if err != nil {
		return m, err
	}
	if o.Kernel != "" {
		m.layout, err = CustomLayout(iso, o.ISO, o.Kernel, o.Initrd, filepath.Base(o.Answers))
	} else {
		m.layout, err = FindLayout(iso, o.ISO, iso.VolumeID())
	}
	if err != nil {
		return m, err
	}
	m.kernel, m.initrd = filepath.Join(dir, "kernel"), filepath.Join(dir, "initrd")
	if err := copyOut(iso, o.ISO, m.layout.Kernel, m.kernel, nil); err != nil {
		return m, err
	}
	if m.layout.Answers == "" {
		m.seed = filepath.Join(dir, "seed.iso")
		return m, writeSeed(ctx, m.seed, answers)
	}
	var cpio bytes.Buffer
	if err := writeNewc(&cpio, []cpioEntry{{Name: m.layout.Answers, Mode: 0o644, Data: answers}}); err != nil {
		return m, image.FileErrorf(o.Answers, "%w: %w", err, image.ErrInvalidArgument)
	}
	return m, copyOut(iso, o.ISO, m.layout.Initrd, m.initrd, cpio.Bytes())
}

// copyOut copies the file p of iso to dst and appends tail. The kernel
// unpacks every archive of an initrd in turn, compressed or not, so a cpio
// archive appended to the distribution's adds its files (over the
// initrd's own of the same name). Archives start on four-byte boundaries.
func copyOut(iso fs.FS, isoName, p, dst string, tail []byte) error {
	src, err := iso.Open(p)
	if err != nil {
		return image.FileErrorf(isoName, "%s: %w", p, err)
	}
	defer src.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	n, err := io.Copy(out, io.LimitReader(src, maxBootFile+1))
	if err != nil {
		return image.FileErrorf(isoName, "%s: %w", p, err)
	}
	if n > maxBootFile {
		return image.FileErrorf(isoName, "%s is larger than %d MiB: %w", path.Base(p), maxBootFile>>20, image.ErrUnsupported)
	}
	if tail != nil {
		if _, err := io.WriteString(out, pad4(int(n%4))); err != nil {
			return err
		}
		if _, err := out.Write(tail); err != nil {
			return err
		}
	}
	return out.Close()
}

// writeSeed writes a NoCloud seed ISO whose user-data is answers.
func writeSeed(ctx context.Context, path string, answers []byte) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := seed.Build(ctx, f, seed.Config{UserData: answers}, seed.Options{}); err != nil {
		return err
	}
	return f.Close()
}

// describe is the progress line about what was found and prepared.
func (m media) describe(iso string) string {
	if m.layout.Name == "windows" {
		return iso + ": Windows installer, booted from its ISO; answers on " + m.answersAt()
	}
	return fmt.Sprintf("%s: %s layout (kernel %s, initrd %s); answers in %s", iso, m.layout.Name, m.layout.Kernel, m.layout.Initrd, m.answersAt())
}

// firmwareName names the machine's firmware for the progress line.
func firmwareName(u *boot.UEFI) string {
	if u != nil {
		return "UEFI"
	}
	return "BIOS"
}
