package openstack

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qimg/qimg/internal/devcloudtest"
	"github.com/qimg/qimg/internal/qemutest"
)

// isDataPut is a PUT of image data.
func isDataPut(r *http.Request) bool {
	return r.Method == http.MethodPut && (strings.HasSuffix(r.URL.Path, "/file") || strings.HasSuffix(r.URL.Path, "/stage"))
}

// sparseRaw is a sparse raw file of size bytes with a little data.
func sparseRaw(t *testing.T, size int64) string {
	path := filepath.Join(t.TempDir(), "sparse.raw")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("qimg sparse test image"), size/2); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCancelDeletes: cancelling the context in the middle of an upload
// (what Ctrl-C does) deletes the half-made image.
func TestCancelDeletes(t *testing.T) {
	path := sparseRaw(t, 2<<30)
	c := connect(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	name := uniqueName(t)
	var sent atomic.Int64
	_, err := c.Upload(ctx, path, UploadOptions{Name: name, Progress: func(done, total int64) {
		sent.Store(done)
		if done >= 256<<20 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "deleted") {
		t.Fatalf("got %v, want context.Canceled and the image deleted", err)
	}
	if sent.Load() >= 2<<30 {
		t.Errorf("the whole image was sent (%d bytes) before the cancel took effect", sent.Load())
	}
	if ids := devcloudtest.ImagesNamed(t, demoEnv, name); len(ids) != 0 {
		t.Errorf("cancelled upload left images %v", ids)
	}
}

// corruptingBody flips one byte of what it passes on.
type corruptingBody struct {
	io.ReadCloser
	off, at int64
}

func (b *corruptingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.at >= b.off && b.at < b.off+int64(n) {
		p[b.at-b.off] ^= 0x55
	}
	b.off += int64(n)
	return n, err
}

// TestHashMismatchDeletes: a byte changed on the way (between qimg's
// hashing and Glance) is found by comparing Glance's checksums with what
// was sent, and the image is deleted.
func TestHashMismatchDeletes(t *testing.T) {
	path := qemutest.RandomFile(t, t.TempDir(), 3<<20)
	c := connect(t, Config{Wrap: func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if isDataPut(r) {
				r = r.Clone(r.Context())
				r.Body = &corruptingBody{ReadCloser: r.Body, at: 1 << 20}
			}
			return next.RoundTrip(r)
		})
	}})
	name := uniqueName(t)
	_, err := c.Upload(context.Background(), path, UploadOptions{Name: name})
	if !errors.Is(err, ErrHashMismatch) || !strings.Contains(err.Error(), "deleted") {
		t.Fatalf("got %v, want ErrHashMismatch and the image deleted", err)
	}
	if ids := devcloudtest.ImagesNamed(t, demoEnv, name); len(ids) != 0 {
		t.Errorf("corrupted upload left images %v", ids)
	}
}

// failingBody fails after n bytes, as a dropped connection does.
type failingBody struct {
	io.ReadCloser
	left int64
}

func (b *failingBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errors.New("test: connection dropped")
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// TestInterruptedUploadRetried: the first transfer breaks off after
// 1 MiB; the upload is tried again and exactly one active image exists.
func TestInterruptedUploadRetried(t *testing.T) {
	path := qemutest.RandomFile(t, t.TempDir(), 4<<20)
	var puts atomic.Int32
	c := connect(t, Config{Wrap: func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if isDataPut(r) && puts.Add(1) == 1 {
				r = r.Clone(r.Context())
				r.Body = &failingBody{ReadCloser: r.Body, left: 1 << 20}
			}
			return next.RoundTrip(r)
		})
	}})
	name := uniqueName(t)
	res, err := c.Upload(context.Background(), path, UploadOptions{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, c, res.Image.ID())
	if res.Attempts != 2 || puts.Load() != 2 {
		t.Errorf("attempts %d, PUTs %d; want 2", res.Attempts, puts.Load())
	}
	ids := devcloudtest.ImagesNamed(t, demoEnv, name)
	if len(ids) != 1 || ids[0] != res.Image.ID() {
		t.Fatalf("images named %s: %v, want only %s", name, ids, res.Image.ID())
	}
	md5sum, _, _ := fileDigests(t, path)
	if got := devcloudtest.ShowImage(t, demoEnv, ids[0]); got["status"] != "active" || got["checksum"] != md5sum {
		t.Errorf("image show: status %v checksum %v, want active %s", got["status"], got["checksum"], md5sum)
	}
}

// TestTokenExpiresDuringUpload: the upload takes longer than a token
// lives (the devcloud's Keystone issues tokens for
// QIMG_DEVCLOUD_TOKEN_TTL seconds); the client authenticates again and
// the upload completes and verifies.
func TestTokenExpiresDuringUpload(t *testing.T) {
	ttl, err := strconv.Atoi(demoEnv["QIMG_DEVCLOUD_TOKEN_TTL"])
	if err != nil || ttl > 120 {
		t.Fatalf("the devcloud's token lifetime %q is not short", demoEnv["QIMG_DEVCLOUD_TOKEN_TTL"])
	}
	var auths atomic.Int32
	c := connect(t, Config{Wrap: func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/auth/tokens") {
				auths.Add(1)
			}
			return next.RoundTrip(r)
		})
	}})
	first := c.Token()
	const size = 16 << 20
	path := qemutest.RandomFile(t, t.TempDir(), size)
	// A slow reader: the upload lasts the token's lifetime and 5 s more.
	step := time.Duration(ttl+5) * time.Second / 16
	var next int64 = 1 << 20
	res, err := c.Upload(context.Background(), path, UploadOptions{Name: uniqueName(t), Progress: func(done, total int64) {
		for done >= next {
			time.Sleep(step)
			next += 1 << 20
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, c, res.Image.ID())
	if c.Token() == first || auths.Load() < 2 {
		t.Errorf("no new token after %d s (authentications: %d)", ttl+5, auths.Load())
	}
	if res.Image.Status() != "active" || res.Digests.Size != size {
		t.Errorf("status %s, %d bytes", res.Image.Status(), res.Digests.Size)
	}
}
