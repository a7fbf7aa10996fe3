package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/qimg/qimg/internal/devcloudtest"
)

var (
	novaOnce sync.Once
	novaErr  error
)

// devcloudNova starts the cloud with Nova (once per test binary) and
// returns the demo identity's environment.
func devcloudNova(t *testing.T) map[string]string {
	t.Helper()
	novaOnce.Do(func() { novaErr = devcloudtest.StartNova() })
	if novaErr != nil {
		t.Fatal(novaErr)
	}
	return devcloud(t)
}

// The seed report's workflow end to end on a real Nova: qimg inject plants
// a file in the Debian 12 guest, qimg upload sends it to Glance, and
// qimg boot-test --cloud boots it without a NIC and with a config drive
// whose user-data prints the file on the console; the test succeeds on
// that line, after the login prompt and cloud-init's final message, and
// leaves no server and no keypair behind.
func TestBootTestCloud(t *testing.T) {
	t.Parallel()
	env := devcloudNova(t)
	dir := t.TempDir()
	copyFile(t, cachedGuest(t, "boot-image.sh").image, filepath.Join(dir, "debian12.qcow2"))
	nonce := randomHex(t, 6)
	marker := "qimg-marker-" + nonce
	if r, _ := cloudRun(t, env, "inject", filepath.Join(dir, "debian12.qcow2"), "--write", "/etc/qimg-marker:"+marker+"\n"); r.code != 0 {
		t.Fatalf("inject: %+v", r)
	}
	userData := filepath.Join(dir, "user-data")
	writeFile(t, userData, "#!/bin/sh\necho \"QIMG-INJECTED $(cat /etc/qimg-marker)\" >/dev/ttyS0\n")
	r, _ := cloudRun(t, env, "upload", filepath.Join(dir, "debian12.qcow2"), "--name", uniqueImageName(t), "-f", "value", "-c", "id")
	if r.code != 0 {
		t.Fatalf("upload: %+v", r)
	}
	id := strings.TrimSpace(r.stdout)
	t.Cleanup(func() { devcloudtest.CLIErr(env, "image", "delete", id) })

	name := "qimg-boot-test-" + nonce[:8]
	r, _ = cloudRun(t, env, "boot-test", "--cloud", id, "--flavor", devcloudtest.Flavor, "--nic", "none",
		"--config-drive", "--user-data", userData, "--name", name, "--expect", "QIMG-INJECTED "+marker,
		"--timeout", "25m", "--log", filepath.Join(dir, "console.log"))
	t.Logf("boot-test:\n%s%s", r.stdout, r.stderr)
	if r.code != 0 {
		t.Fatalf("boot-test --cloud: exit %d", r.code)
	}
	for _, want := range []string{" booted as server " + name + " (", "flavor " + devcloudtest.Flavor,
		"cloud-init finished ", "QIMG-INJECTED " + marker, "deleted: server "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	for _, want := range []string{"server " + name + ": BUILD", "server " + name + ": ACTIVE", "server " + name + ": deleted"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if log, err := os.ReadFile(filepath.Join(dir, "console.log")); err != nil || !strings.Contains(string(log), "QIMG-INJECTED "+marker) {
		t.Errorf("console.log: %v, %d bytes without the marker", err, len(log))
	}
	if ids := devcloudtest.ServersNamed(t, env, name); len(ids) != 0 {
		t.Errorf("servers left: %v", ids)
	}
	if devcloudtest.KeyPairExists(t, env, name) {
		t.Errorf("keypair %s left", name)
	}
}

// The flags of the two kinds of boot test do not mix, and --cloud needs a
// flavor; nothing reaches a cloud.
func TestBootTestCloudRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"boot-test", "--cloud", "img"}, "needs --flavor"},
		{[]string{"boot-test", "--cloud", "--local", "img"}, "--local and --cloud exclude each other"},
		{[]string{"boot-test", "--cloud", "--flavor", "f", "--seed", "s.iso", "img"}, "--seed does not go with --cloud"},
		{[]string{"boot-test", "--local", "--flavor", "f", "img"}, "--flavor does not go with --local"},
		{[]string{"boot-test", "--cloud", "--flavor", "f", "--nic", "none", "--network", "n", "img"}, "exclude each other"},
		{[]string{"boot-test", "--cloud", "--flavor", "f", "--nic", "port-id=x", "img"}, "expected none, auto or net-id=ID"},
		{[]string{"boot-test", "--cloud", "--flavor", "f", "--expect", "(", "img"}, `--expect "("`},
		{[]string{"boot-test", "--cloud", "--flavor", "f", "--user-data", "missing", "img"}, "--user-data: open missing"},
	} {
		r := qimgIn(t, dir, c.args...)
		if r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("qimg %v: exit %d, stderr %q; want 1 and %q", c.args, r.code, r.stderr, c.want)
		}
	}
}
