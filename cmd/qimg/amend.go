package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/cmd/qimg/internal/qfmt"
	"github.com/qimg/qimg/format/qcow2"
)

// qcow2AmendOpts are the options qemu-img amend takes for qcow2: those of
// creation that amend accepts, and the LUKS key slot options.
var qcow2AmendOpts = append(pickOpts(qcow2CreateOpts, "size", "compat", "backing_file", "backing_fmt",
	"data_file", "data_file_raw", "lazy_refcounts", "refcount_bits"),
	qfmt.OptDesc{Name: "encrypt.keyslot", Type: qfmt.OptNumber, Help: "Select a single keyslot to modify explicitly"},
	qfmt.OptDesc{Name: "encrypt.state", Type: qfmt.OptString, Help: "Select new state of affected keyslots (active/inactive)"},
	qfmt.OptDesc{Name: "encrypt.old-secret", Type: qfmt.OptString, Help: "Select all keyslots that match this password"},
	qfmt.OptDesc{Name: "encrypt.new-secret", Type: qfmt.OptString, Help: "New secret to set in the matching keyslots. Empty string to erase"},
	qfmt.OptDesc{Name: "encrypt.iter-time", Type: qfmt.OptNumber, Help: "Time to spend in PBKDF in milliseconds"},
)

// pickOpts returns the descriptors of descs with the given names, without
// their creation defaults (amend changes only what it is given).
func pickOpts(descs []qfmt.OptDesc, names ...string) []qfmt.OptDesc {
	var out []qfmt.OptDesc
	for _, n := range names {
		for _, d := range descs {
			if d.Name == n {
				d.Default = ""
				out = append(out, d)
			}
		}
	}
	return out
}

// qcow2CreateOnly are the -o names qemu-img knows from creation only
// (besides the amend options): it hints at that when one is given.
var qcow2CreateOnly = append(append([]qfmt.OptDesc(nil), qcow2CreateOpts...),
	qfmt.OptDesc{Name: "encryption", Type: qfmt.OptBool},
	qfmt.OptDesc{Name: "encrypt.format", Type: qfmt.OptString},
	qfmt.OptDesc{Name: "encrypt.key-secret", Type: qfmt.OptString},
	qfmt.OptDesc{Name: "encrypt.cipher-alg", Type: qfmt.OptString},
	qfmt.OptDesc{Name: "encrypt.cipher-mode", Type: qfmt.OptString},
	qfmt.OptDesc{Name: "encrypt.ivgen-alg", Type: qfmt.OptString},
	qfmt.OptDesc{Name: "encrypt.ivgen-hash-alg", Type: qfmt.OptString},
	qfmt.OptDesc{Name: "encrypt.hash-alg", Type: qfmt.OptString},
)

const sizeSuffixHint = "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively."

func newAmendCmd(e *env) *cobra.Command {
	var format, cache string
	var options []string
	var progress, quiet, force bool
	cmd := &cobra.Command{
		Use:   "amend [-f FMT] [-t CACHE] -o OPTIONS [-p] [-q] [--force] FILENAME",
		Short: "Change the options of an existing qcow2 image",
		Long: `Change the options of an existing qcow2 image ("-o help" lists them):
  compat=0.10|1.1        down- or upgrade the version (a downgrade turns zero
                         clusters into plain ones and is refused for images
                         with features version 2 lacks)
  refcount_bits=N        rewrite the refcount structure with N-bit entries
  lazy_refcounts=on|off  postpone refcount updates (version 3 only)
  size=SIZE              grow or shrink the virtual size (shrinking deletes
                         everything past the new end, without asking)
Options that only creation takes (cluster_size, preallocation, ...) and a
different backing file (use rebase) are refused, leaving the image as it was.

Each change is crash-safe: a kill leaves the image before or after it, which
qemu-img check finds clean once the refcounts of an image left with its
dirty bit set are rebuilt (QEMU and qimg do that when they next open it for
writing).`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(options) == 0 {
				return usageError("Must specify options (-o)")
			}
			optList := joinOptions(options)
			if format != "" && qfmt.HasHelp(optList) {
				return amendHelp(e, format)
			}
			if len(args) != 1 {
				return fail("Expecting one image file name")
			}
			return amend(e, args[0], format, optList)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&format, "format", "f", "", "image format; probed if omitted")
	f.StringArrayVarP(&options, "options", "o", nil, "options key=value,... to change (repeatable; \"help\" lists them)")
	f.StringVarP(&cache, "cache", "t", "", "accepted for compatibility")
	f.BoolVarP(&progress, "progress", "p", false, "accepted for compatibility")
	f.BoolVarP(&quiet, "quiet", "q", false, "accepted for compatibility: amend prints nothing")
	f.BoolVar(&force, "force", false, "accepted for compatibility (QEMU uses it for LUKS key slots)")
	return cmd
}

