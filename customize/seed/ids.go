package seed

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// digest hashes what the instance is told, for derived ids: the same
// seed content gives the same instance.
func digest(c Config, kind string) [32]byte {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(kind), c.UserData, c.VendorData, c.NetworkConfig, []byte(c.Hostname), []byte(c.MAC)} {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	for _, k := range c.SSHKeys {
		fmt.Fprintf(h, "%d:%s", len(k), k)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// noCloudID is a derived NoCloud instance id: "iid-" and 16 hex digits.
func noCloudID(c Config) string {
	sum := digest(c, "nocloud")
	return "iid-" + hex.EncodeToString(sum[:8])
}

// uuidOf formats a digest as a UUID (RFC 9562 version 8: custom).
func uuidOf(sum [32]byte) string {
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// userDataHostname is the top-level hostname of #cloud-config user-data,
// if it has one.
func userDataHostname(data []byte) string {
	var top struct {
		Hostname any `yaml:"hostname"`
	}
	if yaml.Unmarshal(data, &top) != nil {
		return ""
	}
	if s, ok := top.Hostname.(string); ok {
		return s
	}
	return ""
}

func digestString(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func itoa(i int) string { return fmt.Sprint(i) }
