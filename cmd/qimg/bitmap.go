package main

import (
	"context"
	"errors"
	"math"
	"os"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/cmd/qimg/internal/qfmt"
	imgfmt "github.com/qimg/qimg/format"
	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/image"
)

// bitmapEditor is an image whose persistent dirty bitmaps can change
// (qcow2).
type bitmapEditor interface {
	EditBitmaps(ctx context.Context, name string, changes []qcow2.BitmapChange, from image.Image) error
}

// bitmapFlags holds the command line of qimg bitmap: the actions in the
// order given, as qemu-img runs them.
type bitmapFlags struct {
	changes     []qcow2.BitmapChange
	granularity int64
	badG        error // from -g, reported before anything else
	format      string
	srcFile     string
	srcFormat   string
	keys        keyFlags
}

// actionFlag is a flag that appends its action each time it is given.
type actionFlag struct {
	f      *bitmapFlags
	action qcow2.BitmapAction
}

func (a actionFlag) String() string { return "" }
func (a actionFlag) Type() string   { return "bool" }
func (a actionFlag) Set(v string) error {
	a.f.changes = append(a.f.changes, qcow2.BitmapChange{Action: a.action, Source: v})
	return nil
}

// granularityFlag parses -g as qemu-img's cvtnum does.
type granularityFlag struct{ f *bitmapFlags }

func (g granularityFlag) String() string { return "" }
func (g granularityFlag) Type() string   { return "size" }
func (g granularityFlag) Set(v string) error {
	n, err := qfmt.ParseSize(v)
	switch {
	case errors.Is(err, qfmt.ErrRange) || err == nil && n > math.MaxInt64:
		g.f.badG = fail("Invalid granularity specified. Must be between 0 and %d.", int64(math.MaxInt64))
	case err != nil:
		g.f.badG = fail("Invalid granularity specified. You may use k, M, G, T, P or E suffixes for\nkilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.")
	default:
		g.f.granularity = int64(n)
	}
	return nil
}

