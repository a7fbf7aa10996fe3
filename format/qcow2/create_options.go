package qcow2

import (
	"math/bits"

	"github.com/qimg/qimg/image"
)

// Validate checks the options as qemu-img checks its -o list, in its order
// and with its messages (errors of class image.ErrInvalidArgument whose
// text is qemu-img's). Zero values mean the defaults: cluster size 65536,
// 16-bit refcounts, zlib, compat 1.1, no preallocation.
func (o *CreateOptions) Validate() error {
	bad := func(format string, args ...any) error {
		return image.Errorf(image.ErrInvalidArgument, format, args...)
	}
	v3 := true
	switch o.Compat {
	case "", "1.1", "v3":
	case "0.10", "v2":
		v3 = false
	default:
		return bad("Parameter 'version' does not accept value '%s'", o.Compat)
	}
	if cs := o.ClusterSize; cs != 0 && (cs < 512 || cs > 2<<20 || bits.OnesCount64(uint64(cs)) != 1) {
		return bad("Cluster size must be a power of two between 512 and 2048k")
	}
	rb := o.RefcountBits
	if rb != 0 && (rb < 1 || rb > 64 || bits.OnesCount(uint(rb)) != 1) {
		return bad("Refcount width must be a power of two and may not exceed 64 bits")
	}
	if !v3 && rb != 0 && rb != 16 {
		return bad("Different refcount widths than 16 bits require compatibility level 1.1 or above (use version=v3 or greater)")
	}
	switch o.Preallocation {
	case "", PreallocOff, PreallocMetadata, PreallocFalloc, PreallocFull:
	default:
		return bad("Parameter 'preallocation' does not accept value '%s'", o.Preallocation)
	}
	switch o.CompressionType {
	case "", "zlib", "zstd":
	default:
		return bad("Parameter 'compression-type' does not accept value '%s'", o.CompressionType)
	}
	if o.BackingFile == "" && o.BackingFormat != "" {
		return bad("Backing format cannot be used without backing file")
	}
	if err := o.validateV2(v3); err != nil {
		return err
	}
	if o.Encrypt != nil {
		if err := o.Encrypt.validate(); err != nil {
			return err
		}
	}
	if o.ExtendedL2 && o.EffectiveClusterSize() < 16384 {
		return bad("Extended L2 entries are only supported with cluster sizes of at least 16384 bytes")
	}
	if o.DataFileRaw && o.DataFile == "" {
		return bad("data-file-raw requires data-file")
	}
	if o.DataFileRaw && o.BackingFile != "" {
		return bad("Backing file and data-file-raw cannot be used at the same time")
	}
	if o.BackingFile != "" && o.Preallocation != "" && o.Preallocation != PreallocOff && !o.ExtendedL2 {
		return bad("Backing file and preallocation can only be used at the same time if extended_l2 is on")
	}
	return nil
}

// validateV2 refuses the features a version 2 (compat 0.10) image cannot
// have.
func (o *CreateOptions) validateV2(v3 bool) error {
	if v3 {
		return nil
	}
	var feature string
	switch {
	case o.DataFile != "":
		feature = "External data files are"
	case o.LazyRefcounts:
		feature = "Lazy refcounts"
	case o.CompressionType != "" && o.CompressionType != "zlib":
		feature = "Non-zlib compression type is"
	case o.ExtendedL2:
		feature = "Extended L2 entries are"
	default:
		return nil
	}
	return image.Errorf(image.ErrInvalidArgument, "%s only supported with compatibility level 1.1 and above (use version=v3 or greater)", feature)
}

// EffectiveClusterSize is the cluster size the options ask for: 65536
// when ClusterSize is 0.
func (o *CreateOptions) EffectiveClusterSize() int64 {
	if o.ClusterSize == 0 {
		return 65536
	}
	return o.ClusterSize
}
