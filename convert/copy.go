package convert

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"sync"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/image"
)

// What the writer does with one block of a unit.
type blockAction uint8

const (
	actSkip blockAction = iota // the target already reads this content
	actZero                    // write zeros cheaply (zero flag or hole)
	actData                    // write the bytes
)

// unit is a slice of the guest disk that one worker reads, classifies and
// (when compressing) compresses, and the writer then stores in order.
type unit struct {
	off  int64
	n    int64
	buf  []byte
	act  []blockAction
	comp [][]byte // compressed blocks, nil where not compressible
	// verbatim are the runs of the unit that the source stores as they
	// are in its host file, in order, when the copy can use them.
	verbatim []fileRun
	err      error
	done     chan struct{}
}

// copier carries one conversion's settings between its goroutines.
type copier struct {
	src        image.Image
	dst        format.Target
	cdst       image.CompressedWriter // dst when it compresses clusters (qcow2)
	base       image.Image            // the target's backing file, compared against
	compress   bool
	targetZero bool
	block      int64 // classification granularity
	unitSize   int64
	sparse     int64 // zero runs shorter than this are written as data
	dense      bool  // -S 0: every zero is written
	bufs       sync.Pool
	// srcFile holds the source's verbatim data and fileDst takes data
	// from it inside the kernel, when both sides can (uncompressed
	// output, unencrypted host files on each side); else nil.
	srcFile *os.File
	fileDst image.FileRangeWriter
	// offload (Options.CopyOffload, with srcFile set) leaves the verbatim
	// runs unread: they are written as data, copied by CopyFrom.
	offload bool
}

// fileRun is a run of guest bytes [start, end) stored verbatim at host in
// the source's host file.
type fileRun struct {
	start, end, host int64
}

func newCopier(src image.Image, dst format.Target, o Options, targetZero bool) *copier {
	c := &copier{src: src, dst: dst, targetZero: targetZero,
		sparse: o.sparseSize(), dense: o.SparseSize < 0, block: 4096}
	if cw, ok := dst.(image.CompressedWriter); ok {
		c.cdst = cw
		// Other compressed targets (a VMDK stream) compress by themselves.
		c.compress = o.Compress
		c.block = cw.ClusterSize()
		if l, ok := dst.(image.Layered); ok {
			c.base = l.Backing()
		}
	} else if c.sparse > 0 && c.sparse < c.block {
		c.block = c.sparse
	}
	c.unitSize = max(c.block, 1<<20)
	c.useFileCopy()
	c.offload = o.CopyOffload && c.srcFile != nil && c.base == nil && c.kernelCopies()
	c.bufs.New = func() any { return make([]byte, c.unitSize) }
	return c
}

// useFileCopy lets data go from the source's file to the target's inside
// the kernel (copy_file_range) when both offer it and the bytes are stored
// unchanged, saving a copy through user space. The data is still read,
// to find zero blocks exactly as before, so the output does not change.
func (c *copier) useFileCopy() {
	hf, ok := c.src.(image.HostFiler)
	fw, ok2 := c.dst.(image.FileRangeWriter)
	if !ok || !ok2 || c.compress {
		return
	}
	if f := hf.HostFile(); f != nil {
		c.srcFile, c.fileDst = f, fw
	}
}

// kernelCopies reports whether the kernel copies from the source's file
// to the target's. Where it does not, -C reads the data and looks for
// zeros as without it, which is what qemu-img -C falls back to.
func (c *copier) kernelCopies() bool {
	hf, ok := c.dst.(image.HostFiler)
	return ok && hf.HostFile() != nil && image.KernelCopies(hf.HostFile(), c.srcFile)
}

