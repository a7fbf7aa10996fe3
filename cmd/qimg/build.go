package main

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/boot"
	"github.com/qimg/qimg/build"
	"github.com/qimg/qimg/cmd/qimg/internal/qfmt"
)

// buildOptions are the flags of qimg build.
type buildOptions struct {
	iso, answers, output, size string
	memory, cpus               int
	osName, backend, connect   string
	firmware, drivers          string
	extraISOs                  []string
	kernel, initrd, appendArgs string
	fail                       []string
	timeout                    time.Duration
	sysprep, compress, console bool
	log, accel                 string
}

func newBuildCmd(e *env) *cobra.Command {
	var o buildOptions
	cmd := &cobra.Command{
		Use:   "build --iso INSTALLER.iso --answers FILE -o OUT.qcow2 [--size 10G] [--os linux|windows] [--backend auto|libvirt|qemu] [--sysprep] [--compress]",
		Short: "Install an operating system from its installer ISO, unattended",
		Long: `Install Linux from an installer ISO into a new qcow2 image with nothing
typed: qimg reads the ISO, finds the installer's kernel and initrd (Debian
and Ubuntu d-i in install.amd/, Ubuntu's subiquity in casper/, anaconda in
images/pxeboot/; --kernel and --initrd name them for other layouts), adds
the answer file (preseed, kickstart; a subiquity autoinstall user-data goes
on a NoCloud seed) to the initrd and boots them (KVM when it can be used,
TCG otherwise) with the arguments that make the installer run unattended
and the serial console. The answer file must make
the installer power off at the end: the install succeeds when the guest
powers off, and fails on a reboot, a kernel panic, a known installer error
message or --fail line on the console, or the time-out, with the console's
last lines. Then --sysprep prepares the guest for cloning (qimg sysprep's
default operations) and --compress writes a compressed qcow2. OUT appears
only when everything succeeded; the machine and every temporary file are
removed in all cases, Ctrl-C included.

--backend libvirt runs the installer as a transient libvirt domain through
libvirtd's socket (--connect qemu:///system, or qemu:///system?socket=PATH),
QEMU running as the user who runs qimg; --backend qemu starts
qemu-system-x86_64 itself; auto (the default) takes libvirt when a libvirtd
answers. --firmware uefi boots OVMF (Debian's ovmf package) with a private
copy of its variable store; --extra-iso attaches more CD-ROMs.

--os windows: --answers is an autounattend.xml, which qimg puts on a small
ISO medium where Windows Setup finds it; the installer's ISO boots after
the empty disk, Setup may reboot, and the answer file must power the
machine off at the end. Without --drivers the disk is on SATA and the NIC
an e1000; --drivers virtio-win.iso makes both virtio (the answer file must
load the drivers from it). The Glance properties the result needs
(hw_disk_bus, hw_vif_model, os_type, hw_firmware_type) are printed.`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(e)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.iso, "iso", "", "the installer ISO")
	f.StringVar(&o.answers, "answers", "", "answer file: preseed.cfg, ks.cfg, or autoinstall user-data")
	f.StringVarP(&o.output, "output", "o", "", "the new qcow2 image")
	f.StringVar(&o.size, "size", "10G", "virtual size of the new image")
	f.IntVar(&o.memory, "memory", build.DefaultMemory, "guest memory in MiB")
	f.IntVar(&o.cpus, "cpus", build.DefaultCPUs, "virtual CPUs")
	f.StringVar(&o.osName, "os", "linux", "the installer's operating system: linux or windows")
	f.StringVar(&o.drivers, "drivers", "", "a driver ISO for Windows (virtio-win): disk and NIC on virtio")
	f.StringArrayVar(&o.extraISOs, "extra-iso", nil, "attach this ISO as one more CD-ROM (repeatable)")
	f.StringVar(&o.firmware, "firmware", build.BIOS, "bios or uefi (OVMF)")
	f.StringVar(&o.kernel, "kernel", "", "path of the installer's kernel inside the ISO (for other layouts)")
	f.StringVar(&o.initrd, "initrd", "", "path of the installer's initrd inside the ISO (for other layouts)")
	f.StringVar(&o.appendArgs, "append", "", "more kernel arguments")
	f.StringArrayVar(&o.fail, "fail", nil, "fail at once on a console line matching this regular expression (repeatable)")
	f.DurationVar(&o.timeout, "timeout", boot.DefaultRunTimeout, "give up after this long")
	f.BoolVar(&o.sysprep, "sysprep", false, "prepare the installed guest for cloning (qimg sysprep's defaults)")
	f.BoolVar(&o.compress, "compress", false, "write a compressed qcow2")
	f.BoolVar(&o.console, "console", false, "stream the installer's console to standard output")
	f.StringVar(&o.log, "log", "", "write the console's raw bytes to this file")
	f.StringVar(&o.accel, "accel", "", "kvm or tcg (default: kvm when /dev/kvm can be used)")
	f.StringVar(&o.backend, "backend", "auto", "auto, libvirt or qemu")
	f.StringVar(&o.connect, "connect", "qemu:///system", "libvirt URI: qemu:///system, optionally ?socket=PATH")
	return cmd
}

