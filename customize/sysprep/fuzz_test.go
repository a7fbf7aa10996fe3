package sysprep

import (
	"bytes"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzEditNetplan: any input is edited without a panic, and what comes
// out is YAML again.
func FuzzEditNetplan(f *testing.F) {
	for _, s := range []string{
		"network:\n    ethernets:\n        ens3:\n            dhcp4: true\n            match:\n                macaddress: fa:16:3e:5f:0e:1a\n            set-name: ens3\n    version: 2\n",
		"network: {ethernets: {eth0: {match: {macaddress: 'aa:bb:cc:dd:ee:ff', driver: e1000}, set-name: lan}}}\n",
		"network:\n  bridges:\n    br0:\n      macaddress: \"aa:bb:cc:dd:ee:ff\" # fixed\n      interfaces: [a]\n",
		"m: &m {macaddress: x}\nnetwork:\n  ethernets:\n    e: {match: *m}\n",
		"---\nnetwork: {}\n---\nnetwork:\n  wifis:\n    w:\n      match:\n        macaddress: |\n          aa\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, changes, err := editNetplan(data)
		if err != nil {
			return
		}
		if (out == nil) != (len(changes) == 0) {
			t.Fatalf("out %q with changes %q", out, changes)
		}
		if out == nil {
			return
		}
		dec := yaml.NewDecoder(bytes.NewReader(out))
		for {
			var n yaml.Node
			if err := dec.Decode(&n); err != nil {
				if err.Error() != "EOF" {
					t.Fatalf("the edit of %q is not YAML: %v\n%s", data, err, out)
				}
				break
			}
		}
	})
}

// FuzzEditKeyfile: editing removes every MAC binding at once.
func FuzzEditKeyfile(f *testing.F) {
	f.Add([]byte("[connection]\nid=x\n\n[ethernet]\nmac-address=52:54:00:AB:CD:EF\ncloned-mac-address=stable\n"))
	f.Add([]byte("# c\r\n[wifi]\r\nmac-address = 52:54:00:AB:CD:F0\r\ncloned-mac-address=52:54:00:00:00:01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, _ := editKeyfile(data)
		if out == nil {
			return
		}
		if len(out) >= len(data) {
			t.Fatalf("an edit that only removes lines grew the file: %q -> %q", data, out)
		}
		if again, changes := editKeyfile(out); again != nil {
			t.Fatalf("a second edit of %q changes %q", out, changes)
		}
	})
}

// FuzzEditNetworkd: editing removes every MAC binding at once.
func FuzzEditNetworkd(f *testing.F) {
	f.Add("network", []byte("[Match]\nMACAddress=52:54:00:4f:8e:21 \\\n 52:54:00:4f:8e:22\n\n[Network]\nDHCP=yes\n"))
	f.Add("link", []byte("[Match]\nMACAddress=52:54:00:4f:8e:21\n[Link]\nName=lan0\nMACAddress=52:54:00:4f:8e:29\n"))
	f.Add("netdev", []byte("[NetDev]\nName=br0\nKind=bridge\nMACAddress=52:54:00:12:34:56\n"))
	f.Fuzz(func(t *testing.T, kind string, data []byte) {
		ed := editNetworkd(kind, data)
		if ed.out == nil {
			return
		}
		if again := editNetworkd(kind, ed.out); again.out != nil || again.remove {
			t.Fatalf("a second edit of %q changes %q", ed.out, again.changes)
		}
	})
}
