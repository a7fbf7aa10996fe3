package openstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"

	"github.com/gophercloud/gophercloud/v2"
)

// Save streams the image's data to w and verifies it as it goes: the
// byte count against size, and md5 against checksum (or, when Glance
// keeps no checksum, sha512 against os_hash_value). On a mismatch it
// returns ErrHashMismatch after w has received the bad bytes: the caller
// removes what it wrote.
func (c *Client) Save(ctx context.Context, im Image, w io.Writer, progress func(done, total int64)) (Digests, error) {
	resp, err := c.image.Get(ctx, c.image.ServiceURL("images", url.PathEscape(im.ID()), "file"), nil,
		&gophercloud.RequestOpts{KeepResponseBody: true, OkCodes: []int{200, 204}})
	if err != nil {
		return Digests{}, apiError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == 204 {
		return Digests{}, fmt.Errorf("image %s has no data", im.ID())
	}
	total, _ := im.Int("size")
	d, err := copyHashed(w, resp.Body, total, newHashersFor(im), progress)
	if err != nil {
		return Digests{}, fmt.Errorf("downloading image %s: %w", im.ID(), err)
	}
	return d, verify(im, d)
}

// copyHashed copies r to w, hashing in goroutines of their own while the
// writes go on in a third, through the bounded pool of chunks.
func copyHashed(w io.Writer, r io.Reader, total int64, h *hashers, progress func(done, total int64)) (Digests, error) {
	pw := &progressWriter{w: w, total: total, progress: progress}
	fan := newFanout(append(h.consumers(), func(b []byte) error {
		_, err := pw.Write(b)
		return err
	})...)
	pool := newPool()
	var n int64
	var rerr error
	for {
		buf := <-pool
		k, err := io.ReadFull(r, buf)
		if k > 0 {
			c := &chunk{data: buf[:k], pool: pool}
			c.refs.Store(int32(len(fan.chans)))
			fan.send(c)
			n += int64(k)
		} else {
			pool <- buf
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			rerr = err
			break
		}
	}
	if err := errors.Join(rerr, fan.close()); err != nil {
		return Digests{}, err
	}
	return h.digests(n), nil
}

// progressWriter reports bytes written.
type progressWriter struct {
	w        io.Writer
	done     int64
	total    int64
	progress func(done, total int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	if p.progress != nil {
		p.progress(p.done, p.total)
	}
	return n, err
}
