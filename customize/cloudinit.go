package customize

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/qimg/qimg/customize/cloudinit"
)

// cloudCfgDir is where cloud-init reads drop-ins, after cloud.cfg.
const cloudCfgDir = "etc/cloud/cloud.cfg.d"

// datasources are the names cloud-init's datasource_list takes.
var datasources = map[string]bool{
	"NoCloud": true, "ConfigDrive": true, "OpenStack": true, "Ec2": true, "Azure": true,
	"GCE": true, "OpenNebula": true, "CloudStack": true, "AltCloud": true, "MAAS": true,
	"OVF": true, "SmartOS": true, "Oracle": true, "Exoscale": true, "Hetzner": true,
	"IBMCloud": true, "RbxCloud": true, "UpCloud": true, "VMware": true, "Vultr": true,
	"LXD": true, "NWCS": true, "Akamai": true, "WSL": true, "Scaleway": true,
	"DigitalOcean": true, "AliYun": true, "Bigstep": true, "None": true,
}

// setDatasources writes a drop-in making cloud-init look for its
// metadata in the named sources only (OpenStack's 169.254.169.254, a
// config drive, a NoCloud seed, ...), in that order.
func (g *Guest) setDatasources(list string) error {
	var names []string
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if !datasources[n] {
			return fmt.Errorf("%q is not a cloud-init datasource (OpenStack, ConfigDrive, NoCloud, Ec2, None, ...)", n)
		}
		names = append(names, n)
	}
	g.needCloudInit = true
	return g.dropIn("90-qimg-datasources.cfg", fmt.Sprintf("datasource_list: [ %s ]\n", strings.Join(names, ", ")))
}

// setGrowpart turns cloud-init's growpart (and the root filesystem's
// resize) on or off for the first boot on a bigger disk.
func (g *Guest) setGrowpart(v string) error {
	var cfg string
	switch v {
	case "on":
		cfg = "growpart:\n  mode: auto\n  devices: ['/']\nresize_rootfs: true\n"
	case "off":
		cfg = "growpart:\n  mode: 'off'\nresize_rootfs: false\n"
	default:
		return fmt.Errorf("--growpart takes on or off, not %q", v)
	}
	g.needCloudInit = true
	return g.dropIn("91-qimg-growpart.cfg", cfg)
}

// dropIn writes a cloud.cfg.d file (root 0644).
func (g *Guest) dropIn(name, content string) error {
	if err := g.mkdirAll(cloudCfgDir); err != nil {
		return err
	}
	return g.writeKeepingMode(cloudCfgDir+"/"+name, "# Written by qimg.\n"+content)
}

// hasCloudInit reports whether the guest has cloud-init installed.
func (g *Guest) hasCloudInit() bool {
	for _, p := range []string{"usr/bin/cloud-init", "usr/local/bin/cloud-init", "etc/cloud/cloud.cfg"} {
		if _, err := g.FS.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// installCloudConfig checks a local file as cloud-init would read a
// cloud.cfg.d drop-in (unknown keys and wrong types are errors, with
// their lines) and installs it under its own name (.cfg added).
func (g *Guest) installCloudConfig(local string) error {
	data, err := os.ReadFile(local)
	if err != nil {
		return err
	}
	if _, err := cloudinit.ParseConfig(data, local); err != nil {
		return err
	}
	base := strings.TrimSuffix(filepath.Base(local), ".cfg")
	base = strings.Trim(unsafeName.ReplaceAllString(base, "-"), "-")
	g.needCloudInit = true
	if err := g.mkdirAll(cloudCfgDir); err != nil {
		return err
	}
	return g.writeKeepingMode(cloudCfgDir+"/95-qimg-"+base+".cfg", string(data))
}
