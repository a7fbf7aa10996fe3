package sysprep

import (
	"path"
	"strings"
)

// networkOps unbind the network configuration from the MAC addresses of
// the machine the image was made on, so that a clone with new NICs comes
// up on its network, and drop the leases it held.
func networkOps() []Operation {
	return []Operation{
		{Name: "udev-persistent-net", DefaultOn: true, perform: files("/etc/udev/rules.d/70-persistent-net.rules"),
			Description: "Remove udev's persistent net rules, which name NICs by MAC address (eth0 would become eth1)"},
		{Name: "net-hwaddr", DefaultOn: true, perform: netHWAddr,
			Description: "Remove HWADDR= and MACADDR= (and SUSE's LLADDR=) from ifcfg-* files"},
		{Name: "net-hostname", DefaultOn: true, perform: netHostname,
			Description: "Remove HOSTNAME= and DHCP_HOSTNAME= from ifcfg-* files (Red Hat family)"},
		{Name: "net-nmconn", DefaultOn: true, perform: netNMConn,
			Description: "Remove MAC addresses from NetworkManager keyfiles, and cloud-init's keyfiles when cloud-init will write them again"},
		{Name: "netplan", DefaultOn: true, perform: netplan,
			Description: "Rewrite netplan interfaces matched by MAC address to match a name glob; remove cloud-init's 50-cloud-init.yaml when cloud-init will write it again"},
		{Name: "systemd-networkd", DefaultOn: true, perform: systemdNetworkd,
			Description: "Remove MACAddress= matches from systemd-networkd .link/.network/.netdev files (MAC-only .link files go)"},
		{Name: "network-interfaces", DefaultOn: true, perform: networkInterfaces,
			Description: "Remove hwaddress from /etc/network/interfaces, and cloud-init's interfaces.d/50-cloud-init when cloud-init will write it again"},
		{Name: "dhcp-client-state", DefaultOn: true, perform: globs("/var/lib/dhclient/*", "/var/lib/dhcp/*", "/var/lib/NetworkManager/*.lease"),
			Description: "Remove DHCP client leases (dhclient, NetworkManager)"},
		{Name: "dhcp-server-state", DefaultOn: true, perform: globs("/var/lib/dhcpd/*"),
			Description: "Remove DHCP server leases"},
	}
}

// ifcfgGlobs are Red Hat's and SUSE's interface configuration files.
var ifcfgGlobs = []string{"/etc/sysconfig/network-scripts/ifcfg-*", "/etc/sysconfig/network/ifcfg-*"}

// editIfcfg removes the lines setting one of keys from every ifcfg file.
func (g *guest) editIfcfg(patterns []string, keys ...string) error {
	for _, p := range patterns {
		names, err := g.glob(p)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := g.editLines(n, func(line string) bool { return setsKey(line, keys) }); err != nil {
				return err
			}
		}
	}
	return nil
}

// setsKey reports whether a shell-variable line sets one of keys.
func setsKey(line string, keys []string) bool {
	line = strings.TrimPrefix(strings.TrimSpace(line), "export ")
	for _, k := range keys {
		if strings.HasPrefix(line, k+"=") {
			return true
		}
	}
	return false
}

// netHWAddr removes HWADDR= (binds a config to a NIC) and MACADDR=
// (gives a NIC an address, which clones would share) on every
// distribution, and LLADDR= (SUSE's MACADDR) from SUSE's files.
func netHWAddr(g *guest) error {
	if err := g.editIfcfg(ifcfgGlobs[:1], "HWADDR", "MACADDR"); err != nil {
		return err
	}
	return g.editIfcfg(ifcfgGlobs[1:], "HWADDR", "MACADDR", "LLADDR")
}

func netHostname(g *guest) error {
	if !g.redHat() {
		return nil
	}
	return g.editIfcfg(ifcfgGlobs[:1], "HOSTNAME", "DHCP_HOSTNAME")
}

// editNetworkFiles visits the files patterns match: one that cloud-init
// generated (generated says so by its name) is removed when cloud-init
// will write it again on the next boot; every other one goes to edit.
func (g *guest) editNetworkFiles(patterns []string, generated func(name string) bool, edit func(name string) error) error {
	regenerated := g.cloudInitRegeneratesNetwork()
	for _, p := range patterns {
		names, err := g.glob(p)
		if err != nil {
			return err
		}
		for _, n := range names {
			if regenerated && generated(n) {
				err = g.remove(n)
			} else {
				err = edit(n)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// netNMConn edits the keyfiles in /etc/NetworkManager/system-connections.
// virt-sysprep removes them all on the Red Hat family; qimg keeps a
// profile (its static addresses, its routes) and unbinds it.
func netNMConn(g *guest) error {
	generated := func(n string) bool {
		base := path.Base(n)
		return strings.HasPrefix(base, "cloud-init-") && strings.HasSuffix(base, ".nmconnection")
	}
	return g.editNetworkFiles([]string{"/etc/NetworkManager/system-connections/*"}, generated, func(n string) error {
		data, ok, err := g.readConfig(n)
		if !ok {
			return err
		}
		if out, changes := editKeyfile(data); out != nil {
			g.logChanges(n, changes)
			return g.rewrite(n, out)
		}
		return nil
	})
}

func (g *guest) logChanges(name string, changes []string) {
	for _, c := range changes {
		g.logf("  Editing /%s: %s", name, c)
	}
}

// netplan edits /etc/netplan and /lib/netplan.
func netplan(g *guest) error {
	generated := func(n string) bool { return n == "etc/netplan/50-cloud-init.yaml" }
	return g.editNetworkFiles([]string{"/etc/netplan/*.yaml", "/lib/netplan/*.yaml"}, generated, g.editNetplanFile)
}

func (g *guest) editNetplanFile(n string) error {
	data, ok, err := g.readConfig(n)
	if !ok {
		return err
	}
	out, changes, err := editNetplan(data)
	if err != nil {
		// netplan would refuse the file too; it is the user's to fix.
		g.logf("  Warning: /%s is not valid YAML (%v); left as it is", n, err)
		return nil
	}
	if out == nil {
		return nil
	}
	g.logChanges(n, changes)
	return g.rewrite(n, out)
}

// systemdNetworkd edits /etc/systemd/network.
func systemdNetworkd(g *guest) error {
	generated := func(n string) bool {
		return strings.HasPrefix(path.Base(n), "10-cloud-init-") && path.Ext(n) == ".network"
	}
	return g.editNetworkFiles([]string{"/etc/systemd/network/*"}, generated, func(n string) error {
		kind := strings.TrimPrefix(path.Ext(n), ".")
		if kind != "link" && kind != "network" && kind != "netdev" {
			return nil
		}
		data, ok, err := g.readConfig(n)
		if !ok {
			return err
		}
		ed := editNetworkd(kind, data)
		switch {
		case ed.remove:
			return g.remove(n)
		case ed.out != nil:
			g.logChanges(n, ed.changes)
			return g.rewrite(n, ed.out)
		}
		return nil
	})
}

// networkInterfaces edits ifupdown's configuration.
func networkInterfaces(g *guest) error {
	generated := func(n string) bool {
		base := path.Base(n)
		return base == "50-cloud-init" || base == "50-cloud-init.cfg"
	}
	return g.editNetworkFiles([]string{"/etc/network/interfaces", "/etc/network/interfaces.d/*"}, generated, func(n string) error {
		return g.editLines(n, func(line string) bool {
			f := strings.Fields(line)
			return len(f) > 0 && f[0] == "hwaddress"
		})
	})
}
