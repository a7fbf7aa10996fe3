package openstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
)

// Import methods of Glance's interoperable image import.
const (
	GlanceDirect = "glance-direct"
	WebDownload  = "web-download"
)

// ErrHashMismatch means Glance holds other bytes than the ones sent.
var ErrHashMismatch = errors.New("hash mismatch")

// UploadOptions describe the image record and how the data travels.
type UploadOptions struct {
	Name string
	// DiskFormat is Glance's disk_format; empty takes the detected one
	// (or the --convert target). A value that is not what the file holds
	// is refused.
	DiskFormat string
	// ContainerFormat defaults to bare.
	ContainerFormat string
	// Convert is "raw" (streamed from the guest data) or "qcow2"
	// (written to a temporary file in TempDir first), or "".
	Convert string
	TempDir string
	// Visibility is public, private, shared or community ("" leaves
	// Glance's default, shared).
	Visibility string
	Protected  bool
	Tags       []string
	// Properties are set on the image; they override presets.
	Properties map[string]string
	// MinDisk (GiB) and MinRAM (MiB); MinDisk 0 takes the virtual size
	// rounded up unless NoPresets.
	MinDisk, MinRAM int
	// NoPresets turns off the properties guest inspection suggests and
	// min_disk from the virtual size.
	NoPresets bool
	// SkipExisting hashes the data first and uploads nothing when an
	// active image with that os_hash_value is visible to the project.
	SkipExisting bool
	// Import is "" (PUT the data), GlanceDirect (stage, then import).
	// WebDownload is ImportURL's.
	Import string
	// Stores names the stores an import goes to (multi-store clouds).
	Stores []string
	// Retries is how often a failed transfer is tried again (0: 2).
	// Negative: never.
	Retries int
	// Progress, if set, is called with bytes sent and the total.
	Progress func(done, total int64)
	// Warn, if set, receives pre-flight warnings.
	Warn func(string)
	// PollInterval is how often an import's status is read (0: 1 s).
	PollInterval time.Duration
}

// UploadResult is what an upload made.
type UploadResult struct {
	Image Image
	Plan  *Plan
	// Digests are the hashes of the bytes sent (or, when Skipped, of the
	// bytes that would have been).
	Digests Digests
	// Skipped is set when SkipExisting found the same data in Image.
	Skipped bool
	// Attempts is how many transfers it took (1 without a retry).
	Attempts int
}

func (o *UploadOptions) warn(msg string) {
	if o.Warn != nil {
		o.Warn(msg)
	}
}

// Upload checks the image at path (Preflight), creates its record and
// sends its data with a Content-Length, hashing it on the way, then
// compares Glance's checksum and os_hash_value with what was sent. Any
// failure after the record exists — an error, a hash mismatch, ctx
// cancelled (Ctrl-C) — deletes the record, so nothing half-made is left.
// A transfer that fails on the network or with a server error is tried
// again on the same record if Glance put it back to queued, else on a
// new one (the old one deleted).
func (c *Client) Upload(ctx context.Context, path string, o UploadOptions) (*UploadResult, error) {
	if o.Name == "" {
		return nil, errors.New("an image needs a name")
	}
	if o.Import != "" && o.Import != GlanceDirect {
		return nil, fmt.Errorf("import method %q: upload uses %s (or none); web-download takes a URL", o.Import, GlanceDirect)
	}
	if err := c.requireImport(ctx, o.Import); err != nil {
		return nil, err
	}
	plan, err := Preflight(ctx, path, o.DiskFormat, o.Convert)
	if err != nil {
		return nil, err
	}
	for _, w := range plan.Warnings {
		o.warn(w)
	}
	src, err := openSource(ctx, plan, o.TempDir)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	res := &UploadResult{Plan: plan}
	if o.SkipExisting {
		if res.Digests, err = hashAll(ctx, src.data, src.size); err != nil {
			return nil, err
		}
		if im, err := c.findByHash(ctx, res.Digests.SHA512); err != nil || im != nil {
			res.Image, res.Skipped = im, im != nil
			return res, err
		}
	}
	fields := o.createFields(plan, src)
	return res, c.transfer(ctx, fields, src, o, res)
}

// requireImport checks that the cloud enables the import method.
func (c *Client) requireImport(ctx context.Context, method string) error {
	if method == "" {
		return nil
	}
	methods, err := c.ImportMethods(ctx)
	if err != nil {
		return fmt.Errorf("reading the import methods: %w", err)
	}
	if !slices.Contains(methods, method) {
		return fmt.Errorf("this cloud does not enable the %s import method (it enables: %v)", method, methods)
	}
	return nil
}

