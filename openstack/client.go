package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
)

// Client talks to one cloud's image service (Glance v2), and to its
// compute and network services for boot tests, with a token that renews
// itself.
type Client struct {
	provider *gophercloud.ProviderClient
	image    *gophercloud.ServiceClient
	// endpoint chooses the other services' endpoints in the catalog
	// (region, interface).
	endpoint gophercloud.EndpointOpts
}

// ImageEndpoint is the image service's URL as the catalog gives it.
func (c *Client) ImageEndpoint() string { return c.image.Endpoint }

// Token is the current token, which changes when it is renewed.
func (c *Client) Token() string { return c.provider.Token() }

// Image is an image record as Glance returns it: its fields and its
// properties side by side, as in the API.
type Image map[string]any

// ID is the image's UUID.
func (im Image) ID() string { return im.String("id") }

// Name is the image's name.
func (im Image) Name() string { return im.String("name") }

// Status is queued, saving, uploading, importing, active, killed, ...
func (im Image) Status() string { return im.String("status") }

// String is a field as text ("" when absent or null).
func (im Image) String(key string) string {
	switch v := im[key].(type) {
	case nil:
		return ""
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	default:
		return fmt.Sprint(v)
	}
}

// Int is a numeric field; ok is false when it is absent or null.
func (im Image) Int(key string) (int64, bool) {
	v, ok := im[key].(int64)
	return v, ok
}

// normalized turns the json.Numbers gophercloud decodes (it decodes with
// UseNumber) into int64, or float64 for the rare non-integer.
func (im Image) normalized() Image {
	for k, v := range im {
		im[k] = normalValue(v)
	}
	return im
}

func normalValue(v any) any {
	switch v := v.(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = normalValue(e)
		}
	case []any:
		for i, e := range v {
			v[i] = normalValue(e)
		}
	}
	return v
}

// Tags are the image's tags, sorted.
func (im Image) Tags() []string {
	raw, _ := im["tags"].([]any)
	tags := make([]string, 0, len(raw))
	for _, t := range raw {
		if s, ok := t.(string); ok {
			tags = append(tags, s)
		}
	}
	sort.Strings(tags)
	return tags
}

// coreFields are Glance's own image attributes; every other key of an
// image record is a property (the openstack CLI shows those under
// "properties").
var coreFields = map[string]bool{
	"checksum": true, "container_format": true, "created_at": true, "disk_format": true,
	"file": true, "id": true, "min_disk": true, "min_ram": true, "name": true, "owner": true,
	"protected": true, "schema": true, "size": true, "status": true, "tags": true,
	"updated_at": true, "virtual_size": true, "visibility": true, "locations": true,
	"direct_url": true, "self": true,
}

// IsProperty reports whether key is a property rather than an attribute.
func IsProperty(key string) bool { return !coreFields[key] }

// Properties are the image's properties (os_hash_value, hw_disk_bus, ...).
func (im Image) Properties() map[string]any {
	p := map[string]any{}
	for k, v := range im {
		if IsProperty(k) {
			p[k] = v
		}
	}
	return p
}

// APIError is an unexpected answer of the image service.
type APIError struct {
	Method, URL string
	Status      int
	Body        string
}

func (e *APIError) Error() string {
	msg := strings.TrimSpace(e.Body)
	if len(msg) > 500 {
		msg = msg[:500] + "..."
	}
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.URL, e.Status, http.StatusText(e.Status), msg)
}

// ErrNotFound is returned (wrapped) for an image that does not exist.
var ErrNotFound = errors.New("not found")

// apiError turns gophercloud's errors into APIError (and ErrNotFound).
func apiError(err error) error {
	if err == nil {
		return nil
	}
	var u gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &u) {
		e := &APIError{Method: u.Method, URL: u.URL, Status: u.Actual, Body: string(u.Body)}
		if u.Actual == http.StatusNotFound {
			return fmt.Errorf("%w: %w", ErrNotFound, e)
		}
		return e
	}
	return err
}

// GetImage reads one image by ID.
func (c *Client) GetImage(ctx context.Context, id string) (Image, error) {
	var im Image
	_, err := c.image.Get(ctx, c.image.ServiceURL("images", url.PathEscape(id)), &im, nil)
	return im.normalized(), apiError(err)
}

// CreateImage creates an image record (status queued) from Glance's
// fields and properties.
func (c *Client) CreateImage(ctx context.Context, fields map[string]any) (Image, error) {
	var im Image
	_, err := c.image.Post(ctx, c.image.ServiceURL("images"), fields, &im, &gophercloud.RequestOpts{OkCodes: []int{201}})
	return im.normalized(), apiError(err)
}

