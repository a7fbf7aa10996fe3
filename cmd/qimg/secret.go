package main

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/qimg/qimg/cmd/qimg/internal/qfmt"
)

// keyFlags are qemu-img's --object and --image-opts: the way keys of
// encrypted images reach a command. Secrets are kept as bytes and never
// printed: messages name a secret by its id only.
type keyFlags struct {
	objects   []string
	imageOpts bool
}

func (k *keyFlags) add(f *pflag.FlagSet) {
	f.StringArrayVar(&k.objects, "object", nil,
		"define a secret: secret,id=ID,data=STRING or secret,id=ID,file=PATH, with format=base64 for base64 data")
	f.BoolVar(&k.imageOpts, "image-opts", false,
		"image names are option lists: driver=qcow2,file.filename=PATH,encrypt.key-secret=ID")
}

// imageSpec is an image named on a command line.
type imageSpec struct {
	name   string // as qemu-img names it in messages: the argument
	path   string
	format string
	key    []byte // the secret encrypt.key-secret names, or nil
	keyID  string // encrypt.key-secret
	// backingKeys are the secrets backing.encrypt.key-secret,
	// backing.backing.encrypt.key-secret... name, by depth below the
	// image; backingOpt is the first such option given.
	backingKeys [][]byte
	backingOpt  string
}

// qemuName is the file name qemu-img info shows for the image, of format
// (probed or given): with a key secret, QEMU describes the options it
// opened as a "json:" name.
func (s imageSpec) qemuName(format string) string {
	if s.keyID == "" {
		return s.path
	}
	file := qfmt.Dict{}.Add("driver", "file").Add("filename", s.path)
	d := qfmt.Dict{}.Add("driver", format).Add("file", file).Add("encrypt.key-secret", s.keyID)
	return "json:" + qfmt.CompactJSON(d)
}

// secrets parses the --object secrets into their values by id.
func (k *keyFlags) secrets() (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, o := range k.objects {
		id, val, err := parseSecret(o)
		if err != nil {
			return nil, err
		}
		if _, dup := out[id]; dup {
			return nil, fail("attempt to add duplicate property '%s' to object (type 'container')", id)
		}
		out[id] = val
	}
	return out, nil
}

// parseSecret decodes one --object: "secret,id=ID,data=...|file=...".
func parseSecret(o string) (id string, val []byte, err error) {
	kvs, err := qfmt.SplitList(o)
	if err != nil {
		return "", nil, fail("%s", err)
	}
	var data, file, encoding string
	var hasData, hasFile bool
	typ := ""
	for i, kv := range kvs {
		switch {
		case i == 0 && kv[1] == "on" && kv[0] != "id":
			typ = kv[0]
		case kv[0] == "qom-type":
			typ = kv[1]
		case kv[0] == "id":
			id = kv[1]
		case kv[0] == "data":
			data, hasData = kv[1], true
		case kv[0] == "file":
			file, hasFile = kv[1], true
		case kv[0] == "format":
			encoding = kv[1]
		case kv[0] == "keyid" || kv[0] == "iv":
			return "", nil, fail("qimg does not decrypt secrets (parameter '%s'): pass the secret itself", kv[0])
		default:
			return "", nil, fail("Parameter '%s' is unexpected", kv[0])
		}
	}
	if typ != "secret" {
		return "", nil, fail("Parameter 'qom-type' does not accept value '%s'", typ)
	}
	if id == "" {
		return "", nil, fail("Parameter 'id' is missing")
	}
	switch {
	case hasData == hasFile:
		return "", nil, fail("Either 'file' or 'data' must be provided")
	case hasFile:
		b, err := os.ReadFile(file)
		if err != nil {
			return "", nil, fail("Unable to read %s: %s", file, reason(file, err))
		}
		val = b
	default:
		val = []byte(data)
	}
	switch encoding {
	case "", "raw":
	case "base64":
		dec, err := base64.StdEncoding.DecodeString(string(val))
		if err != nil {
			return "", nil, fail("Secret '%s' is not valid base64", id)
		}
		val = dec
	default:
		return "", nil, fail("Parameter 'format' does not accept value '%s'", encoding)
	}
	return id, val, nil
}

