package cloudinit

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The judge is cloud-init itself (Debian's package, which
// scripts/setup.sh installs): its own schema validator
// (cloudinit.config.schema.validate_cloudconfig_file, what `cloud-init
// schema --config-file` runs), with one change that current cloud-init
// makes too: unknown top-level keys are errors (the installed 22.4
// schema still lets them through; cloud-init 24.1 closed it).
const judgeScript = `
import contextlib, io, sys
from cloudinit.config import schema as s
sch = s.get_schema()
props = {}
for sub in sch["allOf"]:
    props.update(sch["$defs"][sub["$ref"].split("/")[-1]].get("properties", {}))
sch["properties"] = {k: {} for k in props}
sch["additionalProperties"] = False
for path in sys.argv[1:]:
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            s.validate_cloudconfig_file(path, sch)
        print("valid")
    except s.SchemaValidationError as e:
        print("invalid " + str(e).replace("\n", " "))
    except RuntimeError as e:
        print("invalid " + str(e).replace("\n", " "))
`

const python = "/usr/bin/python3"

// needCloudInit skips without cloud-init on a developer's machine and
// fails in CI, where scripts/setup.sh installs it.
func needCloudInit(t *testing.T) {
	t.Helper()
	if err := exec.Command(python, "-c", "import cloudinit.config.schema, jsonschema").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cloud-init is not installed (scripts/setup.sh installs it): %v", err)
		}
		t.Skipf("cloud-init is not installed: %v", err)
	}
}

// judge returns cloud-init's verdict on each sample: "" for valid, its
// message otherwise.
func judge(t *testing.T, samples []string) []string {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "judge.py")
	if err := os.WriteFile(script, []byte(judgeScript), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{script}
	for i, s := range samples {
		p := filepath.Join(dir, "sample"+string(rune('a'+i/26))+string(rune('a'+i%26)))
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, p)
	}
	cmd := exec.Command(python, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cloud-init's validator: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(samples) {
		t.Fatalf("cloud-init's validator printed %d verdicts for %d samples:\n%s%s", len(lines), len(samples), out, stderr.String())
	}
	verdicts := make([]string, len(lines))
	for i, l := range lines {
		if l != "valid" {
			verdicts[i] = strings.TrimPrefix(l, "invalid ")
		}
	}
	return verdicts
}

// TestAgainstCloudInit runs cloud-init's validator and ours on the same
// samples: every sample must get the same verdict from both, and ours
// must point at the expected line.
func TestAgainstCloudInit(t *testing.T) {
	needCloudInit(t)
	texts := make([]string, len(samples))
	for i, s := range samples {
		texts[i] = s.text
	}
	verdicts := judge(t, texts)
	valid, invalid := 0, 0
	for i, s := range samples {
		err := Validate([]byte(s.text), "user-data")
		theirs := verdicts[i]
		if (err == nil) != (theirs == "") {
			t.Errorf("sample %d (%s): qimg says %v; cloud-init says %q\n%s", i, s.what, err, theirs, s.text)
			continue
		}
		if err == nil {
			valid++
			continue
		}
		invalid++
		if !strings.Contains(err.Error(), s.want) {
			t.Errorf("sample %d (%s): error %q does not contain %q", i, s.what, err, s.want)
		}
	}
	t.Logf("%d samples: cloud-init and qimg agree on %d valid and %d invalid", len(samples), valid, invalid)
}
