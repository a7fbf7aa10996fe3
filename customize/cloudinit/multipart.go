package cloudinit

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
)

// maxParts bounds the parts of a MIME message.
const maxParts = 1000

// parseMultipart checks a MIME message as cloud-init splits it: each
// part's Content-Type says what it is (text/cloud-config is checked,
// the types cloud-init runs are accepted, others are noted); problems
// name the part.
func parseMultipart(data []byte, name string, depth int) (*Result, error) {
	fail := func(format string, args ...any) (*Result, error) {
		return nil, &Error{Name: name, Problems: []Problem{{Message: "MIME: " + fmt.Sprintf(format, args...)}}}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return fail("%v", err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return fail("Content-Type: %v", err)
	}
	r := &Result{Type: TypeMultipart}
	if !strings.HasPrefix(mt, "multipart/") {
		body, err := partBody(msg.Body, msg.Header.Get("Content-Transfer-Encoding"))
		if err != nil {
			return fail("%v", err)
		}
		return checkPart(r, &Error{Name: name}, mt, body, name, depth)
	}
	if params["boundary"] == "" {
		return fail("multipart message without a boundary")
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	all := &Error{Name: name}
	for i := 1; ; i++ {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail("part %d: %v", i, err)
		}
		if i > maxParts {
			return fail("more than %d parts", maxParts)
		}
		pname := fmt.Sprintf("%s part %d", name, i)
		if fn := p.FileName(); fn != "" {
			pname += " (" + fn + ")"
		}
		body, err := partBody(p, p.Header.Get("Content-Transfer-Encoding"))
		if err != nil {
			return fail("part %d: %v", i, err)
		}
		pt, _, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil {
			pt = "text/plain" // cloud-init then types the part by its first line
		}
		if _, err := checkPart(r, all, pt, body, pname, depth); err != nil {
			return nil, err
		}
	}
	if len(all.Problems) > 0 {
		return nil, all
	}
	return r, nil
}

// checkPart checks one part of type mt, adding its notes to r and its
// problems (named by pname) to all.
func checkPart(r *Result, all *Error, mt string, body []byte, pname string, depth int) (*Result, error) {
	switch mt {
	case "text/plain", "text/x-not-multipart", "application/octet-stream":
		mt = typeOf(body) // cloud-init types these by their first line
	case "application/gzip", "application/x-gzip", "application/gzip-compressed", "application/x-compress":
		mt = ""
	}
	switch {
	case mt == TypeCloudConfig || mt == "":
		sub, err := parse(body, pname, depth+1)
		if e, ok := err.(*Error); ok {
			for _, p := range e.Problems {
				all.Problems = append(all.Problems, Problem{Message: pname + ": " + p.String()})
			}
			return r, nil
		}
		if err != nil {
			return nil, err
		}
		for _, n := range sub.Notes {
			r.Notes = append(r.Notes, Problem{Message: pname + ": " + n.String()})
		}
	case strings.HasPrefix(mt, "multipart/"):
		r.Notes = append(r.Notes, Problem{Message: pname + ": a nested multipart part; not checked"})
	default:
		r.Notes = append(r.Notes, Problem{Message: pname + ": " + opaqueNote(mt)})
	}
	return r, nil
}

// partBody reads a part and undoes its transfer encoding (multipart's
// reader already undid quoted-printable when it could).
func partBody(rd io.Reader, encoding string) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(rd, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxSize {
		return nil, fmt.Errorf("a part larger than %d bytes", MaxSize)
	}
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "base64":
		clean := bytes.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, raw)
		out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
		n, err := base64.StdEncoding.Decode(out, clean)
		if err != nil {
			return nil, fmt.Errorf("bad base64: %v", err)
		}
		return out[:n], nil
	}
	return raw, nil
}
