package main

import (
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/boot"
)

// bootTestOptions are the flags of boot-test.
type bootTestOptions struct {
	local, cloud    bool
	format, seed    string
	expect          []string
	noDefaultExpect bool
	console         bool
	log             string
	memory, cpus    int
	timeout         time.Duration
	accel, mac      string
	onCloud         cloudBootOptions
}

func newBootTestCmd(e *env) *cobra.Command {
	var o bootTestOptions
	cmd := &cobra.Command{
		Use: "boot-test --local IMAGE [--seed SEED] [--expect RE]... [--console] [--memory MB] [--timeout D]\n" +
			"  qimg boot-test --cloud IMAGE_OR_ID --flavor F [--nic none|--network N] [--config-drive] [--user-data FILE] [--expect RE]...",
		Short: "Boot an image under QEMU or on OpenStack and watch its console",
		Long: `With --local, boot an image under QEMU on this machine (KVM when /dev/kvm
can be used, TCG otherwise) and watch its serial console. The image is never changed:
the machine runs on a throwaway qcow2 overlay, removed afterwards with
everything else the test made, also on failure or Ctrl-C.

The guest gets the seed (a NoCloud cidata or config-2 drive, as qimg seed
makes one) and one virtio NIC on QEMU's user network with a random MAC
address it has never seen. The test succeeds when the login prompt,
cloud-init's final message and every --expect regular expression have
appeared on the console, and fails at once on a kernel panic, an emergency
or initramfs shell, or a cloud-init error. It prints the time of each boot
phase; on failure it prints the console's last lines and exits with 1.

With --cloud, boot a server on OpenStack from an image in Glance (name or
ID) with the flavor, network (--nic none: no NIC), config drive and
user-data given, and a keypair made for the test (or --key-name's). The
wait for ACTIVE stops on ERROR and prints the server's fault; then the
console log is read every two seconds and judged as above. The server and
the keypair are deleted afterwards, also on failure or Ctrl-C, unless
--keep. The cloud comes from --os-cloud / OS_CLOUD or the OS_* variables,
as for the openstack CLI.`,
		Args: exactArgs(1, "Expecting one image file name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.cloud {
				return o.runCloud(e, cmd, args[0])
			}
			return o.run(e, cmd, args[0])
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.local, "local", false, "boot on this machine under QEMU")
	f.BoolVar(&o.cloud, "cloud", false, "boot a server on OpenStack from IMAGE, an image in Glance (name or ID)")
	f.StringVarP(&o.format, "format", "f", "", "image format; probed if omitted")
	f.StringVar(&o.seed, "seed", "", "NoCloud cidata or config-2 drive to attach (ISO 9660 as a CD-ROM, else a read-only disk)")
	f.StringArrayVar(&o.expect, "expect", nil, "also wait for a console line matching this regular expression (repeatable)")
	f.BoolVar(&o.noDefaultExpect, "no-default-expect", false, "wait only for --expect, not for the login prompt and cloud-init (a guest without cloud-init)")
	f.BoolVar(&o.console, "console", false, "stream the console to standard output")
	f.StringVar(&o.log, "log", "", "write the console's raw bytes to this file")
	f.IntVar(&o.memory, "memory", boot.DefaultMemory, "guest memory in MiB")
	f.IntVar(&o.cpus, "cpus", boot.DefaultCPUs, "virtual CPUs")
	f.DurationVar(&o.timeout, "timeout", 0, "give up after this long (default 10m under TCG, 3m with KVM)")
	f.StringVar(&o.accel, "accel", "", "kvm or tcg (default: kvm when /dev/kvm can be used)")
	f.StringVar(&o.mac, "mac", "", "MAC address of the NIC (default: random, locally administered)")
	o.onCloud.flags(f)
	return cmd
}

// localOnly and cloudOnly are the flags of one kind of boot test.
var (
	localOnly = []string{"format", "seed", "memory", "cpus", "accel", "mac"}
	cloudOnly = []string{"flavor", "network", "nic", "config-drive", "user-data", "key-name", "keep", "name",
		"os-cloud", "os-region-name", "os-interface", "os-cacert", "insecure"}
)

