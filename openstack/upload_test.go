package openstack

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/qimg/qimg/internal/devcloudtest"
	"github.com/qimg/qimg/internal/qemutest"
)

// requestLog records the framing of the data requests a client sends.
type requestLog struct {
	mu   sync.Mutex
	puts []string // "PUT /v2/images/ID/file len=N te=[...]"
}

func (l *requestLog) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPut {
			l.mu.Lock()
			l.puts = append(l.puts, r.URL.Path+" len="+itoa(r.ContentLength)+" te="+strings.Join(r.TransferEncoding, ","))
			l.mu.Unlock()
		}
		return next.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// diskImages makes a raw disk of random and zero runs and its qcow2
// (written by qemu-img, the reference).
func diskImages(t *testing.T) (raw, qcow string) {
	dir := t.TempDir()
	raw = filepath.Join(dir, "disk.raw")
	qemutest.Img(t, "create", "-q", "-f", "raw", raw, "24M")
	rnd := qemutest.RandomFile(t, dir, 3<<20)
	qemutest.Run(t, "dd", "if="+rnd, "of="+raw, "bs=1M", "seek=5", "conv=notrunc", "status=none")
	qcow = filepath.Join(dir, "disk.qcow2")
	qemutest.Img(t, "convert", "-f", "raw", "-O", "qcow2", raw, qcow)
	return raw, qcow
}

// TestUploadJudgedByCLI uploads a raw and a qcow2 image with properties
// and lets `openstack image show` say what Glance holds: status, size,
// checksum and os_hash_value equal to the file's (hashed here
// independently), disk format and properties as asked, sent with a
// Content-Length rather than chunked.
func TestUploadJudgedByCLI(t *testing.T) {
	raw, qcow := diskImages(t)
	var log requestLog
	c := connect(t, Config{Wrap: log.wrap})
	for _, tc := range []struct{ path, format string }{{raw, "raw"}, {qcow, "qcow2"}} {
		t.Run(tc.format, func(t *testing.T) {
			name := uniqueName(t)
			res, err := c.Upload(context.Background(), tc.path, UploadOptions{
				Name: name, Visibility: "private", Tags: []string{"qimg-test", "b"}, MinRAM: 128,
				Properties: map[string]string{"hw_scsi_model": "virtio-scsi", "qimg_test": "yes"},
			})
			if err != nil {
				t.Fatal(err)
			}
			cleanup(t, c, res.Image.ID())
			md5sum, sha, size := fileDigests(t, tc.path)
			got := devcloudtest.ShowImage(t, demoEnv, res.Image.ID())
			props, _ := got["properties"].(map[string]any)
			for k, want := range map[string]any{
				"status": "active", "checksum": md5sum, "size": float64(size), "disk_format": tc.format,
				"container_format": "bare", "visibility": "private", "min_ram": float64(128), "min_disk": float64(1),
				"name": name,
			} {
				if got[k] != want {
					t.Errorf("openstack image show: %s = %v, want %v", k, got[k], want)
				}
			}
			for k, want := range map[string]any{"os_hash_algo": "sha512", "os_hash_value": sha,
				"hw_scsi_model": "virtio-scsi", "qimg_test": "yes"} {
				if props[k] != want {
					t.Errorf("openstack image show: properties[%s] = %v, want %v", k, props[k], want)
				}
			}
			if tags := got["tags"]; len(tags.([]any)) != 2 {
				t.Errorf("tags %v", tags)
			}
			if res.Digests.SHA512 != sha || res.Digests.Size != size {
				t.Errorf("result digests %+v, file sha512 %s size %d", res.Digests, sha, size)
			}
		})
	}
	for _, p := range log.puts {
		if strings.HasSuffix(strings.Fields(p)[0], "/file") && (strings.Contains(p, "len=-1") || strings.Contains(p, "chunked")) {
			t.Errorf("data sent without a Content-Length: %s", p)
		}
	}
	if len(log.puts) != 2 {
		t.Errorf("PUT requests: %v, want 2", log.puts)
	}
}

// TestConvertRawStreams uploads a qcow2 as raw (--convert raw): Glance
// gets the guest bytes, which qemu-img's own conversion hashes to the
// same values.
func TestConvertRawStreams(t *testing.T) {
	raw, qcow := diskImages(t)
	c := connect(t, Config{})
	res, err := c.Upload(context.Background(), qcow, UploadOptions{Name: uniqueName(t), Convert: "raw"})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, c, res.Image.ID())
	md5sum, _, size := fileDigests(t, raw)
	got := devcloudtest.ShowImage(t, demoEnv, res.Image.ID())
	if got["checksum"] != md5sum || got["disk_format"] != "raw" || got["size"] != float64(size) {
		t.Errorf("image show: checksum %v disk_format %v size %v; want %s raw %d", got["checksum"], got["disk_format"], got["size"], md5sum, size)
	}
}

// TestRefusals: images Nova would refuse are not created at all.
func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", base, "16M")
	overlay := filepath.Join(dir, "overlay.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", overlay)
	external := filepath.Join(dir, "external.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", "-o", "data_file="+filepath.Join(dir, "external.data"), external, "16M")
	raw := qemutest.RandomFile(t, dir, 1<<20)
	vmdk := filepath.Join(dir, "flat.vmdk")
	qemutest.Img(t, "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", vmdk, "1M")
	c := connect(t, Config{})
	for _, tc := range []struct {
		name, path, diskFormat, want string
	}{
		{"backing file", overlay, "", "backing file"},
		{"external data file", external, "", "external file"},
		{"qcow2 declared raw", base, "raw", "--disk-format raw, but the file is qcow2"},
		{"raw declared qcow2", raw, "qcow2", "--disk-format qcow2, but the file is raw"},
		{"vmdk naming a host file", vmdk, "", "names other files"},
		{"raw declared iso", raw, "iso", "no ISO 9660"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := uniqueName(t)
			_, err := c.Upload(context.Background(), tc.path, UploadOptions{Name: name, DiskFormat: tc.diskFormat})
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrRefused saying %q", err, tc.want)
			}
			if ids := devcloudtest.ImagesNamed(t, demoEnv, name); len(ids) != 0 {
				t.Errorf("refused image was created: %v", ids)
			}
		})
	}
}

// TestSkipExisting: the same data is not sent twice.
func TestSkipExisting(t *testing.T) {
	raw := qemutest.RandomFile(t, t.TempDir(), 2<<20)
	c := connect(t, Config{})
	first, err := c.Upload(context.Background(), raw, UploadOptions{Name: uniqueName(t), SkipExisting: true})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, c, first.Image.ID())
	if first.Skipped {
		t.Fatal("first upload skipped")
	}
	name := uniqueName(t)
	second, err := c.Upload(context.Background(), raw, UploadOptions{Name: name, SkipExisting: true})
	if err != nil {
		t.Fatal(err)
	}
	if !second.Skipped || second.Image.ID() != first.Image.ID() {
		t.Errorf("second upload: skipped %v, image %s; want the first, %s", second.Skipped, second.Image.ID(), first.Image.ID())
	}
	if ids := devcloudtest.ImagesNamed(t, demoEnv, name); len(ids) != 0 {
		t.Errorf("skipped upload created %v", ids)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
