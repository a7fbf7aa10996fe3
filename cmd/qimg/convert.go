package main

import (
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/cmd/qimg/internal/qfmt"
	"github.com/qimg/qimg/convert"
	"github.com/qimg/qimg/image"
)

func newConvertCmd(e *env) *cobra.Command {
	var (
		srcFmt, outFmt, sparse, backing, backingFmt string
		options                                     []string
		compress, noCreate, targetZero, progress    bool
		quiet, ooo, forceShare, targetImageOpts     bool
		copyOffload                                 bool
		workers                                     int
		cache, srcCache                             string
		keys                                        keyFlags
	)
	cmd := &cobra.Command{
		Use:   "convert [-f FMT] [-O FMT] [-c] [-o OPTIONS] [-B BACKING -F FMT] [-S SIZE] [-m N] [-W] [-C] [-n] [--target-is-zero] [-p] [-q] SRC DST",
		Short: "Copy an image into a new image of another format",
		Long: `Copy the guest content of SRC into DST, in format -O (default raw).

Runs of zeros at least -S bytes long (default 4k) are left unallocated, so
DST is sparse. -c compresses qcow2 clusters. -o takes the creation options
of 'qimg create' (see 'qimg create --help'). -B makes DST an overlay of
BACKING that holds only what differs from it. -n writes into an existing
DST instead of creating one; --target-is-zero then trusts DST to read as
zeros and skips writing them.

Data that SRC stores as it is in a host file (raw, or qcow2 clusters
neither compressed nor encrypted) goes to a raw DST inside the kernel
(copy_file_range) where the file systems allow it and that is faster,
after it is read to find its zeros. -C (copy offloading) copies it
without reading it, so zeros in it are written rather than left as
holes, as with qemu-img -C; it does not combine with -c or -S.

SRC's backing chain is followed (relative names resolve against its
directory). DST is written to a temporary file beside it and renamed into
place when complete: an interrupted convert leaves no partial DST.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if qfmt.HasHelp(joinOptions(options)) {
				return nil
			}
			switch {
			case len(args) < 2:
				return fail("Must specify image file name")
			case len(args) > 2:
				return usageError("qimg convert takes exactly one source image (got %d)", len(args)-1)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			src, dst := args[0], args[1]
			switch {
			case copyOffload && compress:
				return fail("Cannot enable copy offloading when -c is used")
			case copyOffload && cmd.Flags().Changed("sparse-size"):
				return fail("Cannot enable copy offloading when -S is used")
			}
			var target imageSpec
			if targetImageOpts {
				var err error
				if target, err = resolveTarget(keys, dst, outFmt, noCreate); err != nil {
					return err
				}
				dst, outFmt = target.path, target.format
			}
			if outFmt == "" {
				outFmt = "raw"
			}
			optList := joinOptions(options)
			if asked, err := e.optionsHelp(outFmt, optList); asked {
				return err
			}
			if !writableFormat(outFmt) {
				return formatError(outFmt)
			}
			if compress && outFmt != "qcow2" && outFmt != "vmdk" {
				return fail("Compression not supported for this file format")
			}
			if targetZero && !noCreate {
				return fail("--target-is-zero requires use of -n flag")
			}
			if cmd.Flags().Changed("parallel") && (workers < 1 || workers > 16) {
				return fail("Invalid number of coroutines. Allowed number of coroutines is between 1 and 16")
			}
			o := convert.Options{Format: outFmt, Compress: compress, Workers: workers, NoCreate: noCreate, TargetIsZero: targetZero,
				CopyOffload: copyOffload}
			for _, c := range []string{cache, srcCache} {
				switch c {
				case "", "unsafe", "none", "writeback", "writethrough", "directsync":
				default:
					return fail("Invalid cache option: %s", c)
				}
			}
			// Every mode but qemu-img's default "unsafe" makes the output
			// durable before it is renamed into place.
			o.Sync = cache != "" && cache != "unsafe"
			if sparse != "" {
				n, err := qfmt.ParseSize(sparse)
				if err != nil || n > math.MaxInt32 || n%512 != 0 || n > 16<<20 {
					return fail("Invalid buffer size for sparse output specified. Valid sizes are multiples of 512 up to 16777216. Select 0 to disable sparse detection (fully allocates output).")
				}
				o.SparseSize = int64(n)
				if n == 0 {
					o.SparseSize = -1
				}
			}
			secrets, err := keys.secrets()
			if err != nil {
				return err
			}
			spec, err := keys.resolve(src, srcFmt)
			if err != nil {
				return err
			}
			opts := qfmt.NewOpts(createOptsFor(outFmt))
			if optList != "" {
				if err := opts.Parse(optList); err != nil {
					return fail("%s", err)
				}
			}
			if backing != "" {
				if outFmt != "qcow2" {
					return fail("%s: Backing file not supported for file format '%s'", dst, outFmt)
				}
				opts.Set("backing_file", backing)
			}
			if backingFmt != "" {
				opts.Set("backing_fmt", backingFmt)
			}
			if outFmt == "qcow2" {
				c, err := qcow2Options(opts, secrets)
				if err != nil {
					return fail("%s: error while converting qcow2: %s", dst, err.(*exitError).msg)
				}
				if c.Encrypt != nil && compress {
					return fail("Compression and encryption not supported at the same time")
				}
				o.Create.QCOW2 = c
			} else if outFmt == "vmdk" {
				c, err := vmdkOptions(opts)
				if err != nil {
					return fail("%s: error while converting vmdk: %s", dst, err.(*exitError).msg)
				}
				o.Create.VMDK = c
			} else if outFmt == "vpc" {
				c, err := vpcOptions(opts)
				if err != nil {
					return fail("%s: error while converting vpc: %s", dst, err.(*exitError).msg)
				}
				o.Create.VPC = c
			} else if p := opts.String("preallocation", "off"); p != "off" {
				return fail("qimg convert does not preallocate raw output (preallocation=%s)", p)
			}
			if _, err := os.Stat(dst); noCreate && err != nil {
				return openFailure(dst, outFmt, err)
			}
			img, _, err := openDataSpec(spec, false, e.chainPolicy())
			if err != nil {
				return err
			}
			defer img.Close()
			pr := newProgress(e.stderr, progress && !quiet)
			o.Progress = pr.update
			if targetImageOpts {
				err = convertIntoSpec(e, img, target, o)
			} else {
				err = convert.Convert(e.ctx, img, dst, o)
			}
			pr.done(err == nil)
			if err != nil {
				if errors.Is(err, e.ctx.Err()) && e.ctx.Err() != nil {
					return fail("Interrupted; %s was not written", dst)
				}
				return fail("%s", convertReason(err))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&srcFmt, "format", "f", "", "source format; probed if omitted")
	f.StringVarP(&outFmt, "output-format", "O", "", "output format: raw (default) or qcow2")
	f.BoolVarP(&compress, "compress", "c", false, "compress the output clusters (qcow2)")
	f.StringArrayVarP(&options, "options", "o", nil, "output creation options key=value,... (\"help\" lists them)")
	f.StringVarP(&backing, "backing", "B", "", "make the output an overlay of this backing file (qcow2)")
	f.StringVarP(&backingFmt, "backing-format", "F", "", "format of the -B backing file")
	f.StringVarP(&sparse, "sparse-size", "S", "", "minimum run of zeros left unallocated (default 4k; 0 writes every zero)")
	f.IntVarP(&workers, "parallel", "m", 0, "number of parallel workers, 1 to 16 (default: one per CPU)")
	f.BoolVarP(&copyOffload, "copy-offload", "C", false, "copy offloading: data SRC stores as it is goes to a raw DST by copy_file_range without being read (zeros in it are written, not left as holes)")
	f.BoolVarP(&ooo, "out-of-order", "W", false, "accepted for compatibility: writes are always parallel and safe")
	f.BoolVarP(&noCreate, "no-create", "n", false, "write into the existing DST instead of creating it")
	f.BoolVar(&targetZero, "target-is-zero", false, "with -n: DST reads as zeros, do not write zeros")
	f.BoolVarP(&progress, "progress", "p", false, "show progress (only when standard error is a terminal)")
	f.BoolVarP(&quiet, "quiet", "q", false, "print nothing but errors")
	f.BoolVarP(&forceShare, "force-share", "U", false, "accepted for compatibility: qimg never locks images")
	f.StringVarP(&cache, "cache", "t", "unsafe", "output cache mode: unsafe (no flush), or none, writeback, writethrough, directsync (flush DST to disk before renaming it into place)")
	f.StringVarP(&srcCache, "source-cache", "T", "", "source cache mode, accepted for compatibility (sources are only read)")
	f.BoolVar(&targetImageOpts, "target-image-opts", false, "with -n: DST is an option list like --image-opts's (driver=qcow2,file.filename=PATH,encrypt.key-secret=ID)")
	keys.add(f)
	return cmd
}

// resolveTarget reads DST as an option list (--target-image-opts), which
// qemu-img takes only for an existing target (-n) and without -O: the
// driver option names the format.
func resolveTarget(keys keyFlags, dst, outFmt string, noCreate bool) (imageSpec, error) {
	if !noCreate {
		return imageSpec{}, fail("--target-image-opts requires use of -n flag")
	}
	keys.imageOpts = true
	return keys.resolve(dst, outFmt)
}

// convertIntoSpec converts into the existing image an option list names
// (--target-image-opts), opened as qemu-img opens it, with its key: a
// missing or wrong key fails with qemu-img's message naming the list.
func convertIntoSpec(e *env, src image.Image, target imageSpec, o convert.Options) error {
	img, _, err := openDataSpec(target, true, image.IgnoreBacking)
	if err != nil {
		return err
	}
	return convert.ConvertInto(e.ctx, src, img, target.path, o)
}

func convertReason(err error) string {
	var fe *image.FileError
	if errors.Is(err, image.ErrEncrypted) && errors.As(err, &fe) {
		// An encrypted target of -n: qemu-img opens it without a key.
		return fmt.Sprintf("Could not open '%s': %s", fe.Name, noKey)
	}
	return err.Error()
}
