package build

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/qimg/qimg/boot"
	"github.com/qimg/qimg/convert"
	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/image"
)

// Defaults.
const (
	DefaultSize        = 10 << 30 // bytes
	DefaultMemory      = 2048     // MiB: d-i needs 512, anaconda and subiquity more
	DefaultCPUs        = 2
	DefaultStatusEvery = time.Minute
	// maxAnswers bounds the answer file, which is read into memory.
	maxAnswers = 16 << 20
)

// Options say what to install and where.
type Options struct {
	ISO     string // the installer ISO
	Answers string // preseed, kickstart or autoinstall user-data
	Output  string // the new qcow2 image; replaced only when complete
	Size    int64  // virtual size in bytes; 0 is DefaultSize
	Memory  int    // MiB; 0 is DefaultMemory
	CPUs    int    // 0 is DefaultCPUs
	// OS is the installer's operating system: "" or "linux", or
	// "windows" (see windows.go: an autounattend medium, no kernel).
	OS string
	// Drivers is a driver ISO for Windows (virtio-win): with it the disk
	// and the NIC are virtio, without SATA and e1000.
	Drivers string
	// ExtraISOs are attached as more CD-ROMs, read-only.
	ExtraISOs []string
	// Firmware is BIOS ("" too) or UEFI (OVMF, with a copy of its
	// variable store in the temporary directory).
	Firmware string
	// Backend runs the installer's machine: QEMUBackend (nil too),
	// LibvirtBackend, or what AutoBackend picks.
	Backend Backend
	// Kernel and Initrd, paths inside the ISO, name the installer's
	// kernel and initrd for a layout FindLayout does not know; the
	// answer file then goes into the initrd's root under its own base
	// name. Append adds kernel arguments (after the layout's).
	Kernel, Initrd, Append string
	// Fail are console lines that fail the install at once, besides the
	// layout's and boot's (a kernel panic).
	Fail []*regexp.Regexp
	// Timeout for the install; 0 is boot.DefaultRunTimeout.
	Timeout time.Duration
	// Compress writes a compressed qcow2 (convert), else the disk the
	// installer wrote is renamed into place.
	Compress bool
	// AfterInstall, if set, edits the installed disk (a qcow2 at path)
	// before it becomes the output: qimg build runs sysprep there.
	AfterInstall func(ctx context.Context, path string) error
	// Accel is boot.KVM or boot.TCG; "" picks KVM when it works.
	Accel string
	// Console receives the installer's clean console lines; Log, if not
	// empty, is a file for the raw bytes; Progress receives one line per
	// phase. Each may be nil or empty.
	Console  io.Writer
	Log      string
	Progress io.Writer
	// StatusEvery is how often, while the installer runs, Progress gets
	// a line with the time so far and the console's last line; 0 is
	// DefaultStatusEvery, a negative value never.
	StatusEvery time.Duration
	// QEMU is the emulator ("" is qemu-system-x86_64); TempDir is where
	// the private temporary directory (kernel, initrd, seed, sockets) is
	// made, "" for os.TempDir().
	QEMU, TempDir string
}

// Result is how a build went.
type Result struct {
	Layout  Layout
	Install *boot.Result // the installer's run; nil if it did not start
	Output  string
	// Properties are the Glance image properties the result needs to
	// boot on OpenStack as it was installed (hw_disk_bus, hw_vif_model,
	// os_type, hw_firmware_type); empty when the defaults do.
	Properties map[string]string
}

