package openstack

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/internal/devcloudtest"
)

// listWith connects with c and lists images: the proof that the
// identity reached the image service with a project-scoped token.
func listWith(t *testing.T, c Config) {
	t.Helper()
	cl, err := Connect(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.ListImages(context.Background(), url.Values{"limit": {"1"}}, 1); err != nil {
		t.Fatal(err)
	}
}

// without is demoEnv less some variables, plus others.
func without(drop []string, add map[string]string) map[string]string {
	env := map[string]string{}
	for k, v := range demoEnv {
		env[k] = v
	}
	for _, k := range drop {
		delete(env, k)
	}
	for k, v := range add {
		env[k] = v
	}
	return env
}

// TestAuthEnvDomainIDs: an openrc naming the domains by ID.
func TestAuthEnvDomainIDs(t *testing.T) {
	env := without([]string{"OS_USER_DOMAIN_NAME", "OS_PROJECT_DOMAIN_NAME", "OS_CLIENT_CONFIG_FILE"},
		map[string]string{"OS_USER_DOMAIN_ID": "default", "OS_PROJECT_DOMAIN_ID": "default"})
	listWith(t, Config{Getenv: getenv(env)})
}

// TestAuthCloudsYAML: a cloud of clouds.yaml whose password is in the
// secure.yaml beside it, found through OS_CLOUD and the user's config
// directory (the CLI's search path), with no OS_* identity variable.
func TestAuthCloudsYAML(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "openstack")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	clouds := `clouds:
  qimgtest:
    auth:
      auth_url: ` + demoEnv["OS_AUTH_URL"] + `
      username: demo
      project_name: demo
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
`
	secure := "clouds:\n  qimgtest:\n    auth:\n      password: " + demoEnv["OS_PASSWORD"] + "\n"
	write(t, filepath.Join(dir, "clouds.yaml"), clouds)
	write(t, filepath.Join(dir, "secure.yaml"), secure)
	t.Setenv("XDG_CONFIG_HOME", filepath.Dir(dir))
	listWith(t, Config{Getenv: getenv(map[string]string{"OS_CLOUD": "qimgtest"})})
	// --os-cloud names a cloud of the devcloud's own clouds.yaml.
	listWith(t, Config{Cloud: "devcloud", CloudsFile: demoEnv["OS_CLIENT_CONFIG_FILE"], Getenv: getenv(nil)})
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAuthApplicationCredential: an application credential made with the
// CLI, which carries its own project.
func TestAuthApplicationCredential(t *testing.T) {
	name := uniqueName(t)
	var cred struct{ ID, Secret string }
	out := devcloudtest.CLI(t, demoEnv, "application", "credential", "create", name, "-f", "json")
	if err := json.Unmarshal([]byte(out), &cred); err != nil || cred.ID == "" || cred.Secret == "" {
		t.Fatalf("application credential create: %v: %s", err, out)
	}
	t.Cleanup(func() { devcloudtest.CLI(t, demoEnv, "application", "credential", "delete", cred.ID) })
	env := map[string]string{
		"OS_AUTH_URL": demoEnv["OS_AUTH_URL"], "OS_AUTH_TYPE": "v3applicationcredential",
		"OS_APPLICATION_CREDENTIAL_ID": cred.ID, "OS_APPLICATION_CREDENTIAL_SECRET": cred.Secret,
	}
	listWith(t, Config{Getenv: getenv(env)})
}

// TestAuthToken: a token from `openstack token issue` (OS_TOKEN), scoped
// to the project again by name.
func TestAuthToken(t *testing.T) {
	token := strings.TrimSpace(devcloudtest.CLI(t, demoEnv, "token", "issue", "-f", "value", "-c", "id"))
	env := map[string]string{"OS_AUTH_URL": demoEnv["OS_AUTH_URL"], "OS_TOKEN": token,
		"OS_PROJECT_NAME": "demo", "OS_PROJECT_DOMAIN_NAME": "Default"}
	listWith(t, Config{Getenv: getenv(env)})
}

// TestAuthErrors: no cloud at all, and a wrong password, fail clearly.
func TestAuthErrors(t *testing.T) {
	if _, err := Connect(context.Background(), Config{Getenv: getenv(nil)}); err == nil || !strings.Contains(err.Error(), "no cloud given") {
		t.Errorf("no configuration: %v", err)
	}
	env := without(nil, map[string]string{"OS_PASSWORD": "wrong"})
	if _, err := Connect(context.Background(), Config{Getenv: getenv(env)}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong password: %v", err)
	}
}
