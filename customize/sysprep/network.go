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

// netNMConn edits the keyfiles in /etc/NetworkManager/system-connections.
// virt-sysprep removes them all on the Red Hat family; qimg keeps a
// profile (its static addresses, its routes) and unbinds it.
func netNMConn(g *guest) error {
	names, err := g.glob("/etc/NetworkManager/system-connections/*")
	if err != nil {
		return err
	}
	regenerated := g.cloudInitRegeneratesNetwork()
	for _, n := range names {
		base := path.Base(n)
		if regenerated && strings.HasPrefix(base, "cloud-init-") && strings.HasSuffix(base, ".nmconnection") {
			if err := g.remove(n); err != nil {
				return err
			}
			continue
		}
		data, ok, err := g.readConfig(n)
		if !ok {
			if err != nil {
				return err
			}
			continue
		}
		if out, changes := editKeyfile(data); out != nil {
			g.logChanges(n, changes)
			if err := g.rewrite(n, out); err != nil {
				return err
			}
		}
	}
	return nil
}

func (g *guest) logChanges(name string, changes []string) {
	for _, c := range changes {
		g.logf("  Editing /%s: %s", name, c)
	}
}

// netplan edits /etc/netplan and /lib/netplan.
func netplan(g *guest) error {
	regenerated := g.cloudInitRegeneratesNetwork()
	for _, p := range []string{"/etc/netplan/*.yaml", "/lib/netplan/*.yaml"} {
		names, err := g.glob(p)
		if err != nil {
			return err
		}
		for _, n := range names {
			if regenerated && n == "etc/netplan/50-cloud-init.yaml" {
				if err := g.remove(n); err != nil {
					return err
				}
				continue
			}
			if err := g.editNetplanFile(n); err != nil {
				return err
			}
		}
	}
	return nil
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
	names, err := g.glob("/etc/systemd/network/*")
	if err != nil {
		return err
	}
	regenerated := g.cloudInitRegeneratesNetwork()
	for _, n := range names {
		base := path.Base(n)
		kind := strings.TrimPrefix(path.Ext(base), ".")
		if kind != "link" && kind != "network" && kind != "netdev" {
			continue
		}
		if regenerated && strings.HasPrefix(base, "10-cloud-init-") && kind == "network" {
			if err := g.remove(n); err != nil {
				return err
			}
			continue
		}
		data, ok, err := g.readConfig(n)
		if !ok {
			if err != nil {
				return err
			}
			continue
		}
		ed := editNetworkd(kind, data)
		switch {
		case ed.remove:
			err = g.remove(n)
		case ed.out != nil:
			g.logChanges(n, ed.changes)
			err = g.rewrite(n, ed.out)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// networkInterfaces edits ifupdown's configuration.
func networkInterfaces(g *guest) error {
	regenerated := g.cloudInitRegeneratesNetwork()
	names, err := g.glob("/etc/network/interfaces.d/*")
	if err != nil {
		return err
	}
	names = append([]string{"etc/network/interfaces"}, names...)
	for _, n := range names {
		base := path.Base(n)
		if regenerated && (base == "50-cloud-init" || base == "50-cloud-init.cfg") {
			if err := g.remove(n); err != nil {
				return err
			}
			continue
		}
		err := g.editLines(n, func(line string) bool {
			f := strings.Fields(line)
			return len(f) > 0 && f[0] == "hwaddress"
		})
		if err != nil {
			return err
		}
	}
	return nil
}