// Build installs the operating system of o.ISO into a new disk image at
// o.Output, unattended, as the package comment describes. With an error
// the Result holds what is known so far (its Install the console's tail
// once QEMU has started); o.Output is then untouched.
func Build(ctx context.Context, o Options) (*Result, error) {
	o, err := o.resolved()
	if err != nil {
		return nil, err
	}
	answers, err := readAnswers(o.Answers)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(o.TempDir, "qimg-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	res := &Result{Output: o.Output}
	media, err := prepare(ctx, o, answers, tmp)
	res.Layout = media.layout
	if err != nil {
		return res, err
	}
	res.Properties = glanceProperties(o, media)
	o.progress("%s", media.describe(o.ISO))
	disk, err := newDisk(o.Output, o.Size)
	if err != nil {
		return res, err
	}
	defer os.Remove(disk) // renamed away on success
	res.Install, err = install(ctx, o, media, disk)
	if err != nil {
		return res, err
	}
	if o.AfterInstall != nil {
		o.progress("post-processing %s", disk)
		if err := o.AfterInstall(ctx, disk); err != nil {
			return res, err
		}
	}
	return res, finish(ctx, o, disk)
}

// resolved checks o and fills in the defaults.
func (o Options) resolved() (Options, error) {
	switch {
	case o.ISO == "" || o.Answers == "" || o.Output == "":
		return o, image.Errorf(image.ErrInvalidArgument, "build: an installer ISO, an answer file and an output are needed")
	case o.OS != "" && o.OS != "linux" && o.OS != "windows":
		return o, image.Errorf(image.ErrUnsupported, "build: %q installers are not supported (linux or windows)", o.OS)
	case o.OS == "windows" && (o.Kernel != "" || o.Append != ""):
		return o, image.Errorf(image.ErrInvalidArgument, "build: a Windows installer boots from its ISO: no kernel or kernel arguments")
	case o.OS != "windows" && o.Drivers != "":
		return o, image.Errorf(image.ErrInvalidArgument, "build: a driver ISO is for Windows installs")
	case o.Firmware != "" && o.Firmware != BIOS && o.Firmware != UEFI:
		return o, image.Errorf(image.ErrInvalidArgument, "build: firmware %q is neither bios nor uefi", o.Firmware)
	case (o.Kernel == "") != (o.Initrd == ""):
		return o, image.Errorf(image.ErrInvalidArgument, "build: name both the kernel and the initrd in the ISO, or neither")
	case o.Size < 0 || o.Size > 0 && o.Size < 1<<20:
		return o, image.Errorf(image.ErrInvalidArgument, "build: disk size %d bytes is too small", o.Size)
	}
	if o.Size == 0 {
		o.Size = DefaultSize
	}
	if o.Memory == 0 {
		o.Memory = DefaultMemory
	}
	if o.CPUs == 0 {
		o.CPUs = DefaultCPUs
	}
	if o.Backend == nil {
		o.Backend = QEMUBackend{}
	}
	return o, nil
}

// progress writes one line about the build's phase.
func (o Options) progress(f string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "build: "+f+"\n", args...)
	}
}

// readAnswers reads the answer file, bounded.
func readAnswers(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxAnswers+1))
	if err != nil {
		return nil, image.FileErrorf(path, "%w", err)
	}
	if len(b) > maxAnswers {
		return nil, image.FileErrorf(path, "answer file larger than %d MiB: %w", maxAnswers>>20, image.ErrInvalidArgument)
	}
	return b, nil
}

// newDisk creates the empty qcow2 the installer writes, beside output so
// that it can be renamed into place, and returns its path.
func newDisk(output string, size int64) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(output), "."+filepath.Base(output)+".install-*")
	if err != nil {
		return "", err
	}
	t, err := format.Create(f, f.Name(), format.QCOW2, size, format.CreateOptions{})
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	if err := t.Close(); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// install runs the installer until it powers off.
func install(ctx context.Context, o Options, media media, disk string) (*boot.Result, error) {
	m := o.machine(media, disk)
	o.progress("installing into a %d MiB disk (%d MiB of memory, %d CPUs, %s disk, %s) through %s",
		o.Size>>20, o.Memory, o.CPUs, media.bus(), firmwareName(media.uefi), o.Backend)
	status := &lastLine{}
	m.Console = status
	if o.Console != nil {
		m.Console = io.MultiWriter(o.Console, status)
	}
	stop := o.reportStatus(status)
	r, err := o.Backend.Run(ctx, m)
	stop()
	if err != nil {
		return r, fmt.Errorf("build: install from %s: %w", o.ISO, err)
	}
	o.progress("installed under %s (%s) in %.1fs", r.Accel, o.Backend, r.Elapsed.Seconds())
	return r, nil
}

// machine is the installer's machine: the disk the installer writes, the
// ISO, what prepare made, the caller's other ISOs.
func (o Options) machine(media media, disk string) boot.Machine {
	return boot.Machine{
		Disk: disk, DiskFormat: format.QCOW2, CDROM: o.ISO, Seed: media.seed,
		CDROMs: append(append([]string(nil), media.cdroms...), o.ExtraISOs...),
		Kernel: media.kernel, Initrd: media.initrd, Append: media.args(o.Append),
		DiskBus: media.diskBus, NIC: media.nic, UEFI: media.uefi, Reboots: media.reboots,
		Memory: o.Memory, CPUs: o.CPUs, Accel: o.Accel, Fail: media.failures(o.Fail),
		Log: o.Log, Timeout: o.Timeout, QEMU: o.QEMU, TempDir: o.TempDir,
	}
}

// finish puts the installed disk in place: converted to a compressed
// qcow2, or renamed after it reached the disk.
func finish(ctx context.Context, o Options, disk string) error {
	if o.Compress {
		o.progress("compressing into %s", o.Output)
		img, _, err := format.Open(disk, format.OpenOptions{Format: format.QCOW2})
		if err != nil {
			return err
		}
		defer img.Close()
		if err := convert.Convert(ctx, img, o.Output, convert.Options{Compress: true, Sync: true}); err != nil {
			return err
		}
		o.progress("wrote %s", o.Output)
		return nil
	}
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Chmod(disk, 0o644); err != nil {
		return err
	}
	o.progress("wrote %s", o.Output)
	return os.Rename(disk, o.Output)
}
