package seed

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/qimg/qimg/customize/cloudinit"
	"github.com/qimg/qimg/guestfs/fat"
	"github.com/qimg/qimg/guestfs/iso9660"
	"github.com/qimg/qimg/image"
)

// Config is what a seed tells the instance. Every field is optional.
type Config struct {
	// UserData is given to the instance as is, after it is checked
	// (cloudinit.Parse); empty user-data is written empty.
	UserData []byte
	// MetaData replaces the generated meta-data: YAML for NoCloud, the
	// meta_data.json object for a config drive. It cannot be combined
	// with InstanceID, Hostname or SSHKeys.
	MetaData []byte
	// NetworkConfig is NoCloud's network-config (YAML, version 1 or 2)
	// or a config drive's network_data.json (JSON: links, networks,
	// services).
	NetworkConfig []byte
	// VendorData is vendor-data, in the same forms as user-data.
	VendorData []byte
	// InstanceID names the instance; a new one makes cloud-init run its
	// per-instance modules again. Without it the id is derived from the
	// rest of the seed, so the same seed gives the same instance.
	InstanceID string
	// Hostname is the instance's host name (local-hostname, hostname).
	// Without it, a top-level hostname in the user-data is used, if any.
	Hostname string
	// SSHKeys are OpenSSH public keys for the default user.
	SSHKeys []string
	// MAC is the address of the NIC a config drive's generated
	// network_data.json configures with DHCP; without it, and without
	// NetworkConfig, no network_data.json is written and cloud-init
	// falls back to DHCP on the first NIC.
	MAC string
	// Time stamps the files; zero means now.
	Time time.Time
}

// Options choose the seed's layout and file system.
type Options struct {
	// ConfigDrive makes an OpenStack config drive (label config-2)
	// instead of a NoCloud seed (label cidata).
	ConfigDrive bool
	// VFAT makes a FAT file system instead of ISO 9660.
	VFAT bool
}

// File is one file of a seed.
type File struct {
	Path string // relative to the root, slash-separated
	Data []byte
}

// Device is where Build writes: a new, empty file.
type Device interface {
	io.ReaderAt
	io.WriterAt
	Truncate(size int64) error
}

var _ Device = (*os.File)(nil)

// Labels cloud-init looks for.
const (
	LabelNoCloud     = "cidata"
	LabelNoCloudFAT  = "CIDATA" // as mkfs.vfat -n CIDATA, the usual spelling on FAT
	LabelConfigDrive = "config-2"
)

// Sizes of FAT seeds: a config drive is 64 MiB as Nova makes it; a
// NoCloud seed is its content and 1 MiB of room, at least 2 MiB.
const (
	configDriveFATSize = 64 << 20
	minNoCloudFATSize  = 2 << 20
)

// Files returns the files of the seed c describes, after checking them.
func Files(c Config, o Options) ([]File, error) {
	if err := checkUserData(c, o); err != nil {
		return nil, err
	}
	if c.MetaData != nil && (c.InstanceID != "" || c.Hostname != "" || len(c.SSHKeys) > 0) {
		return nil, image.Errorf(image.ErrInvalidArgument, "seed: give the instance id, host name and ssh keys in the meta-data or as options, not both")
	}
	for _, k := range c.SSHKeys {
		if err := checkSSHKey(k); err != nil {
			return nil, err
		}
	}
	if c.Hostname == "" {
		c.Hostname = userDataHostname(c.UserData)
	}
	if o.ConfigDrive {
		return configDriveFiles(c)
	}
	return noCloudFiles(c)
}

// Build writes the seed c describes to dev, an empty file.
func Build(ctx context.Context, dev Device, c Config, o Options) error {
	files, err := Files(c, o)
	if err != nil {
		return err
	}
	label := LabelNoCloud
	switch {
	case o.ConfigDrive:
		label = LabelConfigDrive
	case o.VFAT:
		label = LabelNoCloudFAT
	}
	if o.VFAT {
		return writeFAT(ctx, dev, label, files, fatSize(files, o.ConfigDrive))
	}
	return writeISO(io.NewOffsetWriter(dev, 0), label, files, c.Time)
}

// checkUserData checks user-data and vendor-data as cloud-init reads
// them (a config drive's vendor data may also be vendor_data.json).
func checkUserData(c Config, o Options) error {
	if _, err := cloudinit.Parse(c.UserData, "user-data"); err != nil {
		return err
	}
	if c.VendorData != nil && !(o.ConfigDrive && json.Valid(c.VendorData)) {
		if _, err := cloudinit.Parse(c.VendorData, "vendor-data"); err != nil {
			return err
		}
	}
	return nil
}

// checkSSHKey accepts one OpenSSH public key line.
func checkSSHKey(k string) error {
	fields := strings.Fields(k)
	ok := len(fields) >= 2 && !strings.ContainsAny(k, "\r\n") &&
		(strings.HasPrefix(fields[0], "ssh-") || strings.HasPrefix(fields[0], "ecdsa-sha2-") || strings.HasPrefix(fields[0], "sk-"))
	if !ok {
		return image.Errorf(image.ErrInvalidArgument, "seed: %q is not an OpenSSH public key (TYPE BASE64 [COMMENT] on one line)", short(k))
	}
	return nil
}

// SSHKeys splits an authorized_keys file into keys, without blank lines
// and comments.
func SSHKeys(data []byte) []string {
	var keys []string
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			keys = append(keys, l)
		}
	}
	return keys
}

func short(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

func fatSize(files []File, configDrive bool) int64 {
	if configDrive {
		return configDriveFATSize
	}
	var n int64
	for _, f := range files {
		n += int64(len(f.Data)) + 4096
	}
	size := (n + 1<<20 + 1<<20 - 1) &^ (1<<20 - 1)
	return max(size, minNoCloudFATSize)
}

// writeISO writes files as an ISO 9660 image with Rock Ridge and Joliet,
// as genisoimage -J -r makes a seed.
func writeISO(w io.Writer, label string, files []File, t time.Time) error {
	b := iso9660.NewBuilder()
	for _, f := range files {
		if err := b.AddFile(f.Path, f.Data, 0o644); err != nil {
			return err
		}
	}
	return iso9660.Write(w, b, iso9660.Options{VolumeID: label, Joliet: true, RockRidge: true, Time: t})
}

// writeFAT formats dev as FAT of size bytes and writes files into it.
func writeFAT(ctx context.Context, dev Device, label string, files []File, size int64) error {
	if err := dev.Truncate(size); err != nil {
		return err
	}
	if err := fat.Format(dev, size, label); err != nil {
		return err
	}
	fsys, err := fat.OpenWritable(dev, size, "seed")
	if err != nil {
		return err
	}
	made := map[string]bool{}
	for _, f := range files {
		if err := mkdirAll(fsys, path.Dir(f.Path), made); err != nil {
			return err
		}
		if err := fsys.WriteFile(f.Path, strings.NewReader(string(f.Data)), int64(len(f.Data)), 0o644); err != nil {
			return fmt.Errorf("seed: writing %s: %w", f.Path, err)
		}
	}
	return fsys.Commit(ctx)
}

func mkdirAll(fsys *fat.FS, dir string, made map[string]bool) error {
	if dir == "." || made[dir] {
		return nil
	}
	if err := mkdirAll(fsys, path.Dir(dir), made); err != nil {
		return err
	}
	made[dir] = true
	return fsys.Mkdir(dir, 0o755)
}