// findByHash is an active image with that sha512 os_hash_value, or nil.
func (c *Client) findByHash(ctx context.Context, sha512 string) (Image, error) {
	found, err := c.ListImages(ctx, url.Values{"os_hash_value": {sha512}, "status": {"active"}}, 0)
	if err != nil || len(found) == 0 {
		return nil, err
	}
	return found[0], nil
}

// createFields is the body of the image create request.
func (o *UploadOptions) createFields(plan *Plan, src *source) map[string]any {
	fields := map[string]any{
		"name":             o.Name,
		"disk_format":      plan.DiskFormat,
		"container_format": firstNonEmpty(o.ContainerFormat, "bare"),
	}
	if o.Visibility != "" {
		fields["visibility"] = o.Visibility
	}
	if o.Protected {
		fields["protected"] = true
	}
	if len(o.Tags) > 0 {
		fields["tags"] = o.Tags
	}
	if o.MinRAM > 0 {
		fields["min_ram"] = o.MinRAM
	}
	switch {
	case o.MinDisk > 0:
		fields["min_disk"] = o.MinDisk
	case !o.NoPresets:
		fields["min_disk"] = plan.MinDisk()
	}
	if !o.NoPresets {
		for k, v := range src.presets {
			fields[k] = v
		}
	}
	for k, v := range o.Properties {
		fields[k] = v
	}
	return fields
}

// transfer creates the record, sends the data (retrying), waits for an
// import, and verifies; on failure it deletes what it created.
func (c *Client) transfer(ctx context.Context, fields map[string]any, src *source, o UploadOptions, res *UploadResult) (err error) {
	retries := o.Retries
	if retries == 0 {
		retries = 2
	}
	var id string
	defer func() {
		if err != nil && id != "" {
			if derr := c.deleteDetached(ctx, id); derr != nil {
				err = fmt.Errorf("%w (and deleting image %s failed: %v)", err, id, derr)
			} else {
				err = fmt.Errorf("%w; image %s deleted", err, id)
			}
		}
	}()
	body := newHashingReader(src.data, src.size, o.Progress)
	defer body.Close()
	for attempt := 1; ; attempt++ {
		res.Attempts = attempt
		if id == "" {
			im, err := c.CreateImage(ctx, fields)
			if err != nil {
				return fmt.Errorf("creating the image record: %w", err)
			}
			id = im.ID()
		}
		if _, err := body.Seek(0, 0); err != nil {
			return err
		}
		err = c.sendData(ctx, id, o.Import == GlanceDirect, body)
		if err == nil {
			break
		}
		if ctx.Err() != nil || attempt > retries || !retriable(err) {
			return fmt.Errorf("sending the data of image %s: %w", id, err)
		}
		if id, err = c.reusable(ctx, id); err != nil {
			return err
		}
		time.Sleep(time.Duration(attempt) * time.Second)
	}
	res.Digests = body.Digests()
	im, err := c.finish(ctx, id, o)
	res.Image = im
	if err != nil {
		return err
	}
	if res.Digests, err = completeDigests(im, src.data, src.size, res.Digests); err != nil {
		return err
	}
	return verify(im, res.Digests)
}

// sendData PUTs the body to the image's file (or its staging area) with
// a Content-Length.
func (c *Client) sendData(ctx context.Context, id string, stage bool, body *hashingReader) error {
	part := "file"
	if stage {
		part = "stage"
	}
	_, err := c.image.Put(ctx, c.image.ServiceURL("images", url.PathEscape(id), part), body, nil, &gophercloud.RequestOpts{
		MoreHeaders: map[string]string{
			"Content-Type": "application/octet-stream",
			lengthHeader:   strconv.FormatInt(body.size, 10),
		},
		OkCodes: []int{204},
	})
	return apiError(err)
}

// completeDigests adds, for a cloud that keeps no sha512, the digest it
// keeps, hashing the source again (it did not change: it was read once).
func completeDigests(im Image, data io.ReaderAt, size int64, d Digests) (Digests, error) {
	if checkable(im, d) {
		return d, nil
	}
	again, err := copyHashed(io.Discard, io.NewSectionReader(data, 0, size), size, newHashersFor(im), nil)
	if err == nil && again.Size != size {
		err = io.ErrUnexpectedEOF // the file shrank under us
	}
	if err != nil {
		return d, fmt.Errorf("hashing the data again for Glance's checksum: %w", err)
	}
	d.MD5 = again.MD5
	return d, nil
}

