package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/customize/cloudinit"
	"github.com/qimg/qimg/customize/seed"
	"github.com/qimg/qimg/internal/atomicfile"
)

// seedOptions are the flags of qimg seed.
type seedOptions struct {
	output                              string
	userData, metaData, network, vendor string
	hostname, instanceID, mac           string
	sshKeys                             []string
	vfat, configDrive, quiet            bool
}

func newSeedCmd(e *env) *cobra.Command {
	var o seedOptions
	cmd := &cobra.Command{
		Use:   "seed -o SEED [--user-data FILE] [--meta-data FILE] [--network-config FILE] [--vendor-data FILE] [--hostname NAME] [--instance-id ID] [--ssh-key FILE]... [--vfat] [--config-drive [--mac MAC]]",
		Short: "Build a cloud-init NoCloud seed or an OpenStack config drive",
		Long: `Build the disk cloud-init (and cloudbase-init) reads an instance's
configuration from when there is no metadata service: a NoCloud seed, an
ISO 9660 image labelled cidata (or, with --vfat, a FAT image labelled
CIDATA), or with --config-drive an OpenStack config drive labelled
config-2, laid out as Nova writes it (openstack/<version>/meta_data.json,
user_data, vendor_data.json, network_data.json, and the ec2 copies).

User-data and vendor-data are checked first, as cloud-init reads them:
#cloud-config must be YAML with known keys of the documented types, and
every problem is printed with its line; nothing is written then, and the
exit code is 1. Meta-data is generated when not given: an instance id
derived from the seed's content (so the same seed is the same instance)
unless --instance-id says one, the host name (--hostname, or the
user-data's hostname) and the --ssh-key keys. A config drive takes
network_data.json (OpenStack's JSON) as --network-config; without one,
--mac writes DHCP on that NIC, and with neither cloud-init uses DHCP on
the first NIC. The image is written to a temporary file and renamed
over SEED when complete.`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(e)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "the seed image to write")
	f.StringVar(&o.userData, "user-data", "", "the user-data (#cloud-config, a script, MIME multipart...)")
	f.StringVar(&o.metaData, "meta-data", "", "meta-data to use instead of the generated one (YAML; meta_data.json with --config-drive)")
	f.StringVar(&o.network, "network-config", "", "network configuration (version 1 or 2 YAML; network_data.json with --config-drive)")
	f.StringVar(&o.vendor, "vendor-data", "", "vendor-data")
	f.StringVar(&o.hostname, "hostname", "", "the instance's host name")
	f.StringVar(&o.instanceID, "instance-id", "", "the instance id (derived from the content if omitted)")
	f.StringArrayVar(&o.sshKeys, "ssh-key", nil, "a file of OpenSSH public keys for the default user (repeatable)")
	f.BoolVar(&o.vfat, "vfat", false, "make a FAT file system instead of ISO 9660")
	f.BoolVar(&o.configDrive, "config-drive", false, "make an OpenStack config drive (config-2) instead of a NoCloud seed")
	f.StringVar(&o.mac, "mac", "", "with --config-drive: the MAC of the NIC the generated network_data.json sets up with DHCP")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print nothing but errors")
	return cmd
}

// readOptional reads a file named by a flag; nil when the flag is empty.
func readOptional(flag, path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fail("--%s: %s: %s", flag, path, reason(path, err))
	}
	return data, nil
}

func (o *seedOptions) config() (seed.Config, error) {
	var c seed.Config
	var err error
	for _, in := range []struct {
		flag, path string
		dst        *[]byte
	}{
		{"user-data", o.userData, &c.UserData},
		{"meta-data", o.metaData, &c.MetaData},
		{"network-config", o.network, &c.NetworkConfig},
		{"vendor-data", o.vendor, &c.VendorData},
	} {
		if *in.dst, err = readOptional(in.flag, in.path); err != nil {
			return c, err
		}
	}
	for _, p := range o.sshKeys {
		data, err := readOptional("ssh-key", p)
		if err != nil {
			return c, err
		}
		keys := seed.SSHKeys(data)
		if len(keys) == 0 {
			return c, fail("--ssh-key: %s holds no key", p)
		}
		c.SSHKeys = append(c.SSHKeys, keys...)
	}
	c.Hostname, c.InstanceID, c.MAC = o.hostname, o.instanceID, o.mac
	return c, nil
}

// check validates user-data and vendor-data under their own file names,
// so every problem points at the file and line, and prints the notes.
func (o *seedOptions) check(e *env, c seed.Config) error {
	for _, in := range []struct {
		path string
		data []byte
	}{{o.userData, c.UserData}, {o.vendor, c.VendorData}} {
		if in.data == nil || o.configDrive && in.path == o.vendor && jsonObject(in.data) {
			continue
		}
		r, err := cloudinit.Parse(in.data, in.path)
		if err != nil {
			return fail("%s", err)
		}
		if !o.quiet {
			for _, n := range r.Notes {
				if n.Line > 0 {
					fmt.Fprintf(e.stderr, "qimg: %s:%d: note: %s\n", in.path, n.Line, n.Message)
				} else {
					fmt.Fprintf(e.stderr, "qimg: %s: note: %s\n", in.path, n.Message)
				}
			}
		}
	}
	return nil
}

func (o *seedOptions) run(e *env) error {
	if o.output == "" {
		return usageError("Expecting an output file: -o SEED")
	}
	if o.mac != "" && !o.configDrive {
		return usageError("--mac applies to --config-drive only (NoCloud takes --network-config)")
	}
	c, err := o.config()
	if err != nil {
		return err
	}
	if err := o.check(e, c); err != nil {
		return err
	}
	opts := seed.Options{ConfigDrive: o.configDrive, VFAT: o.vfat}
	if _, err := seed.Files(c, opts); err != nil {
		return fail("%s", err)
	}
	err = atomicfile.Write(o.output, true, func(f *os.File) error {
		return seed.Build(e.ctx, f, c, opts)
	})
	if err != nil {
		return fail("%s: %s", o.output, reason(o.output, err))
	}
	if !o.quiet {
		kind := map[bool]string{false: "NoCloud seed (cidata)", true: "config drive (config-2)"}[o.configDrive]
		fs := map[bool]string{false: "ISO 9660", true: "FAT"}[o.vfat]
		fmt.Fprintf(e.stdout, "Wrote %s: %s, %s\n", o.output, kind, fs)
	}
	return nil
}

// jsonObject says whether data is a JSON object (a config drive's
// vendor_data.json rather than vendor-data text).
func jsonObject(data []byte) bool {
	var m map[string]any
	return json.Unmarshal(data, &m) == nil && m != nil
}
