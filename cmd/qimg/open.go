package main

import (
	"errors"
	"fmt"
	"io/fs"

	imgfmt "github.com/qimg/qimg/format"
	"github.com/qimg/qimg/format/luks"
	"github.com/qimg/qimg/image"
)

// writableFormat reports whether qimg can write images of format f
// (convert -O).
func writableFormat(f string) bool {
	return creatableFormat(f) || f == imgfmt.VPC || f == imgfmt.VMDK
}

// creatableFormat reports whether qimg creates and measures images of
// format f (create -f, measure -O).
func creatableFormat(f string) bool { return f == imgfmt.QCOW2 || f == imgfmt.Raw }

// openImage opens path for a command, with qemu-img's error messages.
func openImage(path, format string, writable bool, backing image.BackingPolicy) (image.Image, string, error) {
	return openWith(path, imgfmt.OpenOptions{Format: format, Writable: writable, Backing: backing})
}

// openWith opens path with o, with qemu-img's error messages.
func openWith(path string, o imgfmt.OpenOptions) (image.Image, string, error) {
	return openNamed(path, path, o)
}

// openNamed opens path with o; messages call it name (the command-line
// argument, which for --image-opts is an option list).
func openNamed(name, path string, o imgfmt.OpenOptions) (image.Image, string, error) {
	if o.Format != "" && !imgfmt.Known(o.Format) {
		r := fmt.Sprintf("Unknown driver '%s'", o.Format)
		return nil, "", &exitError{code: 1, msg: fmt.Sprintf("Could not open '%s': %s", name, r), openReason: r}
	}
	img, f, err := imgfmt.Open(path, o)
	if err != nil {
		return nil, "", openFailureAs(name, path, o.Format, err)
	}
	return img, f, nil
}

// openFailure turns an error from opening path into qemu-img's message.
func openFailure(path, format string, err error) error {
	return openFailureAs(path, path, format, err)
}

// openFailureAs is openFailure for an image the command line calls name.
func openFailureAs(name, path, format string, err error) error {
	r := openReason(path, format, err)
	return &exitError{code: 1, msg: fmt.Sprintf("Could not open '%s': %s", name, r), openReason: r}
}

// openReason is qemu-img's reason why path did not open.
func openReason(path, format string, err error) string {
	var xe *image.ExternalError
	if errors.As(err, &xe) {
		return externalReason(xe)
	}
	var uk *imgfmt.UnusedKeyError
	if errors.As(err, &uk) {
		return unusedKeyReason(uk)
	}
	if errors.Is(err, luks.ErrWrongPassword) {
		return luks.ErrWrongPassword.Error()
	}
	if errors.Is(err, image.ErrEncrypted) {
		return noKey
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == path {
		// qemu-img names the file twice: the format layer, then the
		// protocol layer.
		return fmt.Sprintf("Could not open '%s': %s", path, reason(path, err))
	}
	if errors.Is(err, image.ErrWrongFormat) && format != "" {
		return fmt.Sprintf("Image is not in %s format", format)
	}
	return reason(path, err)
}

// warnProbedRaw is qemu-img's warning when a command opens a file for
// writing whose format it probed as raw.
func (e *env) warnProbedRaw(path string) {
	fmt.Fprintf(e.stderr, "WARNING: Image format was not specified for '%s' and probing guessed raw.\n"+
		"         Automatically detecting the format is dangerous for raw images, write operations on block 0 will be restricted.\n"+
		"         Specify the 'raw' format explicitly to remove the restrictions.\n", path)
}

// formatError is qemu-img's message for an unknown -f/-O value.
func formatError(format string) error { return fail("Unknown file format '%s'", format) }

func closeImage(img image.Image, err *error) {
	if cerr := img.Close(); cerr != nil && *err == nil {
		*err = fail("%s", cerr)
	}
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return fmt.Sprintf("%ss", s)
}
