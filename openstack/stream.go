package openstack

import (
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"sync"
	"sync/atomic"
)

// Digests are the hashes Glance keeps of an image's data: checksum (md5)
// and os_hash_value (sha512, its default os_hash_algo).
type Digests struct {
	MD5, SHA512 string
	Size        int64
}

// Data moves in chunks of chunkSize through a pool of poolChunks
// buffers (8 MiB in all, whatever the image's size). Each chunk goes to
// the hasher in its own goroutine and to the network or the file at the
// same time: hashing (sha512 runs at about 870 MB/s on one core here, md5
// at 740) overlaps the transfer instead of adding to it.
const (
	chunkSize  = 1 << 20
	poolChunks = 8
)

// chunk is one buffer on its way; the last of its users to release it
// returns the buffer to the pool.
type chunk struct {
	data []byte
	refs atomic.Int32
	pool chan []byte
}

func (c *chunk) release() {
	if c.refs.Add(-1) == 0 {
		c.pool <- c.data[:cap(c.data)]
	}
}

func newPool() chan []byte {
	pool := make(chan []byte, poolChunks)
	for range poolChunks {
		pool <- make([]byte, chunkSize)
	}
	return pool
}

// fanout hands every chunk to consumers, each in its own goroutine.
type fanout struct {
	chans []chan *chunk
	errs  []error
	wg    sync.WaitGroup
}

func newFanout(consumers ...func([]byte) error) *fanout {
	f := &fanout{chans: make([]chan *chunk, len(consumers)), errs: make([]error, len(consumers))}
	for i, consume := range consumers {
		// A chunk in flight is in the pool's count, so sends never block
		// longer than a consumer takes to catch up.
		f.chans[i] = make(chan *chunk, poolChunks)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for c := range f.chans[i] {
				if f.errs[i] == nil {
					f.errs[i] = consume(c.data)
				}
				c.release()
			}
		}()
	}
	return f
}

// send gives c to every consumer; c.refs must count them.
func (f *fanout) send(c *chunk) {
	for _, ch := range f.chans {
		ch <- c
	}
}

// close waits for the consumers and returns the first error.
func (f *fanout) close() error {
	for _, ch := range f.chans {
		close(ch)
	}
	f.wg.Wait()
	return errors.Join(f.errs...)
}

// hashers are the digests computed, fed through a fanout. One digest
// Glance keeps proves the bytes as well as two, and on a small machine
// the CPU a second one takes comes out of Glance's own hashing: an
// upload computes sha512 (Glance's os_hash_value, kept since Rocky), a
// download the digest its record holds.
type hashers struct {
	md5, sha hash.Hash // nil when not computed
}

func newSHA512Hashers() *hashers { return &hashers{sha: sha512.New()} }

// newHashersFor computes the digest im's record can be checked against:
// sha512 when it has an os_hash_value of that algorithm (faster than md5
// on amd64, and the stronger), md5 (checksum) otherwise.
func newHashersFor(im Image) *hashers {
	if hasSHA512(im) {
		return newSHA512Hashers()
	}
	return &hashers{md5: md5.New()}
}

func hasSHA512(im Image) bool {
	return im.String("os_hash_algo") == "sha512" && im.String("os_hash_value") != ""
}

// checkable: d holds a digest that im's record can be compared with.
func checkable(im Image, d Digests) bool {
	return (hasSHA512(im) && d.SHA512 != "") || (im.String("checksum") != "" && d.MD5 != "")
}

func (h *hashers) consumers() []func([]byte) error {
	var cs []func([]byte) error
	for _, w := range []hash.Hash{h.md5, h.sha} {
		if w != nil {
			cs = append(cs, func(b []byte) error { w.Write(b); return nil })
		}
	}
	return cs
}

func (h *hashers) digests(size int64) Digests {
	d := Digests{Size: size}
	if h.md5 != nil {
		d.MD5 = hex.EncodeToString(h.md5.Sum(nil))
	}
	if h.sha != nil {
		d.SHA512 = hex.EncodeToString(h.sha.Sum(nil))
	}
	return d
}

