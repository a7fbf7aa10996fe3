package cloudinit

import (
	"strings"
	"testing"
)

// FuzzParse feeds mutated user-data to Parse and ParseConfig: no panic,
// no hang, and every rejection is an *Error naming the file with at
// least one problem.
func FuzzParse(f *testing.F) {
	for _, s := range samples {
		f.Add([]byte(s.text))
	}
	f.Add([]byte(strings.Replace(mimeDoc, "%s", "runcmd: ls", 1)))
	f.Add(gz(f, "#cloud-config\nhostname: a\n"))
	f.Add([]byte("#cloud-config\nusers:\n  - &base {name: a, shell: /bin/sh}\n  - <<: [*base, *base]\n    name: b\n"))
	f.Add([]byte("## template: jinja\n#cloud-config\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, parse := range []func([]byte, string) (*Result, error){Parse, ParseConfig} {
			r, err := parse(data, "user-data")
			if err == nil {
				if r == nil {
					t.Fatal("nil result and nil error")
				}
				continue
			}
			e, ok := err.(*Error)
			if !ok || len(e.Problems) == 0 || !strings.HasPrefix(e.Error(), "user-data") {
				t.Fatalf("error %T %q", err, err)
			}
		}
	})
}
