package qcow2

import "github.com/qimg/qimg/image"

// The COPIED flags of the active L1 and L2 tables, which must be set
// exactly for clusters whose refcount is 1.

// checkCopied checks that the COPIED flag of each active L1 and L2 entry
// is set exactly when the refcount is 1 (QEMU's check_oflag_copied). It
// runs after refcount repairs, which are synced first, so a flag set here
// never claims more than the disk says.
func (c *checker) checkCopied(fix image.RepairMode) error {
	res := c.res
	repair := fix.Errors() || fix.Leaks() && res.CheckErrors == 0 && res.Corruptions == 0 && res.Leaks == 0
	if repair {
		if err := c.img.wfile.Sync(); err != nil {
			return err
		}
	}
	for i, e := range c.img.l1 {
		l2 := e & offsetMask
		if l2 == 0 {
			continue
		}
		n, err := c.stored.get(int64(l2 >> c.cbits))
		if err != nil {
			continue // QEMU neither reports nor counts this again
		}
		if (n == 1) != (e&flagCopied != 0) {
			if err := c.fixL1Copied(i, e, n, repair); err != nil {
				return err
			}
		}
		if err := c.checkL2Copied(l2, repair); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) fixL1Copied(i int, e, n uint64, repair bool) error {
	c.res.Corruptions++
	c.msg("%s OFLAG_COPIED L2 cluster: l1_index=%d l1_entry=%x refcount=%d", repairWord(repair), i, e, n)
	if !repair {
		return nil
	}
	img := c.img
	e = withCopied(e, n == 1)
	if err := img.writeBE64(int64(img.hdr.L1TableOffset)+int64(i)*8, e); err != nil {
		c.res.CheckErrors++
		return err
	}
	img.l1[i] = e
	c.res.Corruptions--
	c.res.CorruptionsFixed++
	return nil
}

func repairWord(repair bool) string {
	if repair {
		return "Repairing"
	}
	return "ERROR"
}

func withCopied(e uint64, copied bool) uint64 {
	if copied {
		return e | flagCopied
	}
	return e &^ flagCopied
}

// checkL2Copied checks the COPIED flags of one active L2 table, writing
// back the entries it repairs.
func (c *checker) checkL2Copied(l2 uint64, repair bool) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	buf := c.l2Buffer()
	if err := c.img.readAt(buf, l2); err != nil {
		c.msg("ERROR: Could not read L2 table: %v", err)
		c.res.CheckErrors++
		return err
	}
	// Only a table that really is in the file is rewritten.
	writable := l2%uint64(c.cs) == 0 && int64(l2)+c.cs <= c.fileSize
	stride := c.img.hdr.L2EntrySize()
	for i := range c.img.hdr.L2Entries() {
		e, _ := c.l2Entry(buf, i)
		typ := c.typeOf(e)
		if typ != ctNormal && typ != ctZeroAlloc {
			continue
		}
		n := uint64(1)
		if !c.dataFile {
			var err error
			if n, err = c.stored.get(int64((e & offsetMask) >> c.cbits)); err != nil {
				continue
			}
		}
		if (n == 1) == (e&flagCopied != 0) {
			continue
		}
		c.res.Corruptions++
		fix := repair && writable
		c.msg("%s OFLAG_COPIED data cluster: l2_entry=%x refcount=%d", repairWord(fix), e, n)
		if !fix {
			continue
		}
		if err := c.img.writeBE64(int64(l2)+i*stride, withCopied(e, n == 1)); err != nil {
			c.msg("ERROR: Could not write L2 table: %v", err)
			c.res.CheckErrors++
			return err
		}
		c.res.Corruptions--
		c.res.CorruptionsFixed++
	}
	return nil
}