// amendHelp prints "Amend options for 'FMT':" as qemu-img does.
func amendHelp(e *env, format string) error {
	if format != "qcow2" {
		return fail("Format driver '%s' does not support option amendment", format)
	}
	help := qfmt.Help(format, qcow2AmendOpts)
	lines := strings.Split(help, "\n")
	var b strings.Builder
	fmt.Fprintf(&b, "Amend options for '%s':\n", format)
	for _, l := range lines[1:] {
		if l == "" {
			break
		}
		b.WriteString(l + "\n")
	}
	_, err := fmt.Fprint(e.stdout, b.String())
	return err
}

func amend(e *env, path, format, optList string) (err error) {
	img, detected, err := openImage(path, format, true, e.chainPolicy())
	if err != nil {
		return err
	}
	defer closeImage(img, &err)
	if format == "" && detected == "raw" {
		e.warnProbedRaw(path)
	}
	if qfmt.HasHelp(optList) {
		return amendHelp(e, detected)
	}
	q, ok := img.(amender)
	if !ok {
		return fail("Format driver '%s' does not support option amendment", detected)
	}
	o, err := parseAmendOptions(optList)
	if err != nil {
		return err
	}
	err = q.Amend(e.ctx, o)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, qcow2.ErrAmendBacking):
		return hinted(fail("Cannot amend the backing file"), "You can use 'qimg rebase' instead.")
	}
	return fail("%s", reason(path, err))
}

// parseAmendOptions checks the -o list as qemu-img amend does: an option
// only creation takes gets a hint saying so.
func parseAmendOptions(optList string) (qcow2.AmendOptions, error) {
	opts := qfmt.NewOpts(qcow2AmendOpts)
	if err := opts.Parse(optList); err != nil {
		if strings.HasPrefix(err.Error(), "Parameter 'size'") {
			return qcow2.AmendOptions{}, hinted(fail("%s", err), sizeSuffixHint)
		}
		if strings.HasPrefix(err.Error(), "Invalid parameter") && qfmt.NewOpts(qcow2CreateOnly).Parse(optList) == nil {
			return qcow2.AmendOptions{}, hinted(fail("%s", err), "This option is only supported for image creation")
		}
		return qcow2.AmendOptions{}, fail("%s", err)
	}
	o := qcow2.AmendOptions{
		Compat:       opts.String("compat", ""),
		RefcountBits: int(min(opts.Number("refcount_bits", 0), 1<<16)),
		Size:         opts.Number("size", 0),
	}
	if opts.Has("refcount_bits") && o.RefcountBits == 0 {
		o.RefcountBits = -1 // an explicit 0 is invalid
	}
	if opts.Has("compat") && o.Compat == "" {
		return o, fail("Unknown compatibility level ")
	}
	str := func(name string) *string {
		if !opts.Has(name) {
			return nil
		}
		v := opts.String(name, "")
		return &v
	}
	boolean := func(name string) *bool {
		if !opts.Has(name) {
			return nil
		}
		v := opts.Bool(name, false)
		return &v
	}
	o.BackingFile, o.BackingFormat, o.DataFile = str("backing_file"), str("backing_fmt"), str("data_file")
	o.LazyRefcounts, o.DataFileRaw = boolean("lazy_refcounts"), boolean("data_file_raw")
	for _, d := range qcow2AmendOpts {
		if strings.HasPrefix(d.Name, "encrypt.") && opts.Has(d.Name) {
			o.Encrypt = true
		}
	}
	return o, nil
}

// amender is an image whose options amend changes (qcow2).
type amender interface {
	Amend(ctx context.Context, o qcow2.AmendOptions) error
}
