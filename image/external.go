package image

import "fmt"

// ExternalKind is the role of a file an image names.
type ExternalKind string

// The files a qcow2 image may name.
const (
	KindBackingFile ExternalKind = "backing file"
	KindDataFile    ExternalKind = "data file"
)

// ExternalError is a failure to open a file an image names, its backing
// file or external data file. It keeps both names apart so that callers
// can say which image is unusable and which file is to blame, as qemu-img
// does ("Could not open 'overlay.qcow2': Could not open backing file:
// ..."); a chain nests one ExternalError per level in Err.
type ExternalError struct {
	Image string       // the image that names the file
	Kind  ExternalKind // the role of the file
	Name  string       // the name as stored in the image
	Path  string       // the file opened: Name resolved against Image's directory
	Err   error        // why opening Path failed
}

func (e *ExternalError) Error() string {
	return fmt.Sprintf("%s: opening %s %q: %v", e.Image, e.Kind, e.Path, e.Err)
}

func (e *ExternalError) Unwrap() error { return e.Err }