// retriable: a network failure or a server-side error, worth one more try.
func retriable(err error) bool {
	var api *APIError
	if errors.As(err, &api) {
		return api.Status >= 500 || api.Status == 408
	}
	var reauth *gophercloud.ErrUnableToReauthenticate
	return !errors.As(err, &reauth)
}

// reusable decides, after a failed transfer, whether the record can take
// the data again (Glance puts it back to queued) or must be replaced: it
// returns the record's ID, or "" after deleting it.
func (c *Client) reusable(ctx context.Context, id string) (string, error) {
	im, err := c.GetImage(ctx, id)
	if err == nil && im.Status() == "queued" {
		return id, nil
	}
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	if derr := c.deleteDetached(ctx, id); derr != nil {
		return id, fmt.Errorf("image %s is %s after a failed transfer and cannot be deleted: %w", id, im.Status(), derr)
	}
	return "", nil
}

// finish waits for the image to become active: at once after a PUT,
// after the import task for glance-direct.
func (c *Client) finish(ctx context.Context, id string, o UploadOptions) (Image, error) {
	poll := o.PollInterval
	if poll <= 0 {
		poll = time.Second
	}
	if o.Import == GlanceDirect {
		if err := c.startImport(ctx, id, GlanceDirect, "", o.Stores); err != nil {
			return nil, fmt.Errorf("starting the import of image %s: %w", id, err)
		}
	}
	im, err := c.waitActive(ctx, id, poll)
	if err != nil {
		return im, fmt.Errorf("image %s: %w", id, err)
	}
	return im, nil
}

// verify compares Glance's record of the data with what was sent.
func verify(im Image, d Digests) error {
	var bad []string
	if size, ok := im.Int("size"); ok && size != d.Size {
		bad = append(bad, fmt.Sprintf("size %d, sent %d", size, d.Size))
	}
	if cs := im.String("checksum"); cs != "" && d.MD5 != "" && cs != d.MD5 {
		bad = append(bad, fmt.Sprintf("checksum (md5) %s, sent %s", cs, d.MD5))
	}
	if algo, v := im.String("os_hash_algo"), im.String("os_hash_value"); algo == "sha512" && d.SHA512 != "" && v != d.SHA512 {
		bad = append(bad, fmt.Sprintf("os_hash_value (sha512) %s, sent %s", v, d.SHA512))
	}
	if !checkable(im, d) {
		bad = append(bad, "Glance reports no checksum qimg can compare")
	}
	if len(bad) > 0 {
		return fmt.Errorf("image %s: the data and Glance's record of it differ (%s): %w", im.ID(), strings.Join(bad, "; "), ErrHashMismatch)
	}
	return nil
}

// deleteDetached deletes an image even when ctx is cancelled (Ctrl-C):
// cleaning up must not be cancelled with the work.
func (c *Client) deleteDetached(ctx context.Context, id string) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	return c.DeleteImage(dctx, id)
}

// ImportURL makes Glance download the image itself (web-download): it
// creates the record, starts the import and waits for it, deleting the
// record if the import fails. Nothing is checked locally, so DiskFormat
// must be given.
func (c *Client) ImportURL(ctx context.Context, uri string, o UploadOptions) (*UploadResult, error) {
	if o.Name == "" || o.DiskFormat == "" {
		return nil, errors.New("web-download needs --name and --disk-format")
	}
	if err := c.requireImport(ctx, WebDownload); err != nil {
		return nil, err
	}
	fields := (&o).createFields(&Plan{DiskFormat: o.DiskFormat}, &source{})
	if o.MinDisk == 0 {
		delete(fields, "min_disk")
	}
	im, err := c.CreateImage(ctx, fields)
	if err != nil {
		return nil, fmt.Errorf("creating the image record: %w", err)
	}
	id := im.ID()
	res := &UploadResult{Attempts: 1}
	fail := func(err error) (*UploadResult, error) {
		if derr := c.deleteDetached(ctx, id); derr != nil {
			err = fmt.Errorf("%w (and deleting image %s failed: %v)", err, id, derr)
		}
		return res, err
	}
	if err := c.startImport(ctx, id, WebDownload, uri, o.Stores); err != nil {
		return fail(fmt.Errorf("starting the import of image %s: %w", id, err))
	}
	poll := o.PollInterval
	if poll <= 0 {
		poll = time.Second
	}
	if res.Image, err = c.waitActive(ctx, id, poll); err != nil {
		return fail(fmt.Errorf("image %s: %w", id, err))
	}
	return res, nil
}
