package seed

import (
	"encoding/hex"
	"encoding/json"
	"net"

	"github.com/qimg/qimg/image"
)

// The OpenStack metadata versions Nova writes to a config drive (its
// nova/api/metadata/base.py), oldest first; "latest" follows them.
var openstackVersions = []string{
	"2012-08-10", // Folsom
	"2013-04-04", // Grizzly
	"2013-10-17", // Havana: vendor_data.json
	"2015-10-15", // Liberty: network_data.json
	"2016-06-30", // Newton: devices in meta_data.json
	"2016-10-06", // Newton: vendor_data2.json
	"2017-02-22", // Ocata
	"2018-08-27", // Rocky
	"2020-10-14", // Victoria: dedicated_cpus in meta_data.json
	"2025-04-04", // Epoxy
}

// The EC2 versions Nova writes (it skips the ones before 2009-04-04).
var ec2Versions = []string{"2009-04-04", "latest"}

// since says whether version (or "latest") is first or later.
func since(version, first string) bool { return version == "latest" || version >= first }

// configDriveFiles lays out an OpenStack config drive as Nova does:
// openstack/VERSION/{meta_data.json, user_data, vendor_data.json,
// network_data.json, vendor_data2.json} for every version and
// ec2/VERSION/{meta-data.json, user-data}.
func configDriveFiles(c Config) ([]File, error) {
	meta, err := configDriveMeta(c)
	if err != nil {
		return nil, err
	}
	network, err := networkData(c)
	if err != nil {
		return nil, err
	}
	vendor, err := vendorData(c.VendorData)
	if err != nil {
		return nil, err
	}
	var files []File
	for _, v := range append(openstackVersions, "latest") {
		dir := "openstack/" + v + "/"
		md, err := json.Marshal(meta.forVersion(v))
		if err != nil {
			return nil, err
		}
		files = append(files, File{dir + "meta_data.json", md})
		if c.UserData != nil {
			files = append(files, File{dir + "user_data", c.UserData})
		}
		if since(v, "2013-10-17") {
			files = append(files, File{dir + "vendor_data.json", vendor})
		}
		if since(v, "2015-10-15") && network != nil {
			files = append(files, File{dir + "network_data.json", network})
		}
		if since(v, "2016-10-06") {
			files = append(files, File{dir + "vendor_data2.json", []byte("{}")})
		}
	}
	ec2, err := json.Marshal(ec2Meta(meta))
	if err != nil {
		return nil, err
	}
	for _, v := range ec2Versions {
		if c.UserData != nil {
			files = append(files, File{"ec2/" + v + "/user-data", c.UserData})
		}
		files = append(files, File{"ec2/" + v + "/meta-data.json", ec2})
	}
	return files, nil
}

// osMeta is meta_data.json: the fields Nova writes that a seed can know,
// plus any the caller's own meta_data.json has.
type osMeta struct {
	fields map[string]any
}

func configDriveMeta(c Config) (*osMeta, error) {
	if c.MetaData != nil {
		var m map[string]any
		if err := json.Unmarshal(c.MetaData, &m); err != nil || m == nil {
			return nil, image.Errorf(image.ErrInvalidArgument, "meta_data.json: not a JSON object (%v)", err)
		}
		if id, ok := m["uuid"].(string); !ok || id == "" {
			return nil, image.Errorf(image.ErrInvalidArgument, "meta_data.json: no uuid (a string); cloud-init refuses a config drive without one")
		}
		return &osMeta{m}, nil
	}
	m := map[string]any{
		"uuid":              c.InstanceID,
		"launch_index":      0,
		"availability_zone": "nova",
		"files":             []any{},
		"meta":              map[string]any{},
	}
	if c.InstanceID == "" {
		m["uuid"] = uuidOf(digest(c, "config-drive"))
	}
	if c.Hostname != "" {
		m["hostname"] = c.Hostname
		m["name"] = c.Hostname
	}
	if len(c.SSHKeys) > 0 {
		public := map[string]any{}
		var keys []any
		for i, k := range c.SSHKeys {
			name := "key-" + itoa(i)
			public[name] = k
			keys = append(keys, map[string]any{"name": name, "type": "ssh", "data": k})
		}
		m["public_keys"] = public
		m["keys"] = keys
	}
	return &osMeta{m}, nil
}

