// Package devcloudtest starts the project's local OpenStack (Keystone and
// Glance from Debian's packages, scripts/devcloud.sh) for tests, and asks
// the openstack CLI (python3-openstackclient) about it: the CLI is the
// independent judge of what qimg did to the cloud.
package devcloudtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Script finds scripts/devcloud.sh from the working directory upwards
// (tests run in their package's directory).
func Script() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "scripts", "devcloud.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("scripts/devcloud.sh not found above the working directory")
		}
		dir = parent
	}
}

// Flavor is the flavor devcloud.sh start --nova makes for boot tests (1
// vCPU, 768 MiB, a 3 GB root disk), public.
const Flavor = "qimg.tiny"

// Start starts the cloud unless it runs (installing its packages the
// first time on a machine). Its output goes to stderr.
func Start() error { return start() }

// StartNova starts the cloud with its second stage (Placement, Nova with
// libvirt and QEMU, Neutron: devcloud.sh start --nova) for boot tests.
func StartNova() error { return start("--nova") }

func start(args ...string) error {
	script, err := Script()
	if err != nil {
		return err
	}
	cmd := exec.Command("bash", append([]string{script, "start"}, args...)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("bash %s start %s: %w", script, strings.Join(args, " "), err)
	}
	return nil
}

// Env is the environment of an identity ("demo", a member of project
// demo, or "admin"): OS_AUTH_URL, OS_USERNAME, ..., OS_CLIENT_CONFIG_FILE
// and QIMG_DEVCLOUD_TOKEN_TTL, as devcloud.sh env prints them.
func Env(who string) (map[string]string, error) {
	script, err := Script()
	if err != nil {
		return nil, err
	}
	out, err := exec.Command("bash", script, "env", who).Output()
	if err != nil {
		return nil, fmt.Errorf("devcloud.sh env %s: %w", who, err)
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "export ")
		if !ok {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env, nil
}

// Environ is the process environment without any OS_* variable, plus env.
func Environ(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OS_") {
			out = append(out, kv)
		}
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// CLI runs the openstack CLI with env and returns its standard output.
func CLI(t testing.TB, env map[string]string, args ...string) string {
	t.Helper()
	out, err := CLIErr(env, args...)
	if err != nil {
		t.Fatalf("openstack %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// CLIErr is CLI returning the error (with the CLI's stderr) instead.
func CLIErr(env map[string]string, args ...string) (string, error) {
	cmd := exec.Command("/usr/bin/openstack", args...)
	cmd.Env = Environ(env)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// ShowImage is `openstack image show -f json ID`.
func ShowImage(t testing.TB, env map[string]string, id string) map[string]any {
	t.Helper()
	var im map[string]any
	if err := json.Unmarshal([]byte(CLI(t, env, "image", "show", "-f", "json", id)), &im); err != nil {
		t.Fatalf("openstack image show %s: %v", id, err)
	}
	return im
}

// ImagesNamed lists the IDs of the images with that name the identity
// sees (`openstack image list --name N -f value -c ID`), in any status.
func ImagesNamed(t testing.TB, env map[string]string, name string) []string {
	t.Helper()
	return strings.Fields(CLI(t, env, "image", "list", "--name", name, "-f", "value", "-c", "ID"))
}

// ServersNamed lists the IDs of the servers with exactly that name the
// identity sees, in any status.
func ServersNamed(t testing.TB, env map[string]string, name string) []string {
	t.Helper()
	return strings.Fields(CLI(t, env, "server", "list", "--name", "^"+name+"$", "-f", "value", "-c", "ID"))
}

// KeyPairExists reports whether the identity has a keypair of that name.
func KeyPairExists(t testing.TB, env map[string]string, name string) bool {
	t.Helper()
	for _, n := range strings.Fields(CLI(t, env, "keypair", "list", "-f", "value", "-c", "Name")) {
		if n == name {
			return true
		}
	}
	return false
}
