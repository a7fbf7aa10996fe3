package vmdk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/adler32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/deflate"
)

// Layout of the streams StreamWriter writes: QEMU's header values (64 KiB
// grains, 512-entry grain tables, a 20-sector descriptor, grains from
// sector 128) in VMware's stream order (grain directory at the end).
const (
	streamGrainSectors = 128
	streamGTEs         = 512
	streamDescSectors  = 20
	streamOverhead     = 128
	// maxFileSectors: grain tables hold 32-bit sector numbers.
	maxFileSectors = 1 << 32
)

// StreamOptions are the qemu-img -o options of a streamOptimized VMDK.
type StreamOptions struct {
	// AdapterType is ddb.adapterType: ide (default), buslogic, lsilogic
	// or legacyESX.
	AdapterType string
	// HWVersion is ddb.virtualHWVersion; empty means "4" (or "6" with
	// Compat6).
	HWVersion string
	// Compat6 is qemu-img's compat6: hardware version 6.
	Compat6 bool
	// ToolsVersion is ddb.toolsVersion; empty means "2147483647" as QEMU
	// writes.
	ToolsVersion string
}

// StreamWriter writes a streamOptimized VMDK front to back: header and
// descriptor, then each non-zero grain compressed behind a grain marker,
// each grain table after its grains, and on Close the grain directory, the
// footer (the header again, now naming the directory) and the
// end-of-stream marker. This is the layout VMware writes for OVA/OVF
// exports and that ESXi imports; QEMU reads it through the footer.
//
// Writes must come in increasing offset order, as a conversion produces
// them; the bytes between two writes read as zeros. Grains are compressed
// on a pool of goroutines and written in order, so memory stays bounded
// by a few grains per CPU. A StreamWriter is not safe for concurrent use.
type StreamWriter struct {
	f          *os.File
	name       string
	size       int64
	grainBytes int64
	out        seqWriter

	next int64   // writes may not start before next
	cur  int64   // grain being filled, or -1
	buf  *[]byte // its content; nil while it holds only zeros

	gtIdx int64    // grain table being filled
	gt    []uint32 // its entries (sector of each grain's marker)
	gd    []uint32 // sector of each grain table, 0 if it has no grains

	jobs     chan *grainJob
	queue    []*grainJob // compressing or compressed, in file order
	inFlight int
	workers  sync.WaitGroup
	bufs     sync.Pool // *[]byte of one grain
	hdr      header
	err      error // sticky: the stream is broken after any error
	closed   bool
}

type grainJob struct {
	index int64
	in    *[]byte
	out   []byte // grain marker and compressed data, padded to a sector
	zero  bool
	err   error
	done  chan struct{}
}

// CreateStream starts a streamOptimized VMDK of size bytes (rounded up to
// whole sectors, as qemu-img does) in f, with descriptor options o (the
// zero value: qemu-img's defaults). name is the file name written in the
// descriptor (its base name) and in error messages. f is truncated first.
// The StreamWriter does not close f: after Close, the caller syncs (if it
// wants) and closes it.
func CreateStream(f *os.File, name string, size int64, o StreamOptions) (*StreamWriter, error) {
	if size < 0 || size > maxSectors*sectorSize {
		return nil, image.FileErrorf(name, "invalid size %d: %w", size, image.ErrInvalidArgument)
	}
	size = (size + sectorSize - 1) &^ (sectorSize - 1)
	desc, err := streamDescriptor(name, size, &o)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(0); err != nil {
		return nil, image.FileErrorf(name, "%w", err)
	}
	s := &StreamWriter{
		f: f, name: name, size: size, grainBytes: streamGrainSectors * sectorSize,
		cur: -1, gt: make([]uint32, streamGTEs),
		out: seqWriter{f: f, buf: make([]byte, 0, 1<<20)},
	}
	s.hdr = header{
		Version: 3, Flags: flagNLDetect | flagCompress | flagMarkers,
		Capacity: uint64(size / sectorSize), GrainSize: streamGrainSectors,
		DescriptorOffset: 1, DescriptorSize: streamDescSectors, NumGTEsPerGT: streamGTEs,
		GDOffset: gdAtEnd, OverHead: streamOverhead, CompressAlgo: compressDeflate,
	}
	s.gd = make([]uint32, s.hdr.gdEntries())
	head := make([]byte, streamOverhead*sectorSize)
	copy(head, s.hdr.encode())
	copy(head[sectorSize:], desc)
	s.out.write(head)
	s.bufs.New = func() any { b := make([]byte, s.grainBytes); return &b }
	workers := runtime.NumCPU()
	s.inFlight = 2*workers + 2
	s.jobs = make(chan *grainJob, s.inFlight)
	for range workers {
		s.workers.Add(1)
		go s.compressor()
	}
	return s, nil
}

