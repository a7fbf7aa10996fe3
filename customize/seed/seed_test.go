package seed

import (
	"errors"
	"strings"
	"testing"

	"github.com/qimg/qimg/customize/cloudinit"
	"github.com/qimg/qimg/image"
)

func TestRefuses(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		o    Options
		want string
	}{
		{Config{UserData: []byte("#cloud-config\npakages: [x]\n")}, Options{}, "user-data:2: key 'pakages' is not a cloud-config key"},
		{Config{UserData: []byte("#cloud-config\n"), VendorData: []byte("runcmd: [ls]\n")}, Options{}, "vendor-data:1: cloud-init does not know"},
		{Config{MetaData: []byte("instance-id: a\n"), Hostname: "h"}, Options{}, "not both"},
		{Config{MetaData: []byte("local-hostname: a\n")}, Options{}, "meta-data: no instance-id"},
		{Config{MetaData: []byte(`{"hostname": "a"}`)}, Options{ConfigDrive: true}, "meta_data.json: no uuid"},
		{Config{MetaData: []byte("uuid: a\n")}, Options{ConfigDrive: true}, "meta_data.json: not a JSON object"},
		{Config{SSHKeys: []string{"not a key"}}, Options{}, "is not an OpenSSH public key"},
		{Config{NetworkConfig: []byte("version: 3\n")}, Options{}, "version is 3"},
		{Config{NetworkConfig: []byte("version: 2\n")}, Options{ConfigDrive: true}, "a config drive takes OpenStack's network_data.json"},
		{Config{MAC: "52:54:00"}, Options{ConfigDrive: true}, "not an Ethernet MAC address"},
	} {
		_, err := Files(c.cfg, c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want %q", c.cfg, err, c.want)
		}
		if err != nil && !errors.Is(err, image.ErrInvalidArgument) {
			t.Errorf("%v is not ErrInvalidArgument", err)
		}
	}
	var ce *cloudinit.Error
	if _, err := Files(Config{UserData: []byte("#cloud-config\nhostname: [a]\n")}, Options{}); !errors.As(err, &ce) || ce.Problems[0].Line != 2 {
		t.Errorf("user-data problems are not a *cloudinit.Error with lines: %v", err)
	}
}

// TestDerivedIDs: the same content gives the same instance id, other
// content another; a given id is kept.
func TestDerivedIDs(t *testing.T) {
	id := func(c Config, o Options) string {
		files, err := Files(c, o)
		if err != nil {
			t.Fatal(err)
		}
		return string(files[0].Data)
	}
	a := Config{UserData: []byte("#cloud-config\nhostname: a\n")}
	b := Config{UserData: []byte("#cloud-config\nhostname: b\n")}
	if id(a, Options{}) != id(a, Options{}) || id(a, Options{}) == id(b, Options{}) {
		t.Error("NoCloud ids are not derived from the content")
	}
	if !strings.Contains(id(a, Options{}), "local-hostname: a\n") {
		t.Errorf("the user-data hostname is not the local-hostname: %s", id(a, Options{}))
	}
	if got := id(Config{InstanceID: "iid-mine"}, Options{}); got != "instance-id: iid-mine\n" {
		t.Errorf("meta-data %q", got)
	}
	if id(a, Options{ConfigDrive: true}) == id(b, Options{ConfigDrive: true}) {
		t.Error("config drive uuids are not derived from the content")
	}
}

// TestNoNetworkData: without network configuration or a MAC, a config
// drive has no network_data.json, so cloud-init falls back to DHCP on
// the first NIC.
func TestNoNetworkData(t *testing.T) {
	files, err := Files(Config{}, Options{ConfigDrive: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f.Path, "network_data.json") || strings.HasSuffix(f.Path, "user_data") {
			t.Errorf("%s written", f.Path)
		}
	}
	if len(files) != 11+8+7+2 { // meta_data.json, vendor_data.json, vendor_data2.json, ec2 meta-data.json
		t.Errorf("%d files", len(files))
	}
}
