package sysprep

import "bytes"

// rhelOps are for the Red Hat family.
func rhelOps() []Operation {
	return []Operation{
		{Name: "nozeroconf", DefaultOn: true, perform: noZeroconf,
			Description: "Add NOZEROCONF=yes to /etc/sysconfig/network (Red Hat family): no 169.254.0.0/16 route to hide the metadata service"},
		{Name: "rh-subscription-manager", DefaultOn: true, perform: rhelOnly(globs("/etc/pki/consumer/*", "/etc/pki/entitlement/*")),
			Description: "Remove the Red Hat subscription manager's certificates (RHEL)"},
		{Name: "rhn-systemid", DefaultOn: true, perform: rhelOnly(files("/etc/sysconfig/rhn/systemid", "/etc/sysconfig/rhn/osad-auth.conf")),
			Description: "Remove the RHN system ID (RHEL)"},
		{Name: "selinux-relabel", DefaultOn: true, last: true, perform: selinuxRelabel,
			Description: "Create /.autorelabel when files were created on an SELinux guest (edited files keep their labels)"},
	}
}

func rhelOnly(op func(*guest) error) func(*guest) error {
	return func(g *guest) error {
		if g.os.Distro != "rhel" {
			return nil
		}
		return op(g)
	}
}

// noZeroconf sets NOZEROCONF on the Red Hat family. The network scripts
// test only that it is not empty, so any value already there stays.
func noZeroconf(g *guest) error {
	const name = "etc/sysconfig/network"
	if !g.redHat() || !g.isDir("etc/sysconfig") {
		return nil
	}
	data, ok, err := g.readConfig(name)
	if err != nil {
		return err
	}
	if !ok {
		if exists, err := g.exists(name); exists || err != nil {
			return err // not a regular file: left alone
		}
		return g.create(name, []byte("NOZEROCONF=yes\n"), 0o644)
	}
	var out []byte
	set := false
	for _, line := range splitLines(data) {
		v, found := bytes.CutPrefix(bytes.TrimSpace(line), []byte("NOZEROCONF="))
		if !found {
			out = append(out, line...)
			continue
		}
		if len(bytes.Trim(bytes.TrimSpace(v), `"'`)) > 0 {
			return nil
		}
		if !set {
			out = append(out, "NOZEROCONF=yes"...)
			out = append(out, line[len(trimEOL(line)):]...)
			set = true
		}
	}
	if !set {
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		out = append(out, "NOZEROCONF=yes\n"...)
	}
	g.logf("  Editing /%s: setting NOZEROCONF=yes", name)
	return g.rewrite(name, out)
}