// streamDescriptor is the embedded descriptor, as QEMU writes it.
func streamDescriptor(name string, size int64, o *StreamOptions) ([]byte, error) {
	adapter := o.AdapterType
	if adapter == "" {
		adapter = "ide"
	}
	heads := int64(16)
	switch adapter {
	case "ide":
	case "buslogic", "lsilogic", "legacyESX":
		// VMware's geometry for SCSI adapters.
		heads = 255
	default:
		return nil, image.FileErrorf(name, "adapter type %q (ide, buslogic, lsilogic or legacyESX): %w", adapter, image.ErrInvalidArgument)
	}
	hw := o.HWVersion
	if o.Compat6 {
		if hw != "" {
			return nil, image.FileErrorf(name, "compat6 cannot be enabled with hwversion set: %w", image.ErrInvalidArgument)
		}
		hw = "6"
	}
	if hw == "" {
		hw = "4"
	}
	tools := o.ToolsVersion
	if tools == "" {
		tools = "2147483647"
	}
	desc := fmt.Sprintf("# Disk DescriptorFile\n"+
		"version=1\n"+
		"CID=%x\n"+
		"parentCID=ffffffff\n"+
		"createType=\"streamOptimized\"\n"+
		"\n"+
		"# Extent description\n"+
		"RW %d SPARSE \"%s\"\n"+
		"\n"+
		"# The Disk Data Base\n"+
		"#DDB\n"+
		"\n"+
		"ddb.virtualHWVersion = \"%s\"\n"+
		"ddb.geometry.cylinders = \"%d\"\n"+
		"ddb.geometry.heads = \"%d\"\n"+
		"ddb.geometry.sectors = \"63\"\n"+
		"ddb.adapterType = \"%s\"\n"+
		"ddb.toolsVersion = \"%s\"\n",
		rand.Uint32(), size/sectorSize, filepath.Base(name), hw, size/(63*heads*sectorSize), heads, adapter, tools)
	if len(desc) > streamDescSectors*sectorSize {
		return nil, image.FileErrorf(name, "descriptor longer than %d sectors: %w", streamDescSectors, image.ErrInvalidArgument)
	}
	return []byte(desc), nil
}

// compressor deflates grains until the job channel closes.
func (s *StreamWriter) compressor() {
	defer s.workers.Done()
	var b []byte
	for j := range s.jobs {
		in := *j.in
		if isZero(in) {
			j.zero = true
		} else {
			// A zlib stream (RFC 1950) after the 12-byte grain marker:
			// header for the default level, deflate with the full 32 KiB
			// window (as zlib's level 6 compresses; klauspost's level 6
			// came out 2 % larger than qemu-img's grains), Adler-32.
			b = append(b[:0], make([]byte, 12)...)
			b = append(b, 0x78, 0x9c)
			b = deflate.CompressWindow(b, in, deflate.MaxWindowSize)
			b = binary.BigEndian.AppendUint32(b, adler32.Checksum(in))
			binary.LittleEndian.PutUint64(b, uint64(j.index*streamGrainSectors))
			binary.LittleEndian.PutUint32(b[8:], uint32(len(b)-12))
			j.out = make([]byte, (len(b)+sectorSize-1)&^(sectorSize-1))
			copy(j.out, b)
		}
		s.bufs.Put(j.in)
		j.in = nil
		close(j.done)
	}
}

// Size is the virtual size in bytes (whole sectors).
func (s *StreamWriter) Size() int64 { return s.size }

func (s *StreamWriter) checkRange(off, n int64) error {
	switch {
	case s.closed:
		return image.FileErrorf(s.name, "write after Close: %w", image.ErrInvalidArgument)
	case s.err != nil:
		return s.err
	case off < 0 || n < 0 || off > s.size || n > s.size-off:
		return image.FileErrorf(s.name, "write [%d,+%d) outside the image of %d bytes: %w", off, n, s.size, image.ErrInvalidArgument)
	case off < s.next:
		return image.FileErrorf(s.name, "write at %d after a write up to %d: a stream is written in order: %w", off, s.next, image.ErrInvalidArgument)
	}
	return nil
}

// WriteAt stores p at guest offset off, which must not be before the end
// of the previous write.
func (s *StreamWriter) WriteAt(p []byte, off int64) (int, error) {
	if err := s.checkRange(off, int64(len(p))); err != nil {
		return 0, err
	}
	done := 0
	for done < len(p) {
		g, in := off/s.grainBytes, off%s.grainBytes
		if g != s.cur {
			s.submit()
			s.cur = g
		}
		n := int(min(int64(len(p)-done), s.grainBytes-in))
		piece := p[done : done+n]
		if s.buf == nil && !isZero(piece) {
			s.buf = s.bufs.Get().(*[]byte)
			clear(*s.buf)
		}
		if s.buf != nil {
			copy((*s.buf)[in:], piece)
		}
		done += n
		off += int64(n)
		if off%s.grainBytes == 0 || off == s.size {
			s.submit() // the grain is complete
		}
		if s.err != nil {
			return done, s.err
		}
	}
	s.next = off
	return len(p), nil
}

// WriteZeroes makes [off, off+n) zeros: zero grains are simply not
// written.
func (s *StreamWriter) WriteZeroes(off, n int64) error {
	if err := s.checkRange(off, n); err != nil {
		return err
	}
	end := off + n
	if s.cur >= 0 && (end >= (s.cur+1)*s.grainBytes || end == s.size) {
		s.submit()
	}
	s.next = end
	return s.err
}