func (o *buildOptions) run(e *env) error {
	opts, err := o.options(e)
	if err != nil {
		return err
	}
	res, err := build.Build(e.ctx, opts)
	if err != nil {
		if res != nil && res.Install != nil && e.ctx.Err() == nil {
			fmt.Fprintf(e.stderr, "console (last %d lines):\n", len(res.Install.Tail))
			for _, l := range res.Install.Tail {
				fmt.Fprintf(e.stderr, "  | %s\n", l)
			}
			if res.Install.QEMUStderr != "" {
				fmt.Fprintf(e.stderr, "QEMU said:\n%s\n", res.Install.QEMUStderr)
			}
		}
		// The build package's errors name the command already.
		return fail("build: %s", strings.TrimPrefix(err.Error(), "build: "))
	}
	if len(res.Properties) > 0 {
		fmt.Fprintf(e.stdout, "build: the image needs the Glance properties%s\n", propertyFlags(res.Properties))
	}
	return nil
}

// propertyFlags writes properties as qimg upload's flags, sorted.
func propertyFlags(p map[string]string) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " --property %s=%s", k, p[k])
	}
	return b.String()
}

// options turns the flags into build.Options.
func (o *buildOptions) options(e *env) (build.Options, error) {
	opts := build.Options{
		ISO: o.iso, Answers: o.answers, Output: o.output, Memory: o.memory, CPUs: o.cpus, OS: o.osName,
		Kernel: o.kernel, Initrd: o.initrd, Append: o.appendArgs, Timeout: o.timeout, Compress: o.compress,
		Accel: o.accel, Log: o.log, Progress: e.stdout,
		Firmware: o.firmware, Drivers: o.drivers, ExtraISOs: o.extraISOs,
	}
	switch {
	case o.iso == "" || o.answers == "" || o.output == "":
		return opts, usageError("build needs --iso, --answers and -o")
	case o.timeout <= 0:
		return opts, usageError("--timeout must be positive")
	}
	n, err := qfmt.ParseSize(o.size)
	if err != nil || n > 1<<50 {
		return opts, usageError("--size %q: not a size (use k, M, G, T suffixes)", o.size)
	}
	opts.Size = int64(n)
	for _, s := range o.fail {
		re, err := regexp.Compile(s)
		if err != nil {
			return opts, usageError("--fail %q: %v", s, err)
		}
		opts.Fail = append(opts.Fail, re)
	}
	if o.console {
		opts.Console = e.stdout
	}
	if opts.Backend, err = o.hypervisor(e); err != nil {
		return opts, err
	}
	if o.sysprep {
		opts.AfterInstall = func(ctx context.Context, path string) error {
			var s sysprepOptions
			return s.run(&env{ctx: ctx, stdout: e.stdout, stderr: e.stderr}, []string{path})
		}
	}
	return opts, nil
}

// hypervisor is the backend --backend and --connect name.
func (o *buildOptions) hypervisor(e *env) (build.Backend, error) {
	socket, err := libvirtSocket(o.connect)
	if err != nil {
		return nil, err
	}
	switch o.backend {
	case "qemu":
		return build.QEMUBackend{}, nil
	case "libvirt":
		return build.LibvirtBackend{Socket: socket}, nil
	case "auto":
		return build.AutoBackend(e.ctx, socket), nil
	}
	return nil, usageError("--backend %q: auto, libvirt or qemu", o.backend)
}

// libvirtSocket is the unix socket of a local libvirt URI:
// qemu:///system, with ?socket=PATH for another than the standard one.
func libvirtSocket(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "qemu" || u.Host != "" || u.Path != "/system" {
		return "", usageError("--connect %q: only a local qemu:///system (with ?socket=PATH) is supported", uri)
	}
	for k := range u.Query() {
		if k != "socket" {
			return "", usageError("--connect %q: unknown parameter %s (only socket=PATH)", uri, k)
		}
	}
	return u.Query().Get("socket"), nil
}