// resolve turns an image argument into an imageSpec: with --image-opts
// an option list (driver, file.filename, encrypt.key-secret), otherwise a
// file name in format (empty: probed).
func (k *keyFlags) resolve(arg, format string) (imageSpec, error) {
	return k.resolveKey(arg, format, true)
}

// resolveMetadata is resolve for a command that reads no guest data
// (info): like qemu-img, it does not look the key secret up.
func (k *keyFlags) resolveMetadata(arg, format string) (imageSpec, error) {
	return k.resolveKey(arg, format, false)
}

func (k *keyFlags) resolveKey(arg, format string, needKey bool) (imageSpec, error) {
	secrets, err := k.secrets()
	if err != nil {
		return imageSpec{}, err
	}
	if !k.imageOpts {
		return imageSpec{name: arg, path: arg, format: format}, nil
	}
	if format != "" {
		return imageSpec{}, fail("--image-opts and --format are mutually exclusive")
	}
	s := imageSpec{name: arg}
	kvs, err := qfmt.SplitList(arg)
	if err != nil {
		return s, fail("%s", err)
	}
	couldNot := func(f string, args ...any) error {
		return fail("Could not open '%s': %s", arg, fmt.Sprintf(f, args...))
	}
	if !strings.Contains(arg, "=") {
		// QEMU takes a bare word as the name of a block node.
		return s, couldNot("Cannot find device='%s' nor node-name='%s'", arg, arg)
	}
	for _, kv := range kvs {
		if depth := backingKeyDepth(kv[0]); depth > 0 {
			key, ok := secrets[kv[1]]
			if !ok && needKey {
				return s, couldNot("Could not open backing file: No secret with id '%s'", kv[1])
			}
			for len(s.backingKeys) < depth {
				s.backingKeys = append(s.backingKeys, nil)
			}
			s.backingKeys[depth-1] = key
			s.backingOpt = cmp.Or(s.backingOpt, kv[0])
			continue
		}
		switch kv[0] {
		case "driver":
			s.format = kv[1]
		case "file.filename":
			s.path = kv[1]
		case "filename":
			// The file protocol's own option; a format driver has none.
			if s.format == "file" {
				s.path = kv[1]
			}
		case "file":
			// A reference to a block node, which qimg has none of.
			return s, couldNot("Cannot find device='%s' nor node-name='%s'", kv[1], kv[1])
		case "file.driver":
			if kv[1] != "file" {
				return s, couldNot("qimg opens image files only (file.driver=file), not '%s'", kv[1])
			}
		case "encrypt.key-secret":
			key, ok := secrets[kv[1]]
			if !ok && needKey {
				return s, couldNot("No secret with id '%s'", kv[1])
			}
			s.key, s.keyID = key, kv[1]
		case "encrypt.format":
			// The header says which; QEMU checks it matches.
		default:
			d := s.format
			if d == "" {
				d = "file"
			}
			return s, couldNot("Block format '%s' does not support the option '%s'", d, kv[0])
		}
	}
	if s.path == "" && s.format == "" {
		return s, couldNot("Must specify either driver or file")
	}
	if s.backingOpt != "" && !needKey {
		// Opened without its backing file, the image leaves the option
		// unused, which QEMU refuses.
		return s, couldNot("Block format '%s' does not support the option '%s'", cmp.Or(s.format, "file"), s.backingOpt)
	}
	if s.path == "" {
		return s, couldNot("A block device must be specified for \"file\"")
	}
	return s, nil
}

// backingKeyDepth is, for an --image-opts key naming the key secret of
// a backing file (encrypt.key-secret after one "backing." per level), the
// depth of that file below the image; 0 for any other key.
func backingKeyDepth(name string) int {
	depth := 0
	for strings.HasPrefix(name, "backing.") {
		name = strings.TrimPrefix(name, "backing.")
		depth++
	}
	if name != "encrypt.key-secret" {
		return 0
	}
	return depth
}
