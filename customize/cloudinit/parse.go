package cloudinit

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/qimg/qimg/internal/lazyregexp"
	"go.yaml.in/yaml/v3"
)

// MaxSize is the largest user-data Parse reads, compressed or not.
// Clouds limit it far lower (EC2 16 KiB, OpenStack 64 KiB); a NoCloud
// seed has no limit, but 16 MiB of cloud-config is a mistake.
const MaxSize = 16 << 20

// The types cloud-init gives user-data by its first line.
const (
	TypeCloudConfig        = "text/cloud-config"
	TypeShellScript        = "text/x-shellscript"
	TypeInclude            = "text/x-include-url"
	TypeIncludeOnce        = "text/x-include-once-url"
	TypeBoothook           = "text/cloud-boothook"
	TypePartHandler        = "text/part-handler"
	TypeCloudConfigArchive = "text/cloud-config-archive"
	TypeCloudConfigJSONP   = "text/cloud-config-jsonp"
	TypeJinja              = "text/jinja2"
	TypeMultipart          = "multipart/mixed"
	TypeEmpty              = "" // no user-data at all
)

// headers are the first-line prefixes cloud-init recognises (compared
// in lower case after leading white space), longest first so that
// "#cloud-config-archive" is not taken for "#cloud-config".
var headers = []struct{ prefix, typ string }{
	{"#cloud-config-archive", TypeCloudConfigArchive},
	{"#cloud-config-jsonp", TypeCloudConfigJSONP},
	{"## template: jinja", TypeJinja},
	{"#cloud-boothook", TypeBoothook},
	{"#cloud-config", TypeCloudConfig},
	{"#include-once", TypeIncludeOnce},
	{"#part-handler", TypePartHandler},
	{"#include", TypeInclude},
	{"#!", TypeShellScript},
}

// Result is what Parse found in valid user-data.
type Result struct {
	// Type is the MIME type cloud-init gives the content.
	Type string
	// Notes are things worth knowing that do not stop cloud-init:
	// deprecated keys, content qimg does not check.
	Notes []Problem
}

// Validate checks user-data as cloud-init reads it from a seed or a
// metadata service; see Parse.
func Validate(data []byte, name string) error {
	_, err := Parse(data, name)
	return err
}

// Parse checks user-data: the type is told by the first line as
// cloud-init tells it; #cloud-config content must be YAML that
// cloud-init loads, holding only known keys with values of the
// documented types; gzip is decompressed first and each cloud-config
// part of a MIME multipart message is checked. Scripts, #include lists,
// boothooks, part handlers and Jinja templates are accepted unchecked,
// with a note. Every problem is reported, with its line, in one *Error
// naming the file name.
func Parse(data []byte, name string) (*Result, error) {
	return parse(data, name, 0)
}

// ParseConfig checks a file for cloud-init's system configuration
// (/etc/cloud/cloud.cfg.d/NAME.cfg): YAML with the user-data keys and
// the system ones (datasource_list, datasource, network...); the
// #cloud-config header is optional there.
func ParseConfig(data []byte, name string) (*Result, error) {
	if len(data) > MaxSize {
		return nil, &Error{Name: name, Problems: []Problem{{Message: fmt.Sprintf("larger than %d bytes", MaxSize)}}}
	}
	return checkYAML(data, name, schemaOnce().system, nil)
}

func parse(data []byte, name string, depth int) (*Result, error) {
	fail := func(line int, format string, args ...any) (*Result, error) {
		return nil, &Error{Name: name, Problems: []Problem{{Line: line, Message: fmt.Sprintf(format, args...)}}}
	}
	if len(data) > MaxSize {
		return fail(0, "larger than %d bytes", MaxSize)
	}
	if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		plain, err := gunzip(data)
		if err != nil {
			return fail(0, "gzip-compressed, but %v", err)
		}
		r, err := parse(plain, name+" (decompressed)", depth+1)
		if r != nil {
			r.Notes = append([]Problem{{Message: "gzip-compressed: lines are those of the decompressed content"}}, r.Notes...)
		}
		return r, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return &Result{Type: TypeEmpty, Notes: []Problem{{Message: "empty: cloud-init does nothing with it"}}}, nil
	}
	head := data[:min(len(data), 4096)]
	if bytes.Contains(bytes.ToLower(head), []byte("mime-version:")) {
		if depth > 2 {
			return fail(0, "MIME messages nested too deeply")
		}
		return parseMultipart(data, name, depth)
	}
	if !utf8.Valid(data) {
		return fail(0, "not UTF-8 text (cloud-init cannot decode it)")
	}
	typ := typeOf(data)
	switch typ {
	case TypeCloudConfig:
		r, err := checkYAML(data, name, schemaOnce().userData, schemaOnce().elsewhere)
		if r != nil {
			r.Type = TypeCloudConfig
		}
		return r, err
	case "":
		return fail(1, "%s", unknownHeader(data))
	}
	return &Result{Type: typ, Notes: []Problem{{Line: 1, Message: opaqueNote(typ)}}}, nil
}

