package seed

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/qimg/qimg/internal/qemutest"
)

const (
	testKey  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTestsOnly0000000000000000000000 tester@host"
	testKey2 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQFakeKeyForTests second@host"
	testMAC  = "52:54:00:12:34:56"
)

var testUserData = []byte("#cloud-config\nhostname: web1\nruncmd:\n  - echo qimg-seed-marker > /dev/console\n")

// TestNoCloud builds NoCloud seeds as ISO 9660 and as FAT and lets
// blkid, isoinfo or fsck.fat and mtools, and cloud-init's NoCloud
// datasource read them.
func TestNoCloud(t *testing.T) {
	network := []byte("version: 2\nethernets:\n  nic0:\n    match: {name: 'e*'}\n    dhcp4: true\n")
	vendor := []byte("#cloud-config\npackage_update: false\n")
	c := Config{UserData: testUserData, NetworkConfig: network, VendorData: vendor, SSHKeys: []string{testKey, testKey2}}
	for _, vfat := range []bool{false, true} {
		img := build(t, c, Options{VFAT: vfat})
		tags := qemutest.Blkid(t, img)
		files := map[string]string{}
		if vfat {
			if tags["TYPE"] != "vfat" || tags["LABEL"] != "CIDATA" {
				t.Fatalf("blkid: %v", tags)
			}
			fsckClean(t, img)
			for _, name := range []string{"user-data", "meta-data", "network-config", "vendor-data"} {
				files[name] = run(t, "mtype", "-i", img, "::/"+name)
			}
		} else {
			if tags["TYPE"] != "iso9660" || tags["LABEL"] != "cidata" {
				t.Fatalf("blkid: %v", tags)
			}
			d := run(t, "isoinfo", "-d", "-i", img)
			for _, want := range []string{"Volume id: cidata", "Joliet with UCS level 3 found", "Rock Ridge signatures version 1 found"} {
				if !strings.Contains(d, want) {
					t.Errorf("isoinfo -d does not say %q:\n%s", want, d)
				}
			}
			for _, name := range []string{"user-data", "meta-data", "network-config", "vendor-data"} {
				files[name] = run(t, "isoinfo", "-R", "-x", "/"+name, "-i", img)
				if j := run(t, "isoinfo", "-J", "-x", "/"+name, "-i", img); j != files[name] {
					t.Errorf("%s: the Joliet tree holds %q, Rock Ridge %q", name, j, files[name])
				}
			}
		}
		if files["user-data"] != string(testUserData) || files["network-config"] != string(network) || files["vendor-data"] != string(vendor) {
			t.Errorf("vfat %v: files read back differ: %q", vfat, files)
		}
		r := cloudInitReads(t, img, false, vfat)
		if !strings.HasPrefix(r.InstanceID, "iid-") || r.Metadata["local-hostname"] != "web1" {
			t.Errorf("cloud-init read meta-data %v", r.Metadata)
		}
		if r.UserData != string(testUserData) || r.VendorData != string(vendor) {
			t.Errorf("cloud-init read user-data %q, vendor-data %q", r.UserData, r.VendorData)
		}
		if !reflect.DeepEqual(r.Keys, []string{testKey, testKey2}) {
			t.Errorf("cloud-init read keys %q", r.Keys)
		}
		if r.Network["version"] != 2.0 {
			t.Errorf("cloud-init read network config %v", r.Network)
		}
		label := "LABEL=cidata"
		if vfat {
			label = "LABEL=CIDATA"
		}
		if len(r.Found[label]) == 0 {
			t.Errorf("blkid did not find the seed by %s: %v", label, r.Found)
		}
	}
}

// TestConfigDrive builds config drives as ISO 9660 and as FAT and lets
// the tools and cloud-init's ConfigDrive datasource read them.
func TestConfigDrive(t *testing.T) {
	vendor := []byte("#cloud-config\npackage_update: false\n")
	c := Config{UserData: testUserData, VendorData: vendor, SSHKeys: []string{testKey, testKey2}, MAC: testMAC, Hostname: "db1"}
	for _, vfat := range []bool{false, true} {
		img := build(t, c, Options{ConfigDrive: true, VFAT: vfat})
		tags := qemutest.Blkid(t, img)
		want := map[bool]string{false: "iso9660", true: "vfat"}[vfat]
		if tags["TYPE"] != want || tags["LABEL"] != "config-2" {
			t.Fatalf("blkid: %v", tags)
		}
		read := func(p string) string {
			if vfat {
				return run(t, "mtype", "-i", img, "::/"+p)
			}
			return run(t, "isoinfo", "-R", "-x", "/"+p, "-i", img)
		}
		if vfat {
			fsckClean(t, img)
		} else if d := run(t, "isoinfo", "-d", "-i", img); !strings.Contains(d, "Volume id: config-2") {
			t.Errorf("isoinfo -d:\n%s", d)
		}
		var md map[string]any
		if err := json.Unmarshal([]byte(read("openstack/latest/meta_data.json")), &md); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"uuid", "hostname", "name", "public_keys", "keys", "availability_zone", "launch_index", "files", "devices"} {
			if _, ok := md[k]; !ok {
				t.Errorf("meta_data.json has no %s: %v", k, md)
			}
		}
		var old map[string]any
		json.Unmarshal([]byte(read("openstack/2012-08-10/meta_data.json")), &old)
		if _, ok := old["devices"]; ok || old["uuid"] != md["uuid"] {
			t.Errorf("2012-08-10 meta_data.json: %v", old)
		}
		var nd, ec2 map[string]any
		if err := json.Unmarshal([]byte(read("openstack/latest/network_data.json")), &nd); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(read("ec2/latest/meta-data.json")), &ec2); err != nil {
			t.Fatal(err)
		}
		if ec2["hostname"] != "db1" || !strings.HasPrefix(ec2["instance-id"].(string), "i-") {
			t.Errorf("ec2 meta-data.json: %v", ec2)
		}
		if read("openstack/latest/user_data") != string(testUserData) || read("ec2/latest/user-data") != string(testUserData) {
			t.Error("user data differs")
		}
		r := cloudInitReads(t, img, true, vfat)
		if r.InstanceID != md["uuid"] || r.Metadata["local-hostname"] != "db1" {
			t.Errorf("cloud-init read instance %q, metadata %v", r.InstanceID, r.Metadata)
		}
		if r.UserData != string(testUserData) || r.VendorData != string(vendor) {
			t.Errorf("cloud-init read user data %q, vendor data %v", r.UserData, r.VendorData)
		}
		if keys := strings.Join(r.Keys, "\n"); !strings.Contains(keys, testKey) || !strings.Contains(keys, testKey2) {
			t.Errorf("cloud-init read keys %q", r.Keys)
		}
		net, _ := json.Marshal(r.Network)
		if !strings.Contains(string(net), `"name":"ens3"`) || !strings.Contains(string(net), `"type":"dhcp4"`) || !strings.Contains(string(net), testMAC) {
			t.Errorf("cloud-init's network config: %s", net)
		}
		if len(r.Found["LABEL=config-2"]) == 0 {
			t.Errorf("blkid did not find the drive by label: %v", r.Found)
		}
	}
}
