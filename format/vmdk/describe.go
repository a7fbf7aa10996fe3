package vmdk

import "github.com/qimg/qimg/image"

var (
	_ image.Describer = (*Image)(nil)
	_ image.Mapper    = (*Image)(nil)
)

// Describe says what qemu-img info shows of a VMDK: the first extent's
// grain size as cluster size, the extent files (whose disk usage counts as
// the image's), and the descriptor's CIDs, create type and extents as
// format-specific data.
func (img *Image) Describe() (image.Description, error) {
	d := image.Description{Format: "vmdk", SpecificType: "vmdk"}
	extents := []any{}
	for i, e := range img.info.Extents {
		if i == 0 {
			d.ClusterSize = e.ClusterSize
		}
		if e.Filename != "" {
			d.UsageFiles = append(d.UsageFiles, e.Filename)
		}
		f := image.Fields{}.Add("virtual-size", e.VirtualSize).Add("filename", e.Filename)
		if e.ClusterSize > 0 {
			f = f.Add("cluster-size", e.ClusterSize)
		}
		if e.Compressed {
			f = f.Add("compressed", true)
		}
		extents = append(extents, f.Add("format", e.Type))
	}
	d.Specific = image.Fields{}.Add("cid", int64(img.info.CID)).Add("parent-cid", int64(img.info.ParentCID)).
		Add("create-type", img.info.CreateType).Add("extents", extents)
	return d, nil
}

// HostLayout names the extent file holding each guest range, as qemu-img
// map shows them.
func (img *Image) HostLayout() (image.HostLayout, error) {
	var l image.HostLayout
	end := int64(0)
	for _, e := range img.info.Extents {
		end += e.VirtualSize
		l.Files = append(l.Files, image.HostFile{End: end, Name: e.Filename})
	}
	return l, nil
}