// hashingReader is the body of an upload: size bytes read from src (the
// image file, or a guest disk read as raw) by a goroutine of its own,
// hashed while they are sent, never buffered beyond the pool. It can
// rewind to the start, which gophercloud does to re-send a body after
// renewing a token, and which restarts the hashes with it. Close stops its
// goroutines.
type hashingReader struct {
	src      io.ReaderAt
	size     int64
	progress func(done, total int64)

	run  *readRun // nil until the first Read, or after a rewind
	cur  *chunk
	pos  int // read position in cur
	sent int64
	last Digests // of the last pass read to its end
}

// readRun is one pass over the source.
type readRun struct {
	chunks chan *chunk // to Read; closed at the end
	errc   chan error  // the reader's error, then closed
	stop   chan struct{}
	done   chan struct{}
	fan    *fanout
	hash   *hashers
	// finished: read to the end, hashers done, digests kept
	finished bool
}

func newHashingReader(src io.ReaderAt, size int64, progress func(done, total int64)) *hashingReader {
	return &hashingReader{src: src, size: size, progress: progress}
}

// start begins a pass: a goroutine reads chunks and passes each to the
// hashers and to Read.
func (h *hashingReader) start() {
	r := &readRun{
		chunks: make(chan *chunk, poolChunks), errc: make(chan error, 1),
		stop: make(chan struct{}), done: make(chan struct{}), hash: newSHA512Hashers(),
	}
	r.fan = newFanout(r.hash.consumers()...)
	pool := newPool()
	go func() {
		defer close(r.done)
		defer close(r.chunks)
		for off := int64(0); off < h.size; {
			var buf []byte
			select {
			case buf = <-pool:
			case <-r.stop:
				return
			}
			n := int(min(int64(len(buf)), h.size-off))
			if _, err := h.src.ReadAt(buf[:n], off); err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF // the file shrank under us
				}
				pool <- buf
				r.errc <- err
				return
			}
			c := &chunk{data: buf[:n], pool: pool}
			c.refs.Store(int32(len(r.fan.chans) + 1))
			r.fan.send(c)
			select {
			case r.chunks <- c:
			case <-r.stop:
				c.release()
				return
			}
			off += int64(n)
		}
	}()
	h.run, h.cur, h.pos, h.sent = r, nil, 0, 0
}

func (h *hashingReader) Read(p []byte) (int, error) {
	if h.run == nil {
		h.start()
	}
	if h.run.finished {
		return 0, io.EOF
	}
	for h.cur == nil || h.pos == len(h.cur.data) {
		if h.cur != nil {
			h.cur.release()
			h.cur = nil
		}
		c, ok := <-h.run.chunks
		if !ok {
			select {
			case err := <-h.run.errc:
				return 0, err
			default:
			}
			h.finish()
			return 0, io.EOF
		}
		h.cur, h.pos = c, 0
	}
	n := copy(p, h.cur.data[h.pos:])
	h.pos += n
	h.sent += int64(n)
	if h.progress != nil {
		h.progress(h.sent, h.size)
	}
	return n, nil
}

// finish waits for the hashers after the last chunk and keeps the digests.
func (h *hashingReader) finish() {
	h.run.fan.close()
	h.run.finished = true
	h.last = h.run.hash.digests(h.sent)
}

// stopRun ends a pass early and waits for its goroutines.
func (h *hashingReader) stopRun() {
	r := h.run
	h.run = nil
	if r == nil || r.finished {
		return
	}
	close(r.stop)
	if h.cur != nil {
		h.cur.release()
		h.cur = nil
	}
	<-r.done
	for c := range r.chunks {
		c.release()
	}
	r.fan.close()
}

// Seek rewinds to the start; no other position is needed.
func (h *hashingReader) Seek(offset int64, whence int) (int64, error) {
	if offset != 0 || whence != io.SeekStart {
		return h.sent, errors.New("upload body: only a rewind to the start is supported")
	}
	h.stopRun()
	h.sent, h.last = 0, Digests{}
	if h.progress != nil {
		h.progress(0, h.size)
	}
	return 0, nil
}

// Close stops the reading and hashing goroutines.
func (h *hashingReader) Close() error {
	h.stopRun()
	return nil
}

// Digests are the hashes of a pass read to its end (zero before): sha512
// and the size.
func (h *hashingReader) Digests() Digests { return h.last }