// refuseFlags fails if one of names was given: it belongs to the other
// kind of boot test.
func refuseFlags(cmd *cobra.Command, kind string, names []string) error {
	for _, n := range names {
		if cmd.Flags().Changed(n) {
			return usageError("--%s does not go with %s", n, kind)
		}
	}
	return nil
}

func (o *bootTestOptions) run(e *env, cmd *cobra.Command, path string) error {
	if !o.local {
		return usageError("boot-test needs --local or --cloud")
	}
	if err := refuseFlags(cmd, "--local", cloudOnly); err != nil {
		return err
	}
	opts, err := o.options(e, path)
	if err != nil {
		return err
	}
	// The image opens as qimg opens it (and --untrusted refuses one that
	// names other files) before QEMU sees it.
	img, format, err := openData(path, o.format, false, e.chainPolicy())
	if err != nil {
		return err
	}
	img.Close()
	opts.Format = format
	res, err := boot.Local(e.ctx, opts)
	if res != nil {
		verdict := "booted"
		if r := res; r.Failure != nil || len(r.Missing) > 0 {
			verdict = "did not boot"
		}
		printBootResult(e.stdout, fmt.Sprintf("%s %s under %s (%d CPUs, %d MiB, MAC %s) in %.1fs",
			path, verdict, res.Accel, opts.CPUs, opts.Memory, res.MAC, res.Elapsed.Seconds()), res)
	}
	if err != nil {
		if res != nil && e.ctx.Err() == nil {
			printTail(e.stderr, res.Tail)
			if res.QEMUStderr != "" {
				fmt.Fprintf(e.stderr, "QEMU said:\n%s\n", res.QEMUStderr)
			}
		}
		return fail("boot-test: %v", err)
	}
	return nil
}

// options turns the flags into boot.Options.
func (o *bootTestOptions) options(e *env, path string) (boot.Options, error) {
	opts := boot.Options{
		Image: path, Seed: o.seed, Memory: o.memory, CPUs: o.cpus,
		NoDefaultExpect: o.noDefaultExpect, Log: o.log, Timeout: o.timeout,
		Accel: o.accel, MAC: o.mac,
	}
	var err error
	if opts.Expect, err = o.expectations(); err != nil {
		return opts, err
	}
	if o.console {
		opts.Console = e.stdout
	}
	return opts, nil
}

// expectations checks --timeout and compiles --expect.
func (o *bootTestOptions) expectations() ([]*regexp.Regexp, error) {
	if o.timeout < 0 {
		return nil, usageError("--timeout must not be negative")
	}
	var res []*regexp.Regexp
	for _, s := range o.expect {
		re, err := regexp.Compile(s)
		if err != nil {
			return nil, usageError("--expect %q: %v", s, err)
		}
		res = append(res, re)
	}
	return res, nil
}

// printTail prints the console's last lines.
func printTail(w io.Writer, tail []string) {
	fmt.Fprintf(w, "console (last %d lines):\n", len(tail))
	for _, l := range tail {
		fmt.Fprintf(w, "  | %s\n", l)
	}
}

// printBootResult prints how the boot went: a line about the machine,
// then each phase and expected marker with its time since the machine
// started (QEMU, or the server's create request).
func printBootResult(w io.Writer, header string, r *boot.Result) {
	fmt.Fprintf(w, "boot-test: %s\n", header)
	prev := time.Duration(0)
	for _, p := range r.Phases {
		fmt.Fprintf(w, "  %-20s %7.1fs  (+%.1fs)\n", p.Name, p.At.Seconds(), (p.At - prev).Seconds())
		prev = p.At
	}
	for _, m := range r.Matched {
		if !isPhase(r, m.Name) {
			fmt.Fprintf(w, "  %-20s %7.1fs  %s\n", m.Name, m.At.Seconds(), m.Line)
		}
	}
	for _, m := range r.Missing {
		fmt.Fprintf(w, "  %-20s missing\n", m)
	}
	if f := r.Failure; f != nil {
		fmt.Fprintf(w, "  failed: %s at %.1fs: %s\n", f.Name, f.At.Seconds(), f.Line)
	}
}

// isPhase reports whether name is one of the phases already printed.
func isPhase(r *boot.Result, name string) bool {
	for _, p := range r.Phases {
		if p.Name == name {
			return true
		}
	}
	return false
}
