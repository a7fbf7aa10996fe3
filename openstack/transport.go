package openstack

import (
	"net/http"
	"strconv"
)

// lengthHeader carries an upload's size from the request to the
// transport. gophercloud builds requests from an io.Reader, which
// net/http sends chunked; lengthTransport turns the header into the
// request's ContentLength so the body goes out with a Content-Length, as
// some proxies and Glance deployments require (and net/http then checks
// that exactly that many bytes were sent).
const lengthHeader = "X-Qimg-Content-Length"

type lengthTransport struct{ next http.RoundTripper }

func (t lengthTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	v := req.Header.Get(lengthHeader)
	if v == "" {
		return t.next.RoundTrip(req)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return t.next.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	r.Header.Del(lengthHeader)
	r.ContentLength = n
	if n == 0 {
		r.Body = http.NoBody
	}
	return t.next.RoundTrip(r)
}