// DeleteImage deletes an image; one already gone is not an error.
func (c *Client) DeleteImage(ctx context.Context, id string) error {
	_, err := c.image.Delete(ctx, c.image.ServiceURL("images", url.PathEscape(id)), nil)
	err = apiError(err)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// PatchOp is one JSON-patch operation of an image update.
type PatchOp struct {
	Op    string `json:"op"` // add, replace, remove
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// UpdateImage applies JSON-patch operations to an image.
func (c *Client) UpdateImage(ctx context.Context, id string, ops []PatchOp) (Image, error) {
	var im Image
	_, err := c.image.Patch(ctx, c.image.ServiceURL("images", url.PathEscape(id)), ops, &im, &gophercloud.RequestOpts{
		MoreHeaders: map[string]string{"Content-Type": "application/openstack-images-v2.1-json-patch"},
		OkCodes:     []int{200},
	})
	return im.normalized(), apiError(err)
}

// ListImages lists the images that match query (Glance's filters: name,
// status, visibility, tag, os_hash_value, member_status, sort, limit,
// marker, ...), following Glance's pages. max > 0 stops after max images.
func (c *Client) ListImages(ctx context.Context, query url.Values, max int) ([]Image, error) {
	next := c.image.ServiceURL("images")
	if len(query) > 0 {
		next += "?" + query.Encode()
	}
	var all []Image
	for next != "" {
		var page struct {
			Images []Image `json:"images"`
			Next   string  `json:"next"`
		}
		if _, err := c.image.Get(ctx, next, &page, nil); err != nil {
			return nil, apiError(err)
		}
		for _, im := range page.Images {
			all = append(all, im.normalized())
		}
		if max > 0 && len(all) >= max {
			return all[:max], nil
		}
		if page.Next == "" || len(page.Images) == 0 {
			break
		}
		// "next" is a path from the service's root: /v2/images?marker=...
		u, err := url.Parse(c.image.Endpoint)
		if err != nil {
			return nil, err
		}
		ref, err := url.Parse(page.Next)
		if err != nil {
			return nil, err
		}
		next = u.ResolveReference(ref).String()
	}
	return all, nil
}

// FindImage finds an image by ID or, failing that, by name, as the
// openstack CLI does: a name shared by several images is an error.
func (c *Client) FindImage(ctx context.Context, nameOrID string) (Image, error) {
	if looksLikeUUID(nameOrID) {
		im, err := c.GetImage(ctx, nameOrID)
		if err == nil {
			return im, nil
		}
		if !errors.Is(err, ErrNotFound) && !isBadRequest(err) {
			return nil, err
		}
	}
	found, lerr := c.ListImages(ctx, url.Values{"name": {nameOrID}}, 0)
	if lerr != nil {
		return nil, lerr
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no image with a name or ID of '%s' exists: %w", nameOrID, ErrNotFound)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("more than one image exists with the name '%s'", nameOrID)
}

// looksLikeUUID: Glance's IDs are UUIDs, so anything else is only looked
// up as a name (one request instead of two).
func looksLikeUUID(s string) bool {
	s = strings.ReplaceAll(s, "-", "")
	if len(s) != 32 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

func isBadRequest(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == http.StatusBadRequest
}

// ImportMethods are the interoperable import methods the cloud enables
// (glance-direct, web-download, copy-image, ...).
func (c *Client) ImportMethods(ctx context.Context) ([]string, error) {
	var info struct {
		Methods struct {
			Value []string `json:"value"`
		} `json:"import-methods"`
	}
	_, err := c.image.Get(ctx, c.image.ServiceURL("info", "import"), &info, nil)
	return info.Methods.Value, apiError(err)
}

// Task is an asynchronous Glance task (an import).
type Task struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// ImageTasks lists the tasks of an image (image API 2.12 and later).
func (c *Client) ImageTasks(ctx context.Context, id string) ([]Task, error) {
	var body struct {
		Tasks []Task `json:"tasks"`
	}
	_, err := c.image.Get(ctx, c.image.ServiceURL("images", url.PathEscape(id), "tasks"), &body, nil)
	return body.Tasks, apiError(err)
}

// importRequest is the body of POST /v2/images/ID/import, with the
// stores fields gophercloud's imageimport lacks.
type importRequest struct {
	Method struct {
		Name string `json:"name"`
		URI  string `json:"uri,omitempty"`
	} `json:"method"`
	Stores    []string `json:"stores,omitempty"`
	AllStores *bool    `json:"all_stores,omitempty"`
}

// startImport asks Glance to import staged data (glance-direct) or a URL
// (web-download) into the image.
func (c *Client) startImport(ctx context.Context, id, method, uri string, stores []string) error {
	var req importRequest
	req.Method.Name, req.Method.URI = method, uri
	req.Stores = stores
	_, err := c.image.Post(ctx, c.image.ServiceURL("images", url.PathEscape(id), "import"), req, nil,
		&gophercloud.RequestOpts{OkCodes: []int{202}})
	return apiError(err)
}

// waitActive polls the image until it is active, or has failed (killed,
// deleted, a failed import), or ctx ends.
func (c *Client) waitActive(ctx context.Context, id string, poll time.Duration) (Image, error) {
	for {
		im, err := c.GetImage(ctx, id)
		if err != nil {
			return nil, err
		}
		switch im.Status() {
		case "active":
			return im, nil
		case "killed", "deleted", "deactivated":
			return im, fmt.Errorf("image %s is %s", id, im.Status())
		}
		if failed := im.String("os_glance_failed_import"); failed != "" {
			return im, fmt.Errorf("import into store %s failed%s", failed, c.taskMessage(ctx, id))
		}
		if msg := c.failedTask(ctx, id); msg != "" {
			return im, fmt.Errorf("import failed: %s", msg)
		}
		select {
		case <-ctx.Done():
			return im, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// failedTask is the message of a failed task of the image, or "".
func (c *Client) failedTask(ctx context.Context, id string) string {
	tasks, err := c.ImageTasks(ctx, id)
	if err != nil {
		return ""
	}
	for _, t := range tasks {
		if t.Status == "failure" {
			return firstNonEmpty(t.Message, "task "+t.ID+" failed")
		}
	}
	return ""
}

func (c *Client) taskMessage(ctx context.Context, id string) string {
	if m := c.failedTask(ctx, id); m != "" {
		return ": " + m
	}
	return ""
}
