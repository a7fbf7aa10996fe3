package seed

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// readerScript runs cloud-init's own datasource (DataSourceNoCloud or
// DataSourceConfigDrive, its _get_data as at boot) on a seed attached
// to a loop device. Devices are found the real way (blkid by label and
// type, util.find_devs_with), keeping only ours so that other loop
// devices on the machine do not interfere. The one stand-in is the
// mount: this machine's kernel has neither iso9660 nor vfat, so
// util.mount_cb extracts the file system with an independent tool
// (xorriso for ISO 9660 with Rock Ridge, mtools for FAT) into the
// directory cloud-init's callback reads, as a mount would show it.
const readerScript = `
import json, os, subprocess, sys, tempfile
from cloudinit import helpers, util
from cloudinit.sources import DataSourceConfigDrive, DataSourceNoCloud

kind, dev, image, fstype = sys.argv[1:5]
real_find = util.find_devs_with
found = {}

def find_devs_with(criteria=None, *args, **kwargs):
    devs = real_find(criteria, *args, **kwargs)
    found[criteria] = sorted(set(found.get(criteria, [])) | set(devs))
    return [d for d in devs if d == dev]

def mount_cb(device, callback, data=None, *args, **kwargs):
    if device != dev:
        raise util.MountFailedError("not the seed under test: " + device)
    with tempfile.TemporaryDirectory() as d:
        if fstype == "iso9660":
            subprocess.run(["xorriso", "-osirrox", "on", "-indev", image, "-extract", "/", d],
                           check=True, capture_output=True)
        else:
            env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
            subprocess.run(["mcopy", "-s", "-n", "-i", image, "::/*", d], check=True, env=env, capture_output=True)
        return callback(d, data) if data is not None else callback(d)

util.find_devs_with = find_devs_with
util.mount_cb = mount_cb
tmp = tempfile.mkdtemp()
paths = helpers.Paths({"cloud_dir": tmp, "run_dir": tmp})
if kind == "nocloud":
    ds = DataSourceNoCloud.DataSourceNoCloud({}, None, paths)
else:
    ds = DataSourceConfigDrive.DataSourceConfigDrive({}, None, paths)
    ds.known_macs = {"52:54:00:12:34:56": "ens3"}
ok = ds._get_data()
def text(b):
    return b.decode() if isinstance(b, bytes) else b
print(json.dumps({
    "ok": ok,
    "found": found,
    "instance_id": ds.get_instance_id() if ok else None,
    "metadata": {k: v for k, v in ds.metadata.items() if isinstance(v, (str, int, list, dict))} if ok else None,
    "userdata": text(ds.userdata_raw) if ok else None,
    "vendordata": text(ds.vendordata_raw) if ok else None,
    "network": ds.network_config if ok else None,
    "keys": ds.get_public_ssh_keys() if ok else None,
}, default=str))
`

// reading is what cloud-init's datasource read from a seed.
type reading struct {
	OK         bool                `json:"ok"`
	Found      map[string][]string `json:"found"`
	InstanceID string              `json:"instance_id"`
	Metadata   map[string]any      `json:"metadata"`
	UserData   string              `json:"userdata"`
	VendorData any                 `json:"vendordata"`
	Network    map[string]any      `json:"network"`
	Keys       []string            `json:"keys"`
}

// cloudInitReads attaches img to a loop device and lets cloud-init's
// datasource read it.
func cloudInitReads(t *testing.T, img string, configDrive, vfat bool) reading {
	t.Helper()
	need(t, "losetup", "xorriso", "mcopy", "blkid")
	if err := exec.Command(python, "-c", "import cloudinit.sources.DataSourceNoCloud").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cloud-init is not installed (scripts/setup.sh installs it): %v", err)
		}
		t.Skipf("cloud-init is not installed: %v", err)
	}
	dev := strings.TrimSpace(run(t, "losetup", "--find", "--show", "--read-only", img))
	t.Cleanup(func() { exec.Command(toolPath("losetup"), "--detach", dev).Run() })
	script := filepath.Join(t.TempDir(), "reader.py")
	if err := os.WriteFile(script, []byte(readerScript), 0o644); err != nil {
		t.Fatal(err)
	}
	kind, fstype := "nocloud", "iso9660"
	if configDrive {
		kind = "configdrive"
	}
	if vfat {
		fstype = "vfat"
	}
	out := run(t, python, script, kind, dev, img, fstype)
	var r reading
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("cloud-init's reader printed %q: %v", out, err)
	}
	t.Logf("cloud-init read %s", out)
	if !r.OK {
		t.Fatalf("cloud-init's %s datasource found no seed on %s: %s", kind, dev, out)
	}
	return r
}

const python = "/usr/bin/python3"
