package qemutest

import (
	"os"
	"os/exec"
	"testing"
)

// Need checks that the judging tools are installed (on PATH or in
// /usr/sbin): a missing one skips the test on a developer's machine and
// fails it in CI (CI=true), where scripts/setup.sh installs them.
func Need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err == nil {
			continue
		}
		if _, err := os.Stat("/usr/sbin/" + tool); err == nil {
			continue
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not installed (scripts/setup.sh installs it)", tool)
		}
		t.Skipf("%s not installed", tool)
	}
}

// ToolPath is where a tool is: on PATH, else in /usr/sbin (root's tools
// when PATH lacks it).
func ToolPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return "/usr/sbin/" + name
}
