package sysprep

import (
	"bytes"

	"go.yaml.in/yaml/v3"
)

// cloudOps reset cloud-init, so that it runs again at the next boot.
func cloudOps() []Operation {
	return []Operation{
		{Name: "cloud-init", DefaultOn: true, perform: cloudInit,
			Description: "Remove cloud-init's per-instance state and logs (as cloud-init clean --logs), so it runs again at the next boot"},
	}
}

// cloudInit removes what cloud-init clean --logs removes from
// /var/lib/cloud, except scripts/ (scripts an image builder put there
// for every boot or instance) and seed/ (a NoCloud seed in the image).
func cloudInit(g *guest) error {
	names, err := g.glob("/var/lib/cloud/*")
	if err != nil {
		return err
	}
	for _, n := range names {
		if n == "var/lib/cloud/seed" || n == "var/lib/cloud/scripts" {
			continue
		}
		if err := g.remove(n); err != nil {
			return err
		}
	}
	return g.removeFiles("/var/log/cloud-init*.log")
}

// cloudInitInstalled reports whether the guest has cloud-init.
func (g *guest) cloudInitInstalled() bool {
	ok, _ := g.exists("usr/bin/cloud-init")
	return ok
}

// cloudInitRegeneratesNetwork reports whether cloud-init will write the
// guest's network configuration at its next boot: it is installed, not
// disabled (/etc/cloud/cloud-init.disabled) and its network
// configuration is not turned off ("network: {config: disabled}" in
// cloud.cfg or cloud.cfg.d). Only then are the files cloud-init wrote
// removed rather than edited.
func (g *guest) cloudInitRegeneratesNetwork() bool {
	if !g.cloudInitInstalled() {
		return false
	}
	if ok, _ := g.exists("etc/cloud/cloud-init.disabled"); ok {
		return false
	}
	cfgs, _ := g.glob("/etc/cloud/cloud.cfg.d/*.cfg")
	for _, c := range append([]string{"etc/cloud/cloud.cfg"}, cfgs...) {
		if data, ok, _ := g.readConfig(c); ok && networkConfigDisabled(data) {
			return false
		}
	}
	return true
}

// networkConfigDisabled reads network.config of a cloud-init config.
func networkConfigDisabled(data []byte) bool {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil || len(doc.Content) != 1 {
		return false
	}
	v := mapValue(mapValue(doc.Content[0], "network"), "config")
	return v != nil && v.Kind == yaml.ScalarNode && v.Value == "disabled"
}
