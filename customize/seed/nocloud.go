package seed

import (
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/qimg/qimg/image"
)

// noCloudFiles are the files of a NoCloud seed: user-data and meta-data
// (cloud-init requires both), network-config and vendor-data when given.
func noCloudFiles(c Config) ([]File, error) {
	meta := c.MetaData
	if meta == nil {
		var err error
		if meta, err = noCloudMetaData(c); err != nil {
			return nil, err
		}
	} else if err := checkNoCloudMetaData(meta); err != nil {
		return nil, err
	}
	files := []File{{"meta-data", meta}, {"user-data", c.UserData}}
	if c.NetworkConfig != nil {
		if err := checkNetworkConfig(c.NetworkConfig); err != nil {
			return nil, err
		}
		files = append(files, File{"network-config", c.NetworkConfig})
	}
	if c.VendorData != nil {
		files = append(files, File{"vendor-data", c.VendorData})
	}
	return files, nil
}

// noCloudMeta is generated meta-data, as cloud-init's NoCloud reads it.
type noCloudMeta struct {
	InstanceID    string   `yaml:"instance-id"`
	LocalHostname string   `yaml:"local-hostname,omitempty"`
	PublicKeys    []string `yaml:"public-keys,omitempty"`
}

func noCloudMetaData(c Config) ([]byte, error) {
	m := noCloudMeta{InstanceID: c.InstanceID, LocalHostname: c.Hostname, PublicKeys: c.SSHKeys}
	if m.InstanceID == "" {
		m.InstanceID = noCloudID(c)
	}
	return yaml.Marshal(m)
}

// checkNoCloudMetaData accepts a YAML (or JSON) mapping.
func checkNoCloudMetaData(data []byte) error {
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		return image.Errorf(image.ErrInvalidArgument, "meta-data: not a YAML mapping: %v", err)
	}
	if m == nil {
		return image.Errorf(image.ErrInvalidArgument, "meta-data: empty (it needs at least instance-id)")
	}
	if id, ok := m["instance-id"].(string); !ok || id == "" {
		return image.Errorf(image.ErrInvalidArgument, "meta-data: no instance-id (a string): cloud-init would call every such instance 'nocloud'")
	}
	return nil
}

// checkNetworkConfig accepts cloud-init network configuration version 1
// or 2, bare or under a top-level "network" key.
func checkNetworkConfig(data []byte) error {
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil || m == nil {
		return image.Errorf(image.ErrInvalidArgument, "network-config: not a YAML mapping (%v)", err)
	}
	if inner, ok := m["network"].(map[string]any); ok {
		m = inner
	}
	switch v := m["version"].(type) {
	case int:
		if v == 1 || v == 2 {
			return nil
		}
	}
	return image.Errorf(image.ErrInvalidArgument, "network-config: %s", fmt.Sprintf("version is %v; cloud-init reads network configuration version 1 or 2", m["version"]))
}