// submit hands the current grain to the compressors and writes out the
// grains that are ready, in order.
func (s *StreamWriter) submit() {
	if s.buf != nil && s.err == nil {
		j := &grainJob{index: s.cur, in: s.buf, done: make(chan struct{})}
		s.queue = append(s.queue, j)
		s.jobs <- j
	} else if s.buf != nil {
		s.bufs.Put(s.buf)
	}
	s.buf, s.cur = nil, -1
	s.drain(false)
}

// drain writes finished grains from the head of the queue; it waits for
// them when the queue is full, or when all is set.
func (s *StreamWriter) drain(all bool) {
	for len(s.queue) > 0 {
		j := s.queue[0]
		if all || len(s.queue) >= s.inFlight {
			<-j.done
		} else {
			select {
			case <-j.done:
			default:
				return
			}
		}
		s.queue = s.queue[1:]
		if s.err == nil {
			s.err = j.err
		}
		if s.err == nil && !j.zero {
			s.writeGrain(j)
		}
	}
}

func (s *StreamWriter) writeGrain(j *grainJob) {
	if gt := j.index / streamGTEs; gt != s.gtIdx {
		s.flushGT()
		s.gtIdx = gt
	}
	sector := s.out.off() / sectorSize
	if sector+int64(len(j.out))/sectorSize >= maxFileSectors {
		s.err = image.FileErrorf(s.name, "stream larger than 2 TiB: %w", image.ErrLimit)
		return
	}
	s.gt[j.index%streamGTEs] = uint32(sector)
	s.out.write(j.out)
	if s.out.err != nil {
		s.err = image.FileErrorf(s.name, "%w", s.out.err)
	}
}

// flushGT writes the grain table being filled, behind its marker, unless
// it has no grains (VMware leaves such tables out too; the directory
// entry stays 0).
func (s *StreamWriter) flushGT() {
	used := false
	for _, v := range s.gt {
		used = used || v != 0
	}
	if !used {
		return
	}
	b := make([]byte, streamGTEs*4)
	for i, v := range s.gt {
		binary.LittleEndian.PutUint32(b[4*i:], v)
	}
	s.out.write(encodeMarker(uint64(len(b)/sectorSize), markerGT))
	s.gd[s.gtIdx] = uint32(s.out.off() / sectorSize)
	s.out.write(b)
	clear(s.gt)
}

// Flush waits for the grains handed to the compressors, writes them and
// syncs the file. The grain being filled and the tables are only written
// by Close (a stream cannot be patched afterwards), so the file becomes a
// valid VMDK only when Close returns.
func (s *StreamWriter) Flush() error {
	if s.closed {
		return s.err
	}
	s.drain(true)
	if s.err == nil {
		s.err = s.out.flush()
	}
	if s.err != nil {
		return s.err
	}
	return s.f.Sync()
}

// Close writes the last grain, the last grain table, the grain
// directory, the footer and the end-of-stream marker. It does not close
// the file. Calling it again returns the first result.
func (s *StreamWriter) Close() error {
	if s.closed {
		return s.err
	}
	s.submit()
	s.closed = true
	s.drain(true)
	close(s.jobs)
	s.workers.Wait()
	if s.err != nil {
		return s.err
	}
	s.flushGT()
	gd := make([]byte, (len(s.gd)*4+sectorSize-1)&^(sectorSize-1))
	for i, v := range s.gd {
		binary.LittleEndian.PutUint32(gd[4*i:], v)
	}
	s.out.write(encodeMarker(uint64(len(gd)/sectorSize), markerGD))
	footer := s.hdr
	footer.GDOffset = uint64(s.out.off() / sectorSize)
	s.out.write(gd)
	s.out.write(encodeMarker(1, markerFooter))
	s.out.write(footer.encode())
	s.out.write(make([]byte, sectorSize)) // end-of-stream marker
	if err := s.out.flush(); err != nil {
		s.err = err
	}
	if s.err == nil && s.out.off()/sectorSize >= maxFileSectors {
		s.err = image.FileErrorf(s.name, "stream larger than 2 TiB: %w", image.ErrLimit)
	}
	return s.err
}

// seqWriter writes a file front to back through a buffer.
type seqWriter struct {
	f   *os.File
	pos int64 // file offset of buf[0]
	buf []byte
	err error
}

func (w *seqWriter) off() int64 { return w.pos + int64(len(w.buf)) }

func (w *seqWriter) write(p []byte) {
	if w.err != nil {
		return // the stream is broken; the error is reported
	}
	w.buf = append(w.buf, p...)
	if len(w.buf) >= cap(w.buf)/2 && w.err == nil {
		w.err = w.flush()
	}
}

func (w *seqWriter) flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) > 0 {
		if _, err := w.f.WriteAt(w.buf, w.pos); err != nil {
			w.err = err
			return err
		}
		w.pos += int64(len(w.buf))
		w.buf = w.buf[:0]
	}
	return nil
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
