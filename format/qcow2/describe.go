package qcow2

import (
	"github.com/qimg/qimg/format/luks"
	"github.com/qimg/qimg/image"
)

// Compile-time checks of the optional features an Image has.
var (
	_ image.Describer        = (*Image)(nil)
	_ image.BackingNamer     = (*Image)(nil)
	_ image.Layered          = (*Image)(nil)
	_ image.Resizer          = (*Image)(nil)
	_ image.CompressedWriter = (*Image)(nil)
	_ image.Rebaser          = (*Image)(nil)
	_ image.Committer        = (*Image)(nil)
	_ image.Mapper           = (*Image)(nil)
	_ image.BitmapHolder     = (*Image)(nil)
)

// BackingFile is the backing file's name and format as stored in the
// header ("" when the image has none).
func (img *Image) BackingFile() (name, format string) {
	return img.hdr.BackingFile, img.hdr.BackingFormat
}

// ClusterSize is the image's cluster size in bytes.
func (img *Image) ClusterSize() int64 { return img.hdr.ClusterSize() }

// Describe says what qemu-img info shows of the image: header fields,
// snapshots, bitmaps and the format-specific data in QAPI schema order.
func (img *Image) Describe() (image.Description, error) {
	h := img.hdr
	d := image.Description{
		Format:        "qcow2",
		ClusterSize:   h.ClusterSize(),
		Dirty:         h.IncompatibleFeatures&IncompatDirty != 0,
		Encrypted:     h.CryptMethod != cryptNone,
		BackingFile:   h.BackingFile,
		BackingFormat: h.BackingFormat,
		SpecificType:  "qcow2",
	}
	snaps, err := img.Snapshots()
	if err != nil {
		return d, err
	}
	for _, s := range snaps {
		d.Snapshots = append(d.Snapshots, image.Snapshot{ID: s.ID, Name: s.Name, VMStateSize: s.VMStateSize,
			Date: s.Date, VMClock: s.VMClock, Icount: s.Icount})
	}
	bitmaps, err := img.Bitmaps()
	if err != nil {
		return d, err
	}
	d.Specific = specificInfo(h, bitmaps, img.luks)
	return d, nil
}

// specificInfo is QEMU's ImageInfoSpecificQCow2, members in schema order.
func specificInfo(h *Header, bitmaps []Bitmap, lh *luks.Header) image.Fields {
	var d image.Fields
	if h.Version == 2 {
		d = d.Add("compat", "0.10")
		d = d.Add("refcount-bits", int64(h.RefcountBits()))
	} else {
		d = d.Add("compat", "1.1")
		if h.DataFile != "" {
			d = d.Add("data-file", h.DataFile)
		}
		if h.IncompatibleFeatures&IncompatDataFile != 0 {
			d = d.Add("data-file-raw", h.AutoclearFeatures&AutoclearDataFileRaw != 0)
		}
		d = d.Add("extended-l2", h.ExtendedL2())
		d = d.Add("lazy-refcounts", h.CompatibleFeatures&CompatLazyRefcounts != 0)
		d = d.Add("corrupt", h.IncompatibleFeatures&IncompatCorrupt != 0)
		d = d.Add("refcount-bits", int64(h.RefcountBits()))
	}
	if h.CryptMethod != cryptNone {
		d = d.Add("encrypt", encryptInfo(h, lh))
	}
	if h.Version >= 3 && len(bitmaps) > 0 {
		d = d.Add("bitmaps", bitmapList(bitmaps))
	}
	return d.Add("compression-type", h.CompressionName())
}

// encryptInfo is QEMU's QCryptoBlockInfo: the format, and for LUKS the
// header's algorithms and key slots, members in schema order.
func encryptInfo(h *Header, lh *luks.Header) image.Fields {
	f := image.Fields{}.Add("format", h.EncryptionName())
	if lh == nil {
		return f
	}
	in := lh.Info()
	f = f.Add("cipher-alg", in.CipherAlg).Add("cipher-mode", in.CipherMode).Add("ivgen-alg", in.IVGenAlg)
	if in.IVGenHashAlg != "" {
		f = f.Add("ivgen-hash-alg", in.IVGenHashAlg)
	}
	f = f.Add("hash-alg", in.HashAlg).Add("payload-offset", in.PayloadOffset).
		Add("master-key-iters", int64(in.MasterKeyIter)).Add("uuid", in.UUID)
	slots := make([]any, len(in.Slots))
	for i, s := range in.Slots {
		sf := image.Fields{}.Add("active", s.Active)
		if s.Active {
			sf = sf.Add("iters", int64(s.Iters)).Add("stripes", int64(s.Stripes))
		}
		slots[i] = sf.Add("key-offset", s.KeyOffset)
	}
	return f.Add("slots", slots)
}

// bitmapList is a list of Qcow2BitmapInfo, members in schema order.
func bitmapList(bitmaps []Bitmap) []any {
	list := make([]any, len(bitmaps))
	for i, b := range bitmaps {
		flags := []any{}
		if b.InUse {
			flags = append(flags, "in-use")
		}
		if b.Auto {
			flags = append(flags, "auto")
		}
		list[i] = image.Fields{}.Add("name", b.Name).Add("granularity", b.Granularity).Add("flags", flags)
	}
	return list
}

// HostLayout says where the image's data lives for qemu-img map: in the
// external data file when there is one, and with the file's holes showing
// through when the metadata was preallocated (QEMU then asks the file).
func (img *Image) HostLayout() (image.HostLayout, error) {
	var l image.HostLayout
	name := img.name
	if img.hdr.DataFile != "" {
		name = img.resolve(img.hdr.DataFile)
		l.Files = []image.HostFile{{End: img.Size(), Name: name}}
	}
	pre, err := img.MetadataPreallocated()
	if err != nil {
		return l, err
	}
	if pre {
		l.HoleFile = name
	}
	return l, nil
}
