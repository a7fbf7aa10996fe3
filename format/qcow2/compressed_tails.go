package qcow2

import "slices"

// maxCompTails bounds the partly filled clusters remembered for packing
// compressed data, and so the work of each compressed write.
const maxCompTails = 32

// minCompTail is the least room worth remembering: about what a cluster
// of zeros compresses to.
const minCompTail = 64

// fitTail finds, among the remembered partly filled clusters, the one
// whose free room holds n bytes most tightly (best fit keeps the larger
// holes for larger clusters), takes it and returns the host offset; -1
// when none fits. Without this, every plain cluster written between two
// compressed ones strands the rest of the compressed cluster before it, as
// in QEMU: 0.6 % of a compressed disk image.
func (img *Image) fitTail(n int64) (int64, error) {
	rc := img.alloc
	cs := img.hdr.ClusterSize()
	best := -1
	for i, at := range rc.compTails {
		if room := cs - at%cs; room >= n && (best < 0 || room < cs-rc.compTails[best]%cs) {
			best = i
		}
	}
	if best < 0 {
		return -1, nil
	}
	host := rc.compTails[best]
	shareable, err := img.canShare(host)
	if err != nil || !shareable {
		rc.compTails = slices.Delete(rc.compTails, best, best+1)
		return -1, err
	}
	if err := rc.add(host/cs, 1); err != nil {
		return -1, err
	}
	rc.compTails[best] = host + n
	if cs-(host+n)%cs < minCompTail || (host+n)%cs == 0 {
		rc.compTails = slices.Delete(rc.compTails, best, best+1)
	}
	return host, nil
}

// keepTail remembers the partly filled cluster at the packing cursor
// before the cursor moves on, dropping the remembered cluster with the
// least room when there are too many.
func (rc *refcounts) keepTail(at int64) {
	cs := rc.img.hdr.ClusterSize()
	if at%cs == 0 || cs-at%cs < minCompTail {
		return
	}
	if len(rc.compTails) == maxCompTails {
		least := 0
		for i, t := range rc.compTails {
			if cs-t%cs < cs-rc.compTails[least]%cs {
				least = i
			}
		}
		if cs-at%cs <= cs-rc.compTails[least]%cs {
			return
		}
		rc.compTails = slices.Delete(rc.compTails, least, least+1)
	}
	rc.compTails = append(rc.compTails, at)
}

// dropTail forgets host cluster c, which is free now: it may come back
// as anything.
func (rc *refcounts) dropTail(c int64) {
	cs := rc.img.hdr.ClusterSize()
	rc.compTails = slices.DeleteFunc(rc.compTails, func(at int64) bool { return at/cs == c })
}
