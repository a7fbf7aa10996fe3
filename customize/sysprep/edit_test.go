package sysprep

import (
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestEditNetplan(t *testing.T) {
	for _, c := range []struct {
		name, in, want string
		changes        int
	}{{
		name: "cloud-init 22.x, indent 4",
		in: "network:\n    ethernets:\n        ens3:\n            dhcp4: true\n            match:\n" +
			"                macaddress: fa:16:3e:5f:0e:1a\n            set-name: ens3\n    version: 2\n",
		want:    "network:\n    ethernets:\n        ens3:\n            dhcp4: true\n            match:\n                name: en*\n    version: 2\n",
		changes: 2,
	}, {
		name:    "CRLF line ends stay",
		in:      "network:\r\n  wifis:\r\n    wlan0:\r\n      match:\r\n        macaddress: 'aa:bb:cc:dd:ee:ff'\r\n",
		want:    "network:\r\n  wifis:\r\n    wlan0:\r\n      match:\r\n        name: wl*\r\n",
		changes: 1,
	}, {
		name:    "no set-name: the glob comes from the id",
		in:      "network:\n  ethernets:\n    id0:\n      match: {macaddress: 'aa:bb:cc:dd:ee:ff'}\n      dhcp4: yes\n",
		want:    "network:\n  ethernets:\n    id0:\n      match: {name: e*}\n      dhcp4: yes\n",
		changes: 1,
	}, {
		name:    "flow style is written back by the encoder",
		in:      "network: {version: 2, ethernets: {eth0: {match: {macaddress: 'aa:bb:cc:dd:ee:ff', driver: e1000}, set-name: lan}}}\n",
		want:    "network: {version: 2, ethernets: {eth0: {match: {driver: e1000}, set-name: lan}}}\n",
		changes: 1,
	}, {
		name:    "a device left empty is written back by the encoder",
		in:      "network:\n  bonds:\n    bond0:\n      macaddress: aa:bb:cc:dd:ee:ff\n",
		want:    "network:\n  bonds:\n    bond0: {}\n",
		changes: 1,
	}, {
		name: "nothing bound to a MAC",
		in:   "network:\n  version: 2\n  renderer: NetworkManager\n",
	}, {
		name: "not netplan at all",
		in:   "- a\n- b\n",
	}, {
		name: "aliases are not followed",
		in:   "m: &m {macaddress: 'aa:bb:cc:dd:ee:ff'}\nnetwork:\n  ethernets:\n    eth0:\n      match: *m\n",
	}} {
		t.Run(c.name, func(t *testing.T) {
			out, changes, err := editNetplan([]byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(changes) != c.changes {
				t.Errorf("changes %q, want %d", changes, c.changes)
			}
			if c.want == "" {
				if out != nil {
					t.Errorf("changed to\n%s", out)
				}
				return
			}
			if string(out) != c.want {
				t.Errorf("got\n%s\nwant\n%s", out, c.want)
			}
			var v any
			if err := yaml.Unmarshal(out, &v); err != nil {
				t.Errorf("the result is not YAML: %v", err)
			}
		})
	}
	if _, _, err := editNetplan([]byte("network:\n  ethernets: [\n")); err == nil {
		t.Error("invalid YAML accepted")
	}
}

func TestEditKeyfile(t *testing.T) {
	in := "[connection]\nid=x\n\n[ethernet]\nmac-address = 52:54:00:AB:CD:EF\ncloned-mac-address=random\n" +
		"[wifi]\nmac-address=52:54:00:AB:CD:F0\ncloned-mac-address=52:54:00:00:00:01\nmac-address-blacklist=52:54:00:00:00:02;\n"
	out, changes := editKeyfile([]byte(in))
	want := "[connection]\nid=x\n\n[ethernet]\ncloned-mac-address=random\n[wifi]\nmac-address-blacklist=52:54:00:00:00:02;\n"
	if string(out) != want || len(changes) != 3 {
		t.Errorf("got %q (%q), want %q", out, changes, want)
	}
	if out, _ := editKeyfile([]byte("[connection]\nid=x\n")); out != nil {
		t.Errorf("an unbound keyfile changed: %q", out)
	}
}

func TestEditNetworkd(t *testing.T) {
	for _, c := range []struct {
		kind, in, want string
		remove         bool
	}{
		{"link", "[Match]\nMACAddress=52:54:00:4f:8e:21\n[Link]\nName=lan0\n", "", true},
		{"link", "[Match]\nDriver=virtio_net\nPermanentMACAddress=52:54:00:4f:8e:21\n[Link]\nName=lan0\n", "[Match]\nDriver=virtio_net\n[Link]\nName=lan0\n", false},
		{"network", "# lan\n[Match]\nMACAddress=52:54:00:4f:8e:21 \\\n  52:54:00:4f:8e:22\n\n[Network]\nDHCP=yes\n", "# lan\n[Match]\nType=ether\n\n[Network]\nDHCP=yes\n", false},
		{"netdev", "[NetDev]\nName=br0\nMACAddress=none\n", "", false},
		{"netdev", "[NetDev]\nName=br0\nMACAddress=52:54:00:12:34:56\n", "[NetDev]\nName=br0\n", false},
		{"network", "[Match]\nName=eth0\n", "", false},
	} {
		ed := editNetworkd(c.kind, []byte(c.in))
		if ed.remove != c.remove || string(ed.out) != c.want {
			t.Errorf("%s %q: got remove=%v %q, want remove=%v %q", c.kind, c.in, ed.remove, ed.out, c.remove, c.want)
		}
	}
}

func TestIsMAC(t *testing.T) {
	for s, want := range map[string]bool{
		"52:54:00:4f:8e:21": true, "52-54-00-4F-8E-21": true, "none": false, "52:54:00:4f:8e": false,
		"52:54:00:4f:8e:2g": false, "52::54:00:4f:8e:21": false, "random": false,
		"80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:0e:2b:21": true,
	} {
		if isMAC(s) != want {
			t.Errorf("isMAC(%q) = %v", s, !want)
		}
	}
}

func TestSelect(t *testing.T) {
	names := func(ops []Operation) []string {
		var n []string
		for _, op := range ops {
			n = append(n, op.Name)
		}
		return n
	}
	defaults, err := Select("", nil)
	if err != nil || len(defaults) != len(Defaults()) || slices.Contains(names(defaults), "firewall-rules") {
		t.Fatalf("defaults: %v %v", names(defaults), err)
	}
	for _, c := range []struct {
		enable string
		ops    []string
		want   []string
	}{
		{"", []string{"machine-id,ssh-hostkeys"}, []string{"machine-id", "ssh-hostkeys"}},
		{"", []string{"defaults,-ssh-userdir"}, nil},
		{"firewall-rules", []string{"machine-id"}, []string{"firewall-rules", "machine-id"}},
		{"", []string{"all", "-defaults"}, []string{"firewall-rules", "flag-reconfiguration", "kerberos-data"}},
		{"", []string{"machine-id", "-all"}, []string{}},
	} {
		got, err := Select(c.enable, c.ops)
		if err != nil {
			t.Errorf("%q %q: %v", c.enable, c.ops, err)
			continue
		}
		if c.want == nil {
			if len(got) != len(defaults)-1 || slices.Contains(names(got), "ssh-userdir") {
				t.Errorf("defaults,-ssh-userdir: %v", names(got))
			}
			continue
		}
		if !slices.Equal(names(got), c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("%q %q: %v, want %v", c.enable, c.ops, names(got), c.want)
		}
	}
	for _, bad := range [][]string{{"nosuch"}, {"machine-id,"}, {"-nosuch"}, {"-"}, {"script"}} {
		if _, err := Select("", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := Select("all", nil); err == nil || !strings.Contains(err.Error(), "--enable") {
		t.Errorf("--enable all: %v", err)
	}
}

func TestOperationsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, op := range Operations() {
		if seen[op.Name] || op.Description == "" || op.perform == nil {
			t.Errorf("%q: duplicate, undescribed or without a function", op.Name)
		}
		seen[op.Name] = true
		if _, ok := notDone[op.Name]; ok {
			t.Errorf("%q is both done and not done", op.Name)
		}
	}
	if !strings.HasPrefix(List(), "abrt-data * ") {
		t.Errorf("List: %.80q", List())
	}
}

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"*", ".bash_history", false}, {".*", ".bash_history", true}, {"*.log*", "syslog.log.1", true},
		{"*_host_*", "ssh_host_rsa_key", true}, {"pacct*", "pacct", true}, {"?x", ".x", false},
	} {
		if globMatch(c.pattern, c.name) != c.want {
			t.Errorf("globMatch(%q, %q) = %v", c.pattern, c.name, !c.want)
		}
	}
}