// typeOf is the type cloud-init gives unpacked user-data, "" if none.
func typeOf(data []byte) string {
	lc := strings.ToLower(strings.TrimLeft(string(data[:min(len(data), 64)]), " \t\r\n\v\f"))
	for _, h := range headers {
		if strings.HasPrefix(lc, h.prefix) {
			return h.typ
		}
	}
	return ""
}

func opaqueNote(typ string) string {
	switch typ {
	case TypeShellScript:
		return "a script: cloud-init runs it once, late in the first boot; its content is not checked"
	case TypeInclude, TypeIncludeOnce:
		return "an #include list: cloud-init fetches each URL at boot; the URLs are not checked"
	case TypeBoothook:
		return "a boothook: run early on every boot; not checked"
	case TypePartHandler:
		return "a part handler (Python); not checked"
	case TypeJinja:
		return "a Jinja template: cloud-init renders it with instance data at boot, so it is not checked here"
	}
	return "accepted as " + typ + "; its content is not checked"
}

// unknownHeader explains user-data cloud-init would ignore.
func unknownHeader(data []byte) string {
	first, _, _ := strings.Cut(string(data[:min(len(data), 200)]), "\n")
	msg := fmt.Sprintf("cloud-init does not know this kind of user-data (first line %s) and would ignore it; it must start with #cloud-config, #!, #include, #cloud-boothook or a MIME header", quote(strings.TrimSpace(first)))
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) == nil && len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
		msg += " (it looks like cloud-config: add '#cloud-config' as the first line)"
	}
	return msg
}

func gunzip(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(zr, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(out) > MaxSize {
		return nil, fmt.Errorf("it decompresses to more than %d bytes", MaxSize)
	}
	return out, nil
}

// yamlLine finds "line N:" in a YAML library error.
var yamlLine = lazyregexp.New(`^yaml: line (\d+): (.*)$`)

// checkYAML loads one YAML document and checks it against top.
func checkYAML(data []byte, name string, top *spec, elsewhere map[string]string) (*Result, error) {
	doc, err := loadOne(data)
	if err != nil {
		p := Problem{Message: "YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			p.Message = "YAML: " + m[2]
		}
		return nil, &Error{Name: name, Problems: []Problem{p}}
	}
	r := &Result{Type: TypeCloudConfig}
	if doc == nil || len(doc.Content) == 0 {
		r.Notes = append(r.Notes, Problem{Message: "no keys: cloud-init does nothing with it"})
		return r, nil
	}
	root := deref(doc.Content[0])
	if t, _ := nodeType(root); t == tNull {
		r.Notes = append(r.Notes, Problem{Message: "no keys: cloud-init does nothing with it"})
		return r, nil
	}
	c := newChecker()
	c.elsewhere = elsewhere
	if root.Kind != yaml.MappingNode {
		t, _ := nodeType(root)
		c.errorf(root, "cloud-config must be a mapping of keys to values, got %s", t)
	} else {
		c.check(root, top, "")
	}
	r.Notes = append(r.Notes, sorted(c.notes)...)
	if len(c.problems) > 0 {
		ps := sorted(c.problems)
		if c.dropped > 0 {
			ps = append(ps, Problem{Message: fmt.Sprintf("and %d more problems", c.dropped)})
		}
		return nil, &Error{Name: name, Problems: ps}
	}
	return r, nil
}

// loadOne parses exactly one YAML document, as PyYAML's safe_load
// insists; nil for an empty stream.
func loadOne(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
		return &doc, nil
	case err != nil:
		return nil, err
	}
	return nil, fmt.Errorf("yaml: line %d: a second YAML document (after ---); cloud-init reads exactly one", max(next.Line, 1))
}