// forVersion is meta_data.json as Nova writes it for version v: devices
// from 2016-06-30, dedicated_cpus from 2020-10-14.
func (m *osMeta) forVersion(v string) map[string]any {
	out := make(map[string]any, len(m.fields)+2)
	for k, x := range m.fields {
		out[k] = x
	}
	if _, ok := out["devices"]; !ok && since(v, "2016-06-30") {
		out["devices"] = []any{}
	}
	if _, ok := out["dedicated_cpus"]; !ok && since(v, "2020-10-14") {
		out["dedicated_cpus"] = []any{}
	}
	if !since(v, "2016-06-30") {
		delete(out, "devices")
	}
	if !since(v, "2020-10-14") {
		delete(out, "dedicated_cpus")
	}
	return out
}

// ec2Meta is ec2/VERSION/meta-data.json: the EC2 names of what
// meta_data.json holds (Nova's get_ec2_metadata, less what a seed
// cannot know: addresses, AMI ids, flavor).
func ec2Meta(m *osMeta) map[string]any {
	uuid, _ := m.fields["uuid"].(string)
	sum := digestString(uuid)
	out := map[string]any{
		"ami-launch-index": 0,
		"instance-id":      "i-" + hex.EncodeToString(sum[:4]),
		"reservation-id":   "r-" + hex.EncodeToString(sum[4:8]),
		"security-groups":  []any{},
		"instance-action":  "none",
	}
	if az, ok := m.fields["availability_zone"]; ok {
		out["placement"] = map[string]any{"availability-zone": az}
	}
	if h, ok := m.fields["hostname"]; ok {
		out["hostname"], out["local-hostname"], out["public-hostname"] = h, h, h
	}
	// EC2 metadata has one key, the first.
	if keys, ok := m.fields["public_keys"].(map[string]any); ok && len(keys) > 0 {
		first := ""
		for name := range keys {
			if first == "" || name < first {
				first = name
			}
		}
		out["public-keys"] = map[string]any{"0": map[string]any{"openssh-key": keys[first]}}
	}
	return out
}

// networkData is network_data.json: the given one (checked), DHCP on the
// NIC with c.MAC, or nil for none.
func networkData(c Config) ([]byte, error) {
	if c.NetworkConfig != nil {
		var m map[string]any
		if err := json.Unmarshal(c.NetworkConfig, &m); err != nil || m == nil {
			return nil, image.Errorf(image.ErrInvalidArgument, "network_data.json: a config drive takes OpenStack's network_data.json, a JSON object with links, networks and services (NoCloud's network-config YAML is not read from it): %v", err)
		}
		if _, ok := m["links"].([]any); !ok {
			return nil, image.Errorf(image.ErrInvalidArgument, "network_data.json: no links list")
		}
		return c.NetworkConfig, nil
	}
	if c.MAC == "" {
		return nil, nil
	}
	hw, err := net.ParseMAC(c.MAC)
	if err != nil || len(hw) != 6 {
		return nil, image.Errorf(image.ErrInvalidArgument, "seed: %q is not an Ethernet MAC address", c.MAC)
	}
	return json.Marshal(map[string]any{
		"links": []any{map[string]any{
			"id": "tap0", "vif_id": "tap0", "type": "phy", "mtu": nil,
			"ethernet_mac_address": hw.String(),
		}},
		"networks": []any{map[string]any{
			"id": "network0", "type": "ipv4_dhcp", "link": "tap0", "network_id": "network0",
		}},
		"services": []any{},
	})
}

// vendorData is vendor_data.json: the given vendor-data as JSON if it
// is, else wrapped as Nova's vendordata drivers wrap text for cloud-init
// ({"cloud-init": "..."}); {} without any.
func vendorData(data []byte) ([]byte, error) {
	if data == nil {
		return []byte("{}"), nil
	}
	if json.Valid(data) {
		return data, nil
	}
	return json.Marshal(map[string]string{"cloud-init": string(data)})
}
