package cloudinit

import (
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/qimg/qimg/image"
)

func gz(t testing.TB, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

const mimeDoc = `Content-Type: multipart/mixed; boundary="XX"
MIME-Version: 1.0

--XX
Content-Type: text/cloud-config; charset="us-ascii"
Content-Transfer-Encoding: 7bit
Content-Disposition: attachment; filename="cloud-config.txt"

#cloud-config
hostname: a
%s
--XX
Content-Type: text/x-shellscript; charset="us-ascii"
Content-Disposition: attachment; filename="script.sh"

#!/bin/sh
echo hi
--XX
Content-Type: text/cloud-config
Content-Transfer-Encoding: base64

I2Nsb3VkLWNvbmZpZwpmcWRuOiBhLmV4YW1wbGUub3JnCg==
--XX--
`

func TestTypes(t *testing.T) {
	for _, c := range []struct {
		data, typ, note string
	}{
		{"#!/bin/bash\necho hi\n", TypeShellScript, "a script"},
		{"  #!/bin/sh\n", TypeShellScript, "a script"},
		{"#include\nhttp://example.org/a\n", TypeInclude, "#include list"},
		{"#include-once\nhttp://example.org/a\n", TypeIncludeOnce, "#include list"},
		{"#cloud-boothook\n#!/bin/sh\n", TypeBoothook, "boothook"},
		{"#part-handler\ndef list_types(): pass\n", TypePartHandler, "part handler"},
		{"## template: jinja\n#cloud-config\nhostname: {{ v1.local_hostname }}\n", TypeJinja, "Jinja"},
		{"#cloud-config-archive\n- type: text/cloud-config\n", TypeCloudConfigArchive, "not checked"},
		{"#Cloud-Config\nhostname: a\n", TypeCloudConfig, ""},
		{"#cloud-config\n", TypeCloudConfig, "no keys"},
		{"#cloud-config\n~\n", TypeCloudConfig, "no keys"},
		{"", TypeEmpty, "empty"},
		{"#cloud-config\napt_update: true\n", TypeCloudConfig, "2: apt_update is deprecated: use package_update"},
		{strings.Replace(mimeDoc, "%s", "", 1), TypeMultipart, "user-data part 2 (script.sh): a script"},
	} {
		r, err := Parse([]byte(c.data), "user-data")
		if err != nil {
			t.Errorf("%q: %v", c.data, err)
			continue
		}
		if r.Type != c.typ {
			t.Errorf("%q: type %q, want %q", c.data, r.Type, c.typ)
		}
		var notes []string
		for _, n := range r.Notes {
			notes = append(notes, n.String())
		}
		if all := strings.Join(notes, "\n"); !strings.Contains(all, c.note) {
			t.Errorf("%q: notes %q do not say %q", c.data, all, c.note)
		}
	}
}

func TestProblems(t *testing.T) {
	for _, c := range []struct {
		data []byte
		want string
	}{
		{gz(t, "#cloud-config\nhostname: 5\n"), "user-data (decompressed):2: hostname: expected a string"},
		{[]byte(strings.Replace(mimeDoc, "%s", "runcmd: ls", 1)), "user-data: user-data part 1 (cloud-config.txt): 3: runcmd: expected a list"},
		{[]byte("#cloud-config\nhostname: a\n---\nfqdn: b\n"), "user-data:3: YAML: a second YAML document"},
		{[]byte("#cloud-config\nfqdn: !python/object x\n"), "user-data:2: fqdn: tag !python/object is not one cloud-init accepts"},
		{[]byte("#cloud-config\nhostname: !!str 5\nfqdn: !!int 5\n"), "user-data:3: fqdn: expected a string, got an integer"},
		{[]byte("#cloud-config\nhostname: a\nhostname: b\n"), "user-data:3: key 'hostname' given twice (also on line 2)"},
		{[]byte("#cloud-config\n1: a\n"), "user-data:2: keys must be strings, got an integer (1)"},
		{[]byte("#cloud-config\nexpiredate: 2030-01-01\n"), "key 'expiredate' is not a cloud-config key"},
		{[]byte("#cloud-config\nusers: [{name: a, expiredate: 2030-01-01}]\n"), "users[0].expiredate: expected a string, got a date or binary (2030-01-01)"},
		{[]byte("#cloud-config\nhostname: \xff\n"), "user-data: not UTF-8"},
		{[]byte("#cloud-config\nhostname: a\n\x00"), "user-data:"},
		{[]byte("echo hi\n"), "user-data:1: cloud-init does not know this kind of user-data (first line 'echo hi')"},
		{[]byte("#cloud-config\n<<: [1]\n"), "user-data:2: a merge key (<<) takes mappings only"},
		{[]byte("#cloud-config\ndatasource_list: [NoCloud]\nnetwork: {config: disabled}\n"), "user-data:3: key 'network' is not read from user-data"},
		{[]byte("#cloud-config\n" + strings.Repeat("x: 1\n", 150)), "and 50 more problems"},
	} {
		_, err := Parse(c.data, "user-data")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.data, err, c.want)
		}
		if err != nil && !errors.Is(err, image.ErrInvalidArgument) {
			t.Errorf("%q: %v is not ErrInvalidArgument", c.data, err)
		}
	}
}

func TestParseConfig(t *testing.T) {
	_, err := ParseConfig([]byte("datasource_list: [ConfigDrive, NoCloud, None]\ndatasource:\n  NoCloud: {fs_label: cidata}\ngrowpart: {mode: auto}\nnetwork: {config: disabled}\n"), "90-qimg.cfg")
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParseConfig([]byte("datasource_lsit: [NoCloud]\n"), "90-qimg.cfg")
	if err == nil || err.Error() != "90-qimg.cfg:1: key 'datasource_lsit' is not a cloud-config key (did you mean 'datasource_list'?)" {
		t.Fatalf("got %v", err)
	}
}

// TestAliasBomb: a list of 600 aliases to a list of 600 strings names
// 360,000 values in a few KiB; the check stops at its budget quickly
// instead of walking them.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("#cloud-config\nmounts:\n  - &a [" + strings.Repeat("x, ", 599) + "x]\n")
	b.WriteString(strings.Repeat("  - *a\n", 599))
	start := time.Now()
	err := Validate([]byte(b.String()), "user-data")
	if err == nil || !strings.Contains(err.Error(), "expands (through aliases)") {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestTooLarge(t *testing.T) {
	big := append([]byte("#cloud-config\n"), bytes.Repeat([]byte("#"), MaxSize)...)
	if err := Validate(big, "u"); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("got %v", err)
	}
	bomb := gz(t, "#cloud-config\n"+strings.Repeat("#", MaxSize+1))
	if err := Validate(bomb, "u"); err == nil || !strings.Contains(err.Error(), "decompresses to more than") {
		t.Fatalf("got %v", err)
	}
}

func TestClosest(t *testing.T) {
	known := sortedKeys(schemaOnce().moduleKeys)
	for key, want := range map[string]string{
		"pakages": "packages", "ssh-authorized-keys": "ssh_authorized_keys", "runcmds": "runcmd",
		"write_file": "write_files", "timezon": "timezone", "zzzzzzzz": "", "hostnames": "hostname",
	} {
		if got := closest(key, known); got != want {
			t.Errorf("closest(%q) = %q, want %q", key, got, want)
		}
	}
}
