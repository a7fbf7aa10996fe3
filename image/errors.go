package image

import (
	"errors"
	"fmt"
)

// Error classes. Format packages wrap them with the file name and the exact
// problem (image.FileErrorf(name, "L1 table past end of file: %w",
// image.ErrCorrupt)); callers pick a class with errors.Is and show the
// wrapped text to people.
var (
	// ErrWrongFormat means the data is not in the format that was asked
	// for. Probing tries the next format on it and nothing else.
	ErrWrongFormat = errors.New("wrong image format")
	// ErrCorrupt means the image breaks its format's rules: offsets past
	// the end of file, overlapping tables, bad magic in a structure.
	ErrCorrupt = errors.New("corrupt image")
	// ErrUnsupported means the image is valid but uses something qimg does
	// not implement (an unknown incompatible feature, an encryption scheme).
	ErrUnsupported = errors.New("unsupported image feature")
	// ErrEncrypted means the guest data is encrypted and cannot be read
	// without a key; metadata such as the header can still be shown.
	ErrEncrypted = errors.New("image is encrypted")
	// ErrLimit means a field asks for more than qimg allows (a table larger
	// than QEMU accepts, a backing chain deeper than the limit).
	ErrLimit = errors.New("image exceeds a limit")
	// ErrInvalidArgument means the caller asked for something impossible
	// (a negative size, an unknown option value).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrUnaligned means a size or offset is not a multiple of the unit
	// the format needs (a qcow2 virtual size of whole sectors). It is an
	// ErrInvalidArgument too.
	ErrUnaligned = fmt.Errorf("not aligned: %w", ErrInvalidArgument)
	// ErrReadOnly means a write was attempted on an image opened read-only.
	ErrReadOnly = errors.New("image is read-only")
	// ErrBackingRefused means the image names a backing file and the
	// caller's policy forbids opening it.
	ErrBackingRefused = errors.New("backing file refused by policy")
)

// Error is an error of one class whose text is a message for people and
// nothing else, so that callers can show it as it is (a command line shows
// qemu-img's wording without cutting strings), while errors.Is still finds
// the class.
type Error struct {
	Class error
	Msg   string
}

func (e *Error) Error() string { return e.Msg }

func (e *Error) Unwrap() error { return e.Class }

// Errorf makes an *Error of class with a formatted message.
func Errorf(class error, format string, args ...any) error {
	return &Error{Class: class, Msg: fmt.Sprintf(format, args...)}
}

// FileError is an error about one file: Name is the file and Err what is
// wrong with it. Its text is "Name: Err", as format packages have always
// worded their errors; a caller that already names the file (qemu-img's
// "Could not open 'NAME': ...") shows Err alone instead of cutting the
// name off the text.
type FileError struct {
	Name string
	Err  error
}

func (e *FileError) Error() string { return e.Name + ": " + e.Err.Error() }

func (e *FileError) Unwrap() error { return e.Err }

// FileErrorf makes a *FileError about the file name; format and args are
// as for fmt.Errorf (%w wraps an error class).
func FileErrorf(name, format string, args ...any) error {
	return &FileError{Name: name, Err: fmt.Errorf(format, args...)}
}
