package qcow2

// WriteZeroes makes [off, off+length) read as zeros. Whole clusters get a
// zero entry and lose their host cluster; partial clusters are written.
func (img *Image) WriteZeroes(off, length int64) error {
	return img.zeroRange(off, length, zeroWrite)
}

// Discard drops the data of whole clusters in [off, off+length): they
// read as zeros afterwards (never as backing data) and their host clusters
// are freed. Partial clusters at the ends are left alone, as discard is
// advisory.
func (img *Image) Discard(off, length int64) error {
	return img.zeroRange(off, length, zeroDiscard)
}

// zeroMode says how zeroRange treats clusters.
type zeroMode int

const (
	zeroWrite   zeroMode = iota // every byte reads as zero afterwards
	zeroDiscard                 // whole clusters read as zero; partial ones untouched
	zeroDrop                    // whole clusters become unallocated (shrink)
)

func (img *Image) zeroRange(off, length int64, mode zeroMode) error {
	if err := img.checkWrite(off, length); err != nil {
		return err
	}
	img.mu.Lock()
	defer img.mu.Unlock()
	cs := img.hdr.ClusterSize()
	end := off + length
	// Clusters cut by the end of the image count as whole: their tail is
	// outside the disk.
	wholeFrom := (off + cs - 1) &^ (cs - 1)
	wholeTo := end &^ (cs - 1)
	if end == img.Size() {
		wholeTo = (end + cs - 1) &^ (cs - 1)
	}
	if wholeFrom >= wholeTo {
		wholeFrom, wholeTo = end, end
	}
	if mode == zeroWrite {
		if err := img.writeZeroBytes(off, min(wholeFrom, end)-off); err != nil {
			return err
		}
		if err := img.writeZeroBytes(max(wholeTo, wholeFrom), end-max(wholeTo, wholeFrom)); err != nil {
			return err
		}
	}
	for pos := wholeFrom; pos < wholeTo; {
		n := img.l2Span(pos, wholeTo-pos)
		if err := img.zeroClusters(pos, n, mode); err != nil {
			return err
		}
		pos += n
	}
	return nil
}

func (img *Image) writeZeroBytes(off, n int64) error {
	if n <= 0 {
		return nil
	}
	zeros := make([]byte, n)
	for done := int64(0); done < n; {
		chunk := img.l2Span(off+done, n-done)
		if err := img.writeChunk(zeros[done:done+chunk], off+done); err != nil {
			return err
		}
		done += chunk
	}
	return nil
}

// zeroClusters gives whole clusters [off, off+n) under one L2 table a
// zero entry, or in zeroDrop mode none at all (they become unallocated).
// Like QEMU, so that qemu-img map shows the same after qimg: with a
// backing file every cluster gets the zero flag (the backing data must not
// show); without one, written zeros get it in a version 3 image, and a
// discard gives it only to clusters that were allocated.
func (img *Image) zeroClusters(off, n int64, mode zeroMode) error {
	h := img.hdr
	cs := h.ClusterSize()
	l1Index := (off >> h.ClusterBits) / h.L2Entries()
	flagAll := mode != zeroDrop && (img.backing != nil || mode == zeroWrite && h.Version >= 3)
	flagAllocated := mode == zeroDiscard && img.backing == nil && h.Version >= 3
	if img.l1[l1Index]&offsetMask == 0 && !flagAll {
		return nil
	}
	if flagAll && h.Version < 3 {
		// Version 2 has no zero flag: write real zeros over the backing data.
		return img.writeZeroBytes(off, min(n, img.Size()-off))
	}
	t, fresh, err := img.l2ForWrite(l1Index)
	if err != nil {
		return err
	}
	if err := img.alloc.flush(); err != nil {
		return err
	}
	per := h.L2EntrySize() / 8
	lo := (off >> h.ClusterBits) % h.L2Entries()
	hi := lo + n/cs
	if n%cs != 0 {
		hi++
	}
	for i := lo; i < hi; i++ {
		old := t.entries[i*per]
		allocated := old != 0 || h.ExtendedL2() && t.entries[i*per+1] != 0
		zeroFlag := flagAll || flagAllocated && allocated
		img.freeEntry(old)
		t.entries[i*per] = 0
		if h.ExtendedL2() {
			t.entries[i*per+1] = 0
			if zeroFlag {
				t.entries[i*per+1] = 0xffffffff << 32
			}
		} else if zeroFlag {
			t.entries[i*per] = flagZero
		}
		if h.IncompatibleFeatures&IncompatDataFile != 0 && h.AutoclearFeatures&AutoclearDataFileRaw != 0 {
			// A raw data file must stay a valid raw image: keep the
			// mapping and write the zeros there.
			t.entries[i*per] = uint64((l1Index*h.L2Entries()+i)*cs) | flagCopied
		}
	}
	if h.IncompatibleFeatures&IncompatDataFile != 0 && h.AutoclearFeatures&AutoclearDataFileRaw != 0 {
		if err := img.zeroDataFile(off, min(n, img.Size()-off)); err != nil {
			return err
		}
	}
	if err := img.commitL2(t, fresh, l1Index, lo, hi); err != nil {
		return err
	}
	return img.alloc.flush()
}

func (img *Image) zeroDataFile(off, n int64) error { return writeZeros(img.dataW, off, n) }
