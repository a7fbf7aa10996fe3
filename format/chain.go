package format

import (
	"errors"
	"fmt"

	"github.com/qimg/qimg/image"
)

// Layer is one image of a backing chain, opened on its own.
type Layer struct {
	// Name is the file as qemu-img names it: the path given for the top,
	// then each backing name resolved against the layer above.
	Name   string
	Format string
	Image  image.Image
}

// Chain is a backing chain opened layer by layer, top first, each layer
// without its backing file, so that callers can tell the layers apart
// (qemu-img map's depth, info --backing-chain).
type Chain []Layer

// BackingError is a failure to open a file that a layer of a chain names
// as its backing file.
type BackingError struct {
	// Name is the backing file, resolved against the layer that names it.
	Name string
	Err  error
}

func (e *BackingError) Error() string {
	return fmt.Sprintf("opening backing file %s: %v", e.Name, e.Err)
}

func (e *BackingError) Unwrap() error { return e.Err }

// LoopError means a backing chain names a file twice.
type LoopError struct {
	Name string // the file named again
}

func (e *LoopError) Error() string {
	return fmt.Sprintf("backing file %s creates an infinite loop", e.Name)
}

// Is makes a loop an image.ErrLimit.
func (e *LoopError) Is(target error) bool { return target == image.ErrLimit }

// ErrChainTooDeep means a chain has more than image.MaxChainDepth
// backing files.
var ErrChainTooDeep = fmt.Errorf("backing chain deeper than %d images: %w", image.MaxChainDepth, image.ErrLimit)

// OpenChain opens the image at path (o.Format, or probed) and every
// backing file below it, read-only, each on its own. With o.Backing set to
// RefuseBacking an image that names any other file is refused; otherwise
// the chain is followed (external data files are opened with their
// layer). The caller closes the chain.
func OpenChain(path string, o OpenOptions) (Chain, error) {
	if o.Writable {
		return nil, image.FileErrorf(path, "OpenChain opens read-only: %w", image.ErrInvalidArgument)
	}
	policy := image.IgnoreBacking // the chain is walked here, layer by layer
	if o.Backing == image.RefuseBacking {
		policy = image.RefuseBacking
	}
	var c Chain
	seen := map[string]bool{}
	name, format := path, o.Format
	keys := OpenOptions{Key: o.Key, BackingKeys: o.BackingKeys}
	for depth := 0; ; depth++ {
		if depth > image.MaxChainDepth {
			return nil, errors.Join(image.FileErrorf(path, "%w", ErrChainTooDeep), c.Close())
		}
		if seen[name] {
			return nil, errors.Join(&LoopError{Name: name}, c.Close())
		}
		seen[name] = true
		lo := OpenOptions{Format: format, Backing: policy, MetadataOnly: o.MetadataOnly, Key: keys.Key}
		keys = keys.backingLayer("")
		img, f, err := openLayer(name, lo, depth)
		if err != nil {
			if depth > 0 {
				err = &BackingError{Name: name, Err: err}
			}
			return nil, errors.Join(err, c.Close())
		}
		c = append(c, Layer{Name: name, Format: f, Image: img})
		b, ok := img.(image.BackingNamer)
		next, nextFormat := "", ""
		if ok {
			next, nextFormat = b.BackingFile()
		}
		if next == "" {
			if err := unusedBackingKey(name, f, img, append([][]byte{keys.Key}, keys.BackingKeys...), depth); err != nil {
				return nil, errors.Join(err, c.Close())
			}
			return c, nil
		}
		name, format = image.ResolveName(name, next), nextFormat
	}
}

// Close closes every layer.
func (c Chain) Close() error {
	var errs []error
	for _, l := range c {
		errs = append(errs, l.Image.Close())
	}
	return errors.Join(errs...)
}
