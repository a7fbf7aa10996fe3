package qcow2

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/deflate"
	"github.com/qimg/qimg/internal/inflate"
	"github.com/qimg/qimg/internal/zstdenc"
)

// codec compresses and decompresses single clusters in one image's
// compression type. Its methods are safe for concurrent use: decoders and
// encoders come from pools.
type codec struct {
	typ         uint8
	clusterSize int64
	zdec        sync.Pool // *zstd.Decoder
	inflaters   sync.Pool // *inflate.Decoder
	// buffers holds *[]byte scratch of a cluster and a little more:
	// compressed clusters and L2 tables read from the file, and what the
	// encoders write a cluster into.
	buffers sync.Pool
	// Clusters of up to 64 KiB are zstd-compressed by internal/zstdenc's
	// encoders, pooled; larger ones by one klauspost encoder.
	zencoders sync.Pool // *zstdenc.Encoder
	zenc      *zstd.Encoder
	zencOnce  sync.Once
	zencErr   error
}

func newCodec(typ uint8, clusterSize int64) *codec {
	return &codec{typ: typ, clusterSize: clusterSize}
}

// decompress inflates one compressed cluster from src into dst, which is
// exactly one cluster long. Input that ends before dst is full is an error;
// input that would expand past dst is cut there, as in QEMU, so output is
// bounded by the cluster size whatever the input says.
func (c *codec) decompress(dst, src []byte) error {
	var err error
	switch c.typ {
	case CompressionZlib:
		// Raw deflate, decoded from the slice: internal/inflate is 1.4
		// times klauspost's io.Reader-based inflater on disk-like
		// clusters (its BenchmarkKlauspost), on a par with C zlib.
		z, _ := c.inflaters.Get().(*inflate.Decoder)
		if z == nil {
			z = new(inflate.Decoder)
		}
		_, err = z.Decompress(dst, src)
		c.inflaters.Put(z)
	case CompressionZstd:
		err = c.unzstd(dst, src)
	default:
		err = fmt.Errorf("compression type %d: %w", c.typ, image.ErrUnsupported)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, inflate.ErrShort) || errors.Is(err, inflate.ErrTruncated) {
		return fmt.Errorf("compressed data ends before a full cluster: %w", image.ErrCorrupt)
	}
	if err != nil && !errors.Is(err, image.ErrUnsupported) {
		return fmt.Errorf("bad compressed data: %v: %w", err, image.ErrCorrupt)
	}
	return err
}

// buffer returns a pooled buffer of n bytes (for a compressed cluster at
// most two clusters: the descriptor's sector count); callers put it back
// in c.buffers.
func (c *codec) buffer(n int64) *[]byte {
	b, _ := c.buffers.Get().(*[]byte)
	if b == nil || int64(cap(*b)) < n {
		s := make([]byte, max(n, c.clusterSize+512))
		b = &s
	}
	*b = (*b)[:n]
	return b
}

func (c *codec) unzstd(dst, src []byte) error {
	d, _ := c.zdec.Get().(*zstd.Decoder)
	if d == nil {
		var err error
		// The window is bounded so a hostile frame header cannot make the
		// decoder allocate more than a little over one cluster.
		d, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(uint64(max(c.clusterSize, 1<<20))),
			zstd.WithDecoderLowmem(true))
		if err != nil {
			return err
		}
	}
	defer c.zdec.Put(d)
	if err := d.Reset(bytes.NewReader(src)); err != nil {
		return err
	}
	_, err := io.ReadFull(d, dst)
	return err
}

// compress compresses one cluster. It returns nil when compression does
// not save space, in which case the caller stores the cluster plainly.
// The encoders write into a pooled cluster-sized buffer and the result is
// copied out at its size: a conversion holds many results at a time, and
// fresh cluster-sized buffers cost as much clearing and collecting as the
// copy of the few bytes that remain.
func (c *codec) compress(src []byte) ([]byte, error) {
	buf := c.buffer(0)
	defer c.buffers.Put(buf)
	out, err := c.encode((*buf)[:0], src)
	if err != nil {
		return nil, err
	}
	*buf = out[:0]
	if int64(len(out)) >= c.clusterSize { // QEMU's limit: cluster_size - 1
		return nil, nil
	}
	return bytes.Clone(out), nil
}

// encode appends src compressed to dst.
func (c *codec) encode(dst, src []byte) ([]byte, error) {
	switch c.typ {
	case CompressionZlib:
		// QEMU inflates with a 4 KiB window: internal/deflate never
		// reaches farther back, and compresses like zlib does.
		return deflate.Compress(dst, src), nil
	case CompressionZstd:
		return c.encodeZstd(dst, src)
	}
	return nil, fmt.Errorf("compression type %d: %w", c.typ, image.ErrUnsupported)
}

// encodeZstd appends src compressed with zstd to dst. internal/zstdenc,
// built for inputs of at most 64 KiB, takes 0.75 of the time klauspost's
// encoder takes at its default level for the same output size; it is
// what makes zstd convert faster than qemu-img -m 8 -W.
func (c *codec) encodeZstd(dst, src []byte) ([]byte, error) {
	if len(src) <= zstdenc.MaxInput {
		e, _ := c.zencoders.Get().(*zstdenc.Encoder)
		if e == nil {
			e = new(zstdenc.Encoder)
		}
		defer c.zencoders.Put(e)
		return e.Encode(dst, src)
	}
	c.zencOnce.Do(func() {
		// EncodeAll runs at most "concurrency" calls at a time: one
		// per CPU, or parallel conversion would compress serially.
		// Literals-only blocks are entropy coded too, as libzstd
		// does; this level would store them raw. Of a disk image's
		// clusters 0.6 % have no matches worth coding but shrink by
		// 14 % that way, and QEMU stores them compressed.
		c.zenc, c.zencErr = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithEncoderCRC(false), zstd.WithWindowSize(zstdWindow(c.clusterSize)),
			zstd.WithAllLitEntropyCompression(true))
	})
	if c.zencErr != nil {
		return nil, c.zencErr
	}
	return c.zenc.EncodeAll(src, dst), nil
}

// zstdWindow picks a power-of-two window covering one cluster, within the
// encoder's allowed range.
func zstdWindow(clusterSize int64) int {
	w := int64(zstd.MinWindowSize)
	for w < clusterSize {
		w <<= 1
	}
	return int(w)
}