// copyImage copies src into dst with a pool of workers and one writer that
// stores units in guest order, so memory stays bounded by the units in
// flight whatever the image size.
func copyImage(ctx context.Context, src image.Image, dst format.Target, o Options, targetZero bool) error {
	c := newCopier(src, dst, o, targetZero)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := o.workers()
	jobs := make(chan *unit, workers)
	order := make(chan *unit, 2*workers)
	go c.produce(ctx, jobs, order)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range jobs {
				if ctx.Err() == nil {
					u.err = c.fill(u)
				} else {
					u.err = ctx.Err()
				}
				close(u.done)
			}
		}()
	}
	err := c.drain(ctx, order, o.Progress)
	cancel()
	for u := range order { // let the producer finish
		<-u.done
	}
	wg.Wait()
	return err
}

func (c *copier) produce(ctx context.Context, jobs, order chan<- *unit) {
	defer close(order)
	defer close(jobs)
	size := c.src.Size()
	for off := int64(0); off < size; off += c.unitSize {
		u := &unit{off: off, n: min(c.unitSize, size-off), done: make(chan struct{})}
		select {
		case order <- u:
		case <-ctx.Done():
			return
		}
		jobs <- u // workers drain jobs until it is closed
	}
}

// drain is the writer: it takes units in order and stores them.
func (c *copier) drain(ctx context.Context, order <-chan *unit, progress func(int64, int64)) error {
	total := c.src.Size()
	var done int64
	for u := range order {
		<-u.done
		if u.err == nil {
			u.err = ctx.Err()
		}
		if u.err == nil {
			u.err = c.store(u)
		}
		if u.buf != nil {
			c.bufs.Put(u.buf[:cap(u.buf)])
		}
		if u.err != nil {
			return u.err
		}
		done += u.n
		if progress != nil {
			progress(done, total)
		}
	}
	return ctx.Err()
}

