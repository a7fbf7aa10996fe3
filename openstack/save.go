package openstack

import (
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"

	"github.com/gophercloud/gophercloud/v2"
)

// Save streams the image's data to w and verifies it as it goes: the
// byte count against size, md5 against checksum and sha512 against
// os_hash_value (when Glance's os_hash_algo is sha512). On a mismatch it
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
	md, sha := md5.New(), sha512.New()
	pw := &progressWriter{w: io.MultiWriter(w, md, sha), total: total, progress: progress}
	n, err := io.CopyBuffer(pw, resp.Body, make([]byte, 1<<20))
	if err != nil {
		return Digests{}, fmt.Errorf("downloading image %s: %w", im.ID(), err)
	}
	d := Digests{MD5: hex.EncodeToString(md.Sum(nil)), SHA512: hex.EncodeToString(sha.Sum(nil)), Size: n}
	return d, verify(im, d)
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
