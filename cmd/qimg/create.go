package main

import (
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/cmd/qimg/internal/qfmt"
	imgfmt "github.com/qimg/qimg/format"
	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/format/raw"
	"github.com/qimg/qimg/image"
)

func newCreateCmd(e *env) *cobra.Command {
	var format, backing, backingFmt string
	var options []string
	var unsafe, quiet bool
	var keys keyFlags
	cmd := &cobra.Command{
		Use:   "create [-q] -f FMT [-o OPTIONS] [-b BACKING -F BACKING_FMT] [-u] FILENAME [SIZE]",
		Short: "Create a new, empty image",
		Long: `Create a new image FILENAME of SIZE bytes (suffixes k, M, G, T, P, E).

With -b the image is an overlay of BACKING: reads of clusters the new image
does not hold come from BACKING, which is opened to check it and to take its
size when SIZE is omitted; -F names its format and is required, as in
qemu-img 7.2. -u stores the name without opening the file (SIZE is then
required).

qcow2 options (-o key=value,...; "-o help" lists them):
  compat=0.10|1.1          qcow2 version 2 or 3 (default 1.1)
  cluster_size=SIZE        512 B to 2 MiB, a power of two (default 64k)
  refcount_bits=N          1, 2, 4, 8, 16, 32 or 64 (default 16)
  lazy_refcounts=on|off    postpone refcount updates (default off)
  compression_type=zlib|zstd  for compressed clusters (default zlib)
  extended_l2=on|off       32 subclusters per cluster (default off)
  preallocation=off|metadata|falloc|full
  backing_file=NAME, backing_fmt=FMT  same as -b and -F
  data_file=NAME           keep guest data in a separate file
  data_file_raw=on|off     keep that data file a valid raw image
  encrypt.format=luks|aes  encrypt the image (LUKS1, or legacy AES-CBC),
                           with the secret encrypt.key-secret=ID names
                           (--object secret,id=ID,data=...); LUKS takes
                           encrypt.cipher-alg (aes-128, aes-192, aes-256;
                           serpent and twofish at the same sizes;
                           cast5-128), encrypt.cipher-mode (xts, cbc),
                           encrypt.ivgen-alg (plain, plain64, essiv),
                           encrypt.ivgen-hash-alg, encrypt.hash-alg (md5,
                           sha1, sha224, sha256, sha384, sha512, ripemd160)
                           and encrypt.iter-time (ms of PBKDF2 to unlock,
                           default 2000)
raw options: preallocation=off|falloc|full.

Prints qemu-img's "Formatting 'FILENAME', fmt=..." line unless -q.`,
		Args: func(cmd *cobra.Command, args []string) error {
			for _, o := range options {
				if qfmt.HasHelp(o) {
					return nil
				}
			}
			switch {
			case len(args) < 1:
				return usageError("Expecting image file name")
			case len(args) > 2:
				return usageError("Unexpected argument: %s", args[2])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if format == "" {
				format = "raw"
			}
			optList := joinOptions(options)
			if asked, err := e.optionsHelp(format, optList); asked {
				return err
			}
			path := args[0]
			if !creatableFormat(format) {
				return fail("%s: Unknown file format '%s'", path, format)
			}
			size := int64(-1)
			if len(args) == 2 {
				n, err := qfmt.ParseSize(args[1])
				if errors.Is(err, qfmt.ErrRange) {
					return fail("Invalid image size specified. Must be between 0 and 9223372036854775807.")
				}
				if err != nil {
					return fail("Invalid image size specified. You may use k, M, G, T, P or E suffixes for\nkilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.")
				}
				if n > math.MaxInt64 {
					return fail("Invalid image size specified. Must be between 0 and 9223372036854775807.")
				}
				size = int64(n)
			}
			secrets, err := keys.secrets()
			if err != nil {
				return err
			}
			return create(e, path, format, optList, backing, backingFmt, size, unsafe, quiet, secrets)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&format, "format", "f", "", "image format: qcow2 or raw (default raw)")
	f.StringArrayVarP(&options, "options", "o", nil, "format options key=value,... (repeatable; \"help\" lists them)")
	f.StringVarP(&backing, "backing", "b", "", "backing file of the new image (qcow2)")
	f.StringVarP(&backingFmt, "backing-format", "F", "", "format of the backing file")
	f.BoolVarP(&unsafe, "unsafe", "u", false, "do not open the backing file (size must be given)")
	f.BoolVarP(&quiet, "quiet", "q", false, "do not print the Formatting line")
	f.StringArrayVar(&keys.objects, "object", nil,
		"define a secret for -o encrypt.key-secret: secret,id=ID,data=STRING or secret,id=ID,file=PATH (format=base64 for base64 data)")
	return cmd
}

// joinOptions merges repeated -o lists as qemu-img does.
func joinOptions(l []string) string {
	s := ""
	for _, o := range l {
		if s != "" {
			s += ","
		}
		s += o
	}
	return s
}

func create(e *env, path, format, optList, backing, backingFmt string, size int64, unsafe, quiet bool, secrets map[string][]byte) error {
	opts := qfmt.NewOpts(createOptsFor(format))
	if optList != "" {
		if err := opts.Parse(optList); err != nil {
			return fail("%s: %s", path, err)
		}
	}
	if backing != "" {
		opts.Set("backing_file", backing)
	}
	if backingFmt != "" {
		opts.Set("backing_fmt", backingFmt)
	}
	if size >= 0 {
		opts.SetNumber("size", uint64(size))
	}
	if format == "raw" && backing != "" {
		return fail("%s: Backing file not supported for file format 'raw'", path)
	}
	backing, backingFmt = opts.String("backing_file", ""), opts.String("backing_fmt", "")
	if backing != "" {
		if backing == path {
			return fail("%s: Error: Trying to create an image with the same filename as the backing file", path)
		}
		if !unsafe {
			full := image.ResolveName(path, backing)
			if backingFmt != "" && !imgfmt.Known(backingFmt) {
				return fail("%s: Could not open '%s': Unknown driver '%s'\nCould not open backing image.", path, full, backingFmt)
			}
			img, detected, err := imgfmt.Open(full, imgfmt.OpenOptions{Format: backingFmt, Backing: e.chainPolicy()})
			if err != nil {
				msg := reason(full, err)
				switch {
				case errors.Is(err, image.ErrWrongFormat):
					msg = fmt.Sprintf("Image is not in %s format", backingFmt)
				case isPathError(err, full):
					msg = fmt.Sprintf("Could not open '%s': %s", full, msg)
				}
				return hinted(fail("%s: %s", path, msg), "Could not open backing image.")
			}
			bsize := img.Size()
			img.Close()
			if backingFmt == "" {
				return hinted(fail("%s: Backing file specified without backing format", path), "Detected format of "+detected+".")
			}
			if !opts.Has("size") {
				opts.SetNumber("size", uint64(bsize))
			}
		} else if backingFmt == "" {
			return fail("%s: Backing file specified without backing format", path)
		}
	}
	if !opts.Has("size") {
		return fail("%s: Image creation needs a size parameter", path)
	}
	size = int64(opts.Number("size", 0))
	if !quiet {
		if _, err := fmt.Fprintf(e.stdout, "Formatting '%s', fmt=%s %s\n", path, format, opts.Print()); err != nil {
			return err
		}
	}
	if format == "raw" {
		return createRaw(path, size, opts.String("preallocation", "off"))
	}
	c, err := qcow2Options(opts, secrets)
	if err != nil {
		return fail("%s: %s", path, err.(*exitError).msg)
	}
	c.Size = size
	c.Unsafe = unsafe
	c.OpenBacking = imgfmt.BackingOpener(path)
	if err := qcow2.Create(path, c); err != nil {
		if isPathError(err, "") {
			return fail("%s: Could not create '%s': %s", path, path, reason(path, err))
		}
		return fail("%s: %s", path, reason(path, err))
	}
	return nil
}

func createRaw(path string, size int64, prealloc string) error {
	switch prealloc {
	case "off", "falloc", "full":
	default:
		return fail("%s: Parameter 'preallocation' does not accept value '%s'", path, prealloc)
	}
	if err := raw.Create(path, size); err != nil {
		return fail("%s: Could not create '%s': %s", path, path, reason(path, err))
	}
	if prealloc == "off" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fail("%s: %s", path, reason(path, err))
	}
	defer f.Close()
	if err := preallocateRaw(f, size, prealloc); err != nil {
		return fail("%s: %s", path, reason(path, err))
	}
	return f.Close()
}
