package image

import "strings"

// BackingPolicy says what opening an image does with the other files it
// names: a qcow2 image's backing and external data files, a VMDK
// descriptor's extent files. These names come from inside the image, so
// for an untrusted image they are a way to make qimg read any file on the
// host: use RefuseBacking for input you did not create.
type BackingPolicy int

const (
	// FollowBacking opens the files the image names, resolving relative
	// names against the image's directory, as QEMU does.
	FollowBacking BackingPolicy = iota
	// RefuseBacking makes opening fail with ErrBackingRefused if the image
	// names a backing or data file.
	RefuseBacking
	// IgnoreBacking opens the image without its backing file: unallocated
	// runs read as zeros. Used to inspect one layer. An external data file
	// is still opened, since it holds this layer's data.
	IgnoreBacking
)

// MaxChainDepth bounds backing chains (QEMU's limit is similar): a deeper
// chain is almost certainly a loop or an attack.
const MaxChainDepth = 64

// ResolveName is QEMU's path_combine: a relative name stored in the image
// at base is taken relative to base's directory by plain concatenation
// (no cleaning), so that names open and print exactly as in qemu-img.
// Absolute names are used as they are.
func ResolveName(base, name string) string {
	if name == "" || strings.HasPrefix(name, "/") {
		return name
	}
	i := strings.LastIndexByte(base, '/')
	if i < 0 {
		return name
	}
	return base[:i+1] + name
}
