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
	local           bool
	format, seed    string
	expect          []string
	noDefaultExpect bool
	console         bool
	log             string
	memory, cpus    int
	timeout         time.Duration
	accel, mac      string
}

func newBootTestCmd(e *env) *cobra.Command {
	var o bootTestOptions
	cmd := &cobra.Command{
		Use:   "boot-test --local IMAGE [--seed SEED] [--expect RE]... [--console] [--memory MB] [--timeout D]",
		Short: "Boot an image under QEMU and watch its console",
		Long: `Boot an image under QEMU on this machine (KVM when /dev/kvm can be used,
TCG otherwise) and watch its serial console. The image is never changed:
the machine runs on a throwaway qcow2 overlay, removed afterwards with
everything else the test made, also on failure or Ctrl-C.

The guest gets the seed (a NoCloud cidata or config-2 drive, as qimg seed
makes one) and one virtio NIC on QEMU's user network with a random MAC
address it has never seen. The test succeeds when the login prompt,
cloud-init's final message and every --expect regular expression have
appeared on the console, and fails at once on a kernel panic, an emergency
or initramfs shell, or a cloud-init error. It prints the time of each boot
phase; on failure it prints the console's last lines and exits with 1.`,
		Args: exactArgs(1, "Expecting one image file name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(e, args[0])
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.local, "local", false, "boot on this machine under QEMU (the only kind of boot test so far)")
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
	return cmd
}

func (o *bootTestOptions) run(e *env, path string) error {
	if !o.local {
		return usageError("boot-test needs --local (booting in OpenStack is not implemented yet)")
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
		printBootResult(e.stdout, path, opts, res)
	}
	if err != nil {
		if res != nil && e.ctx.Err() == nil {
			fmt.Fprintf(e.stderr, "console (last %d lines):\n", len(res.Tail))
			for _, l := range res.Tail {
				fmt.Fprintf(e.stderr, "  | %s\n", l)
			}
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
	if o.timeout < 0 {
		return opts, usageError("--timeout must not be negative")
	}
	for _, s := range o.expect {
		re, err := regexp.Compile(s)
		if err != nil {
			return opts, usageError("--expect %q: %v", s, err)
		}
		opts.Expect = append(opts.Expect, re)
	}
	if o.console {
		opts.Console = e.stdout
	}
	return opts, nil
}

// printBootResult prints how the boot went: the machine, then each phase
// and expected marker with its time since QEMU started.
func printBootResult(w io.Writer, path string, o boot.Options, r *boot.Result) {
	verdict := "booted"
	if r.Failure != nil || len(r.Missing) > 0 {
		verdict = "did not boot"
	}
	fmt.Fprintf(w, "boot-test: %s %s under %s (%d CPUs, %d MiB, MAC %s) in %.1fs\n",
		path, verdict, r.Accel, o.CPUs, o.Memory, r.MAC, r.Elapsed.Seconds())
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