// fill reads a unit, skipping the source's holes, classifies its blocks
// and compresses the data blocks when asked.
func (c *copier) fill(u *unit) error {
	first, err := c.src.Extent(u.off, u.n)
	if err != nil {
		return err
	}
	blocks := (u.n + c.block - 1) / c.block
	u.act = make([]blockAction, blocks)
	if (!first.Data || first.Zero) && first.Length == u.n && c.base == nil && !c.dense {
		for i := range u.act {
			u.act[i] = c.zeroAction()
		}
		return nil
	}
	u.buf = c.bufs.Get().([]byte)[:u.n]
	if err := c.read(u); err != nil {
		return err
	}
	var baseBuf []byte
	if c.base != nil {
		baseBuf = make([]byte, c.block)
	}
	for i := range u.act {
		start, end := int64(i)*c.block, min(int64(i+1)*c.block, u.n)
		if c.offload && u.overlapsVerbatim(u.off+start, u.off+end) {
			u.act[i] = actData // not read: copied whatever it holds
			continue
		}
		if u.act[i], err = c.classify(u.buf[start:end], u.off+start, baseBuf); err != nil {
			return err
		}
	}
	if c.compress {
		u.comp = make([][]byte, blocks)
		for i, a := range u.act {
			if a == actData {
				b := u.buf[int64(i)*c.block : min(int64(i+1)*c.block, u.n)]
				if u.comp[i], err = c.cdst.Compress(b); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// read fills u.buf from the source, reading only extents that hold data.
func (c *copier) read(u *unit) error {
	for e, err := range image.Extents(c.src, u.off, u.n) {
		if err != nil {
			return err
		}
		dst := u.buf[e.Start-u.off : e.End()-u.off]
		if !e.Data || e.Zero { // known zeros need no reading
			clear(dst)
			continue
		}
		verbatim := c.srcFile != nil && e.Depth == 0 && !e.Compressed && e.HostOffset >= 0
		if verbatim {
			u.verbatim = append(u.verbatim, fileRun{e.Start, e.End(), e.HostOffset})
			if c.offload {
				continue
			}
		}
		if _, err := c.src.ReadAt(dst, e.Start); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
	}
	return nil
}

// overlapsVerbatim reports whether guest bytes [start, end) meet one of
// the unit's verbatim runs.
func (u *unit) overlapsVerbatim(start, end int64) bool {
	for _, r := range u.verbatim {
		if r.start < end && start < r.end {
			return true
		}
	}
	return false
}

func (c *copier) zeroAction() blockAction {
	if c.targetZero {
		return actSkip
	}
	return actZero
}

// classify decides what to do with one block of guest data at off.
func (c *copier) classify(b []byte, off int64, baseBuf []byte) (blockAction, error) {
	zero := isZero(b)
	if c.dense {
		return actData, nil
	}
	if c.base == nil {
		if zero {
			return c.zeroAction(), nil
		}
		return actData, nil
	}
	// With a backing file the target shows the base wherever it is not
	// written: skip what the base already holds.
	baseBuf = baseBuf[:len(b)]
	clear(baseBuf)
	if off < c.base.Size() {
		n := min(int64(len(b)), c.base.Size()-off)
		if _, err := c.base.ReadAt(baseBuf[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
	}
	switch {
	case bytes.Equal(b, baseBuf):
		return actSkip, nil
	case zero:
		return actZero, nil
	}
	return actData, nil
}

// store writes a unit: runs of data blocks in one write each (or one
// compressed write per cluster), zero runs as zero writes. Zero runs
// shorter than the sparse size are written as data, as qemu-img -S does.
func (c *copier) store(u *unit) error {
	c.densify(u)
	for i := 0; i < len(u.act); {
		j := i + 1
		for j < len(u.act) && u.act[j] == u.act[i] && !c.compress {
			j++
		}
		off := u.off + int64(i)*c.block
		end := min(u.off+int64(j)*c.block, u.off+u.n)
		var err error
		switch u.act[i] {
		case actData:
			if c.compress {
				err = c.cdst.WriteCompressedData(u.buf[off-u.off:end-u.off], u.comp[i], off)
			} else {
				err = c.writeData(u, off, end)
			}
		case actZero:
			err = c.dst.WriteZeroes(off, end-off)
		}
		if err != nil {
			return err
		}
		i = j
	}
	return nil
}

// writeData writes the guest bytes [off, end) of u, having the kernel copy
// the runs that the source stores verbatim in its file.
func (c *copier) writeData(u *unit, off, end int64) error {
	for _, r := range u.verbatim {
		if r.end <= off || r.start >= end {
			continue
		}
		if r.start > off {
			if _, err := c.dst.WriteAt(u.buf[off-u.off:r.start-u.off], off); err != nil {
				return err
			}
			off = r.start
		}
		stop := min(r.end, end)
		var err error
		if c.offload {
			err = c.fileDst.CopyFrom(off, stop-off, c.srcFile, r.host+off-r.start)
		} else {
			_, err = c.fileDst.WriteAtFrom(u.buf[off-u.off:stop-u.off], off, c.srcFile, r.host+off-r.start)
		}
		if err != nil {
			return err
		}
		off = stop
	}
	if off < end {
		_, err := c.dst.WriteAt(u.buf[off-u.off:end-u.off], off)
		return err
	}
	return nil
}

// densify turns zero runs shorter than the sparse size into data. Runs
// are measured inside one unit.
func (c *copier) densify(u *unit) {
	if c.sparse <= c.block || u.buf == nil {
		return
	}
	for i := 0; i < len(u.act); {
		if u.act[i] == actData || c.base != nil && u.act[i] == actSkip {
			i++
			continue
		}
		j := i
		for j < len(u.act) && u.act[j] == u.act[i] {
			j++
		}
		if int64(j-i)*c.block < c.sparse {
			for k := i; k < j; k++ {
				u.act[k] = actData
				if c.compress {
					// A zero cluster compresses to a few bytes.
					b := u.buf[int64(k)*c.block : min(int64(k+1)*c.block, u.n)]
					u.comp[k], _ = c.cdst.Compress(b)
				}
			}
		}
		i = j
	}
}

// isZero reports whether b holds only zero bytes, comparing against a
// zero page so the runtime's vectorised memequal does the work.
func isZero(b []byte) bool {
	var zeros [4096]byte
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}