func newBitmapCmd(e *env) *cobra.Command {
	bf := &bitmapFlags{}
	cmd := &cobra.Command{
		Use: "bitmap (--merge SOURCE | --add | --remove | --clear | --enable | --disable)... " +
			"[-b SOURCE_FILE [-F SOURCE_FMT]] [-g GRANULARITY] [--object OBJECTDEF] [--image-opts | -f FMT] FILENAME BITMAP",
		Short: "Add, remove, clear, enable, disable or merge persistent dirty bitmaps",
		Long: `Change the persistent dirty bitmap BITMAP of the qcow2 image FILENAME, as
qemu-img bitmap does: the actions run in the order given, and the first
that fails stops the rest (those before it are kept).

  --add            create BITMAP, empty and recording writes (-g sets the
                   bytes per bit; default: the cluster size, 4k to 64k)
  --remove         delete BITMAP
  --clear          empty BITMAP
  --enable         make BITMAP record writes (the "auto" flag)
  --disable        stop BITMAP recording writes
  --merge SOURCE   add the bits of bitmap SOURCE, of this image or of the
                   image -b names (format -F)

The new bitmaps and directory are written to free clusters and one header
write switches to them, under the dirty bit: an interrupted change leaves
the old bitmaps or the new ones. List bitmaps with 'qimg info'.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := bf.validate(args); err != nil {
				return err
			}
			return runBitmap(e, bf, args[0], args[1])
		},
	}
	f := cmd.Flags()
	for _, a := range []struct {
		name   string
		action qcow2.BitmapAction
		usage  string
	}{
		{"add", qcow2.BitmapAdd, "create BITMAP"},
		{"remove", qcow2.BitmapRemove, "delete BITMAP"},
		{"clear", qcow2.BitmapClear, "empty BITMAP"},
		{"enable", qcow2.BitmapEnable, "make BITMAP record writes"},
		{"disable", qcow2.BitmapDisable, "make BITMAP stop recording writes"},
	} {
		f.Var(actionFlag{bf, a.action}, a.name, a.usage)
		f.Lookup(a.name).NoOptDefVal = "true"
	}
	f.Var(actionFlag{bf, qcow2.BitmapMerge}, "merge", "merge the bitmap SOURCE into BITMAP")
	f.VarP(granularityFlag{bf}, "granularity", "g", "bytes per bit of a bitmap --add creates")
	f.StringVarP(&bf.srcFile, "source-file", "b", "", "image holding the --merge source bitmap")
	f.StringVarP(&bf.srcFormat, "source-format", "F", "", "format of the -b image")
	f.StringVarP(&bf.format, "format", "f", "", "image format; probed if omitted")
	bf.keys.add(f)
	return cmd
}

// validate checks the command line in qemu-img's order, with its words.
func (bf *bitmapFlags) validate(args []string) error {
	if bf.badG != nil {
		return bf.badG
	}
	if len(bf.changes) == 0 {
		return fail("Need at least one of --add, --remove, --clear, --enable, --disable, or --merge")
	}
	add, merge := false, false
	for i := range bf.changes {
		switch c := &bf.changes[i]; c.Action {
		case qcow2.BitmapAdd:
			add, c.Granularity = true, bf.granularity
		case qcow2.BitmapMerge:
			merge = true
		}
	}
	switch {
	case bf.granularity != 0 && !add:
		return fail("granularity only supported with --add")
	case bf.srcFormat != "" && bf.srcFile == "":
		return fail("-F only supported with -b")
	case bf.srcFile != "" && !merge:
		return fail("Merge bitmap source file only supported with --merge")
	case len(args) != 2:
		return fail("Expecting filename and bitmap name")
	}
	return nil
}

// runBitmap opens the image (and the merge source) and applies the
// changes.
func runBitmap(e *env, bf *bitmapFlags, target, name string) (err error) {
	spec, err := bf.keys.resolve(target, bf.format)
	if err != nil {
		return err
	}
	path, format := spec.path, spec.format
	img, detected, err := openNamed(spec.name, path, imgfmt.OpenOptions{Format: format, Writable: true, Backing: image.IgnoreBacking, Key: spec.key})
	if err != nil {
		return err
	}
	defer closeImage(img, &err)
	if format == "" && detected == "raw" {
		e.warnProbedRaw(path)
	}
	var from image.Image
	if bf.srcFile != "" {
		if sameFile(path, bf.srcFile) {
			return hinted(fail("Could not open '%s': Failed to get shared \"write\" lock", bf.srcFile),
				"Is another process using the image ["+bf.srcFile+"]?")
		}
		src, _, err := openImage(bf.srcFile, bf.srcFormat, false, image.IgnoreBacking)
		if err != nil {
			return err
		}
		defer src.Close()
		from = src
	}
	ed, ok := img.(bitmapEditor)
	if !ok {
		return noBitmaps(path, name, bf.changes[0])
	}
	err = ed.EditBitmaps(e.ctx, name, bf.changes, from)
	var be *qcow2.BitmapError
	if errors.As(err, &be) {
		err = fail("Operation %s on bitmap %s failed: %s", be.Action, be.Bitmap, be.Reason)
		if be.Hint != "" {
			err = hinted(err, be.Hint)
		}
		return err
	}
	if err != nil {
		return fail("%s", reason(path, err))
	}
	return nil
}

// noBitmaps is qemu-img's failure of the first action on an image whose
// format has no persistent bitmaps.
func noBitmaps(path, name string, first qcow2.BitmapChange) error {
	if first.Action == qcow2.BitmapAdd {
		return fail("Operation add on bitmap %s failed: Can't store persistent bitmaps to %s: Operation not supported", name, path)
	}
	return fail("Operation %s on bitmap %s failed: Dirty bitmap '%s' not found", first.Action, name, name)
}

// sameFile reports whether a and b name one existing file, which qemu-img
// cannot open twice (its lock refuses the second open).
func sameFile(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}
